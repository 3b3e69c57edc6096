"""Per ERP: a document status changed inside the ERP reaches the RMS by push (serve's embedded defaults).

The service runs as ``make run`` does (simulators started by it, one generated key per simulator, each pushing
to the receiver) with a one-hour poll interval. A return is delivered through the gRPC API, then a person
closes or cancels it in the ERP (``/_sim/actions/``); the ERP's status arrives on ``rb.docstatus.<tenant>`` (the
RMS's subscription, README "Subjects") and in the sync state, woken by the push (its latency is counted).
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import aiohttp
import grpc
import pytest

from helpers.app import running
from helpers.eventually import assert_eventually
from helpers.settings import served_settings
from inbound.stack import ERP_OF, push_count
from returnbridge.api.v1 import inventory_pb2, returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.app import App
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "submit_return.py"
#: What a person does to the delivered return in each ERP, and the status the RMS then reads.
ACTION = {
    "sap": ("order/close", "closed"),
    "netsuite": ("order/cancel", "cancelled"),
    "oracle": ("order/cancel", "cancelled"),
}


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("submit_return_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def served(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[App]:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        console={"enabled": False},
        sync={"interval_seconds": 3600},
    )
    async with running(settings) as app:
        yield app


@pytest.mark.parametrize("erp", ["sap", "netsuite", "oracle"])
async def test_a_status_changed_in_the_erp_reaches_the_rms_by_push(served: App, erp: str) -> None:
    assert served.endpoints.inbound and served.simulators is not None
    assert served.nc is not None
    token = (await asyncio.to_thread(Path(served.endpoints.dev_token_file).read_text)).strip()
    metadata = (("authorization", f"Bearer {token}"),)
    statuses: list[inventory_pb2.DocumentStatus] = []
    arrived = asyncio.Event()

    async def on_status(msg: object) -> None:
        statuses.append(inventory_pb2.DocumentStatus.FromString(msg.data))  # type: ignore[attr-defined]
        arrived.set()

    sub = await served.nc.subscribe(subjects.docstatus("demo"), cb=on_status)
    example = _example()
    order = example.build_return(erp, secrets.token_hex(4), 1, returns_pb2.LIFECYCLE_EVENT_AUTHORIZED)
    async with grpc.aio.insecure_channel(served.endpoints.grpc) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        await stub.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=order), metadata=metadata, timeout=30
        )

        async def delivered() -> sync_pb2.DocumentSync:
            status = await stub.GetReturnStatus(
                returns_pb2.GetReturnStatusRequest(return_id=order.return_id), metadata=metadata, timeout=10
            )
            docs = [d for d in status.documents if d.state == sync_pb2.SYNC_STATE_DELIVERED]
            assert docs, status
            return docs[0]

        document = await assert_eventually(delivered, timeout=60)
    document_id = document.erp_document_id
    pushed = push_count(ERP_OF[erp], "status")
    action, expected = ACTION[erp]
    async with aiohttp.ClientSession() as session:
        url = served.simulators.urls[erp] + "/_sim/actions/" + action
        async with session.post(url, json={"document_id": document_id}) as response:
            assert response.status == 200, await response.text()

    async def seen() -> None:
        assert any(s.document_id == document_id and s.status == expected for s in statuses), [
            (s.document_id, s.status) for s in statuses
        ]

    await assert_eventually(seen, timeout=30)
    await sub.unsubscribe()

    async def counted() -> None:
        # It came by push (the next poll is an hour away). The poller observes the latency after it published
        # the status and updated the return, so a fast subscriber can see the event before the count.
        assert push_count(ERP_OF[erp], "status") > pushed

    await assert_eventually(counted, timeout=10)
    kits = served.simulators.kits[erp].notifier.stats
    assert kits.refused == 0, kits
