"""Per ERP: a stock change made inside the ERP reaches a watching RMS client by push, and by poll alone.

Push runs with a one-hour poll interval, so after the first poll only a notification can bring the change;
the push latency histogram counting it is the proof it came that way. Poll-only runs with the receiver off.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from inbound.stack import ERP_OF, InventoryWatch, push_count, stack
from returnbridge.bus.embedded import EmbeddedNatsServer

SIMS = ["sap", "netsuite", "oracle"]


@pytest.mark.parametrize("sim", SIMS)
async def test_an_erp_side_stock_change_reaches_the_rms_by_push(
    sim: str, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    async with stack(tmp_path, nats_server.url, interval=3600, push=True) as running:
        key = running.stock_key(sim)
        before = running.on_hand(sim, key)
        watch = InventoryWatch(running, key[0])
        try:
            await watch.wait_for(lambda level: Decimal(level.on_hand) == before)  # the first poll is in
            pushed = push_count(ERP_OF[sim])
            after = await running.adjust(sim, key, Decimal(13))
            level = await watch.wait_for(lambda level: Decimal(level.on_hand) == after)
            assert level.target == {"sap": "sap", "netsuite": "netsuite", "oracle": "oracle_fusion"}[sim]
            assert push_count(ERP_OF[sim]) > pushed
            stats = running.sims.kits[sim].notifier.stats
            assert stats.sent >= 1 and stats.refused == 0, stats
        finally:
            await watch.close()


@pytest.mark.parametrize("sim", SIMS)
async def test_with_pushes_off_polling_alone_brings_the_change(
    sim: str, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    async with stack(tmp_path, nats_server.url, interval=0.3, push=False) as running:
        assert running.app is not None and running.app.endpoints.inbound == ""
        key = running.stock_key(sim)
        before = running.on_hand(sim, key)
        watch = InventoryWatch(running, key[0])
        try:
            await watch.wait_for(lambda level: Decimal(level.on_hand) == before)
            pushed = push_count(ERP_OF[sim])
            after = await running.adjust(sim, key, Decimal(-4))
            await watch.wait_for(lambda level: Decimal(level.on_hand) == after)
            assert push_count(ERP_OF[sim]) == pushed
            assert running.sims.kits[sim].notifier.stats.queued == 0
        finally:
            await watch.close()
