"""Inbound records are untrusted: a malformed one is dead-lettered on RB_INBOUND_DLQ and the feed goes on."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from prometheus_client import REGISTRY

from connectors.harnesses.netsuite import NetSuiteTbaHarness
from delivery.pipeline_harness import Pipeline
from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.domain.validation import ReferenceData
from returnbridge.errors import ConflictError
from returnbridge.inbound_dlq_cli import _run as run_cli
from returnbridge.mapping import MappingRegistry
from returnbridge.simulators.netsuite_data import Item
from returnbridge.sync.inbound_checks import level_problems, status_problems
from returnbridge.sync.inbound_dlq import InboundDeadLetters
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig

SKUS = frozenset(f"SKU-{n}" for n in range(1001, 1011))
REFERENCE = ReferenceData(skus=SKUS, locations=frozenset({"DAL1", "RNO2", "LHR1"}))


@pytest.fixture
async def netsuite() -> AsyncIterator[NetSuiteTbaHarness]:
    harness = NetSuiteTbaHarness()
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


def _plant(harness: NetSuiteTbaHarness, item_id: str, sku: str, qty: Decimal) -> None:
    sim = harness.sim
    sim.ref.items[item_id] = Item(item_id, sku, f"planted {sku[:10]}", Decimal(1))
    sim.kit.state.adjust_stock(sku, "DAL1", "", qty)
    sim.modified[(item_id, "1")] = datetime.now(UTC)


def _dead_lettered(target: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "rb_inbound_dead_lettered_total", {"target": target, "kind": "inventory", "reason": reason}
    )
    return value or 0.0


async def test_malformed_inbound_records_are_contained_and_the_feed_goes_on(
    pipeline: Pipeline, netsuite: NetSuiteTbaHarness, nats_server: EmbeddedNatsServer
) -> None:
    registry = MappingRegistry.load()
    _plant(netsuite, "597", "SKU-9999", Decimal(5))  # a SKU the RMS does not know
    _plant(netsuite, "598", "SKU-\x07BELL", Decimal(1))  # control characters
    _plant(netsuite, "599", "SKU-" + "X" * 70_000, Decimal(1))  # a 70 kB "row"
    netsuite.sim.kit.state.stock[("SKU-1006", "RNO2", "")] = Decimal("1E+15")  # beyond any ERP quantity field
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    letters = InboundDeadLetters(pipeline.nc.jetstream(), pipeline.buckets[subjects.SYNC_STATE_BUCKET])
    before = {reason: _dead_lettered("netsuite", reason) for reason in ("invalid", "oversized")}
    target = PollTarget(
        PollTargetConfig(target="netsuite", tenant="acme", status=False), netsuite.connector()
    )
    poller = Poller(
        [target],
        registry,
        pipeline.buckets[subjects.CURSORS_BUCKET],
        store,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(page_size=7),  # several pages: bad records in the middle of the feed
        inbound_dlq=letters,
        reference=REFERENCE,
        alerter=pipeline.alerter,
    )
    await poller.poll_once()

    levels = await store.levels("acme", "netsuite")
    good = 10 * 3 - 1  # every seeded item at every location, but SKU-1006 at RNO2
    assert len(levels) == good
    assert {lv.sku for lv in levels} == SKUS
    pending = await letters.list("acme")
    # Each planted item is a row at each of the three locations, the huge quantity one row.
    assert len(pending) == 10, [d.as_dict() for d in pending]
    assert sum(1 for d in pending if d.reason == "oversized") == 3
    problems = sorted(p for d in pending if d.reason == "invalid" for p in d.problems)
    assert any("unknown sku 'SKU-9999'" in p for p in problems)
    assert any("control" in p for p in problems)
    assert any("on_hand" in p and "out of range" in p for p in problems)
    assert all(d.tenant == "acme" and d.mapping == "netsuite/inventory_level" for d in pending)
    assert any(b"SKU-9999" in d.record for d in pending)  # the ERP record is kept as read
    assert _dead_lettered("netsuite", "invalid") == before["invalid"] + 7
    assert _dead_lettered("netsuite", "oversized") == before["oversized"] + 3
    alert = pipeline.alerter.alerts[-1]
    assert alert["kind"] == "dead_letter" and alert["key"] == "inbound:netsuite:inventory"

    # The cursor moved past them: the next poll neither re-reads nor re-dead-letters, and new changes flow.
    async with httpx.AsyncClient(base_url=netsuite.url) as http:
        counted = await http.post(
            "/_sim/actions/stock/adjust", json={"sku": "SKU-1001", "site": "DAL1", "delta": "2"}
        )
    assert counted.status_code == 200
    await poller.poll_once()
    assert len(await letters.list("acme")) == 10
    level = await store.get("acme", "SKU-1001", "DAL1", "", "netsuite")
    assert Decimal(level.on_hand) == netsuite.sim.on_hand("SKU-1001", "DAL1")

    # Reference data fixed: a replay stores the record; a replayed letter is not pending any more.
    unknown = next(
        d for d in pending if any("SKU-9999" in p for p in d.problems) and b'"location":"1"' in d.record
    )
    fixed = Poller(
        [],
        registry,
        pipeline.buckets[subjects.CURSORS_BUCKET],
        store,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        inbound_dlq=letters,
        reference=ReferenceData(skus=SKUS | {"SKU-9999"}, locations=REFERENCE.locations),
    )
    assert await fixed.replay(unknown)
    assert Decimal((await store.get("acme", "SKU-9999", "DAL1", "", "netsuite")).on_hand) == 5
    await letters.mark("acme", unknown.id, "REPLAYED")
    with pytest.raises(ConflictError):
        await letters.mark("acme", unknown.id, "DISCARDED")
    assert len(await letters.list("acme")) == 9
    assert len(await letters.list("acme", include_resolved=True)) == 10
    assert await letters.list("other-tenant") == []

    # The command line lists and discards the tenant's inbound dead letters.
    args = argparse.Namespace(action="list", tenant="acme", all=False, config=None, nats_url=nats_server.url)
    listed = await run_cli(args)
    assert len(listed) == 9 and {row["state"] for row in listed} == {"PENDING"}
    args = argparse.Namespace(
        action="discard", tenant="acme", id=listed[0]["id"], config=None, nats_url=nats_server.url
    )
    assert (await run_cli(args))["state"] == "DISCARDED"


def test_status_and_level_checks_name_each_problem() -> None:
    status = inventory_pb2.DocumentStatus(
        document_type="creditMemo", document_id="", status="A_CreditMemoRequest/ZZ"
    )
    status.amount.amount, status.amount.currency = "12.5", "usd"
    problems = status_problems(status)
    assert "document_id is empty" in problems
    assert any("not a known normalized status" in p for p in problems)
    assert any("amount.currency" in p for p in problems)
    good = inventory_pb2.DocumentStatus(document_type="creditMemo", document_id="1", status="voided")
    assert status_problems(good) == []
    level = inventory_pb2.InventoryLevel(tenant_id="acme", sku="SKU-1001", on_hand="NaN")
    assert level_problems(level, REFERENCE) == ["location.site is empty", "on_hand 'NaN' is not finite"]
    level.location.site, level.on_hand = "MARS", "-3.1234567"
    assert level_problems(level, REFERENCE) == [
        "on_hand '-3.1234567' is out of range",
        "unknown location 'MARS'",
    ]
    level.location.site, level.on_hand = "DAL1", "-3"
    assert level_problems(level, REFERENCE) == [] and level_problems(level, None) == []
