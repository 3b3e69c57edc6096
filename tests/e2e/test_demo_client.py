"""The README's demo: the service on embedded defaults (simulators, dev key) and the example client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from helpers.app import local_settings, running
from returnbridge.app import App
from returnbridge.bus.embedded import EmbeddedNatsServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def demo_app(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[App]:
    settings = local_settings(tmp_path / "data", nats_server.url, sync={"interval_seconds": 0.5})
    async with running(settings) as app:
        yield app


async def test_example_client_reaches_every_erp_document(demo_app: App) -> None:
    ep = demo_app.endpoints
    assert ep.dev_token_file and set(ep.simulators) == {"netsuite", "sap", "oracle"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "submit_return.py"),
        "--target",
        ep.grpc,
        "--token-file",
        ep.dev_token_file,
        "--timeout",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=90)
    text = out.decode()
    assert proc.returncode == 0, text
    for erp in ("netsuite", "sap", "oracle"):
        assert f"{erp}: all ERP documents confirmed" in text, text

    # Exactly one document per step landed in each simulator.
    async with httpx.AsyncClient() as http:
        ns = (await http.get(f"{ep.simulators['netsuite']}/_sim/documents")).json()
        assert [len(ns.get(t, [])) for t in ("returnAuthorization", "itemReceipt", "cashRefund")] == [1, 1, 1]
        for name in ("netsuite", "sap", "oracle"):
            ledger = (await http.get(f"{ep.simulators[name]}/_sim/ledger")).json()
            assert ledger["balanced"] is True and ledger["entries"], name

    # The metrics endpoint reports sync latency per ERP.
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(ep.metrics)).text
    assert 'rb_sync_latency_seconds_count{document_type="returnAuthorization",erp="netsuite"}' in metrics
