"""Tenant isolation on every read path: another tenant's objects are NOT_FOUND or absent, and every count, id or
sequence a tenant sees is its own (per-tenant opaque ids, per-tenant audit counts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest_asyncio

from delivery.pipeline_harness import make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2, inventory_pb2, returns_pb2
from returnbridge.bus.publisher import Publisher
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.status import SyncStateStore
from security.conftest import Served, key_md


def order(return_id: str) -> returns_pb2.ReturnOrder:
    """A return the full gateway validation accepts."""
    built = make_order(return_id)
    built.event_time.GetCurrentTime()
    # NetSuite refuses a return authorization without a customer: refused at submit (ERP constraints).
    built.customer.erp_customer_ref = "101"
    # ... and an item its pack's item table does not map: refused at submit (the mapping is run first).
    built.lines[0].sku = "SKU-1001"
    return built


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def seeded(served: Served) -> AsyncIterator[dict[str, Any]]:
    """acme owns a submitted return, a dead letter and an inventory level; beta owns nothing of the kind."""
    app = served.app
    assert app.nc is not None and app.js is not None
    submitted = await served.returns.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=order("ISO-1")),
        metadata=key_md("acme", "submitter"),
    )
    publisher = Publisher(app.nc, app.js)
    status = SyncStateStore(await app.js.key_value("rb_sync_state"), publisher)
    dead_letters = DeadLetterStore(app.js, publisher, status)
    raw_dlq_id = await dead_letters.put(
        target="netsuite",
        tenant="acme",
        payload=order("ISO-1").SerializeToString(),
        headers={},
        step="return_authorization",
        document_type="returnAuthorization",
        reason="refused by the ERP",
        error=None,
        attempts=1,
        source_sequence=999_001,
    )
    level = inventory_pb2.InventoryLevel(tenant_id="acme", sku="ISO-SKU", target="netsuite")
    level.location.site = "DAL1"
    await InventoryStore(await app.js.key_value("rb_inventory")).put(level)
    yield {"submitted": submitted, "raw_dlq_id": raw_dlq_id}


async def _code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def _stream(call: Any, seconds: float = 2.0) -> list[Any]:
    """Everything a watch sends within ``seconds`` (then it is cancelled)."""
    items: list[Any] = []

    async def drain() -> None:
        async for item in call:
            items.append(item)

    try:
        await asyncio.wait_for(drain(), timeout=seconds)
    except TimeoutError:
        pass
    finally:
        call.cancel()
    return items


async def test_return_status_and_events(served: Served, seeded: dict[str, Any]) -> None:
    request = returns_pb2.GetReturnStatusRequest(return_id="ISO-1")
    assert (
        await served.returns.GetReturnStatus(request, metadata=key_md("acme", "reader"))
    ).return_id == "ISO-1"
    for role in ("reader", "submitter", "auditor", "integration_admin"):
        code = await _code(served.returns.GetReturnStatus(request, metadata=key_md("beta", role)))
        assert code == grpc.StatusCode.NOT_FOUND, role
    watch = returns_pb2.WatchSyncEventsRequest(from_beginning=True)
    acme = await _stream(served.returns.WatchSyncEvents(watch, metadata=key_md("acme", "reader")))
    beta = await _stream(served.returns.WatchSyncEvents(watch, metadata=key_md("beta", "reader")))
    assert any(e.return_id == "ISO-1" for e in acme)
    assert all(e.tenant_id == "beta" for e in beta) and not any(e.return_id == "ISO-1" for e in beta)
    # Resuming from acme's sequence as beta does not reach acme's events either.
    resumed = await _stream(
        served.returns.WatchSyncEvents(
            returns_pb2.WatchSyncEventsRequest(after_sequence=acme[0].sequence),
            metadata=key_md("beta", "reader"),
        ),
        1.0,
    )
    assert all(e.tenant_id == "beta" for e in resumed)


async def test_sequences_are_opaque_per_tenant(served: Served, seeded: dict[str, Any]) -> None:
    submitted: returns_pb2.SubmitReturnResponse = seeded["submitted"]
    info = await served.app.js.stream_info("RB_DELIVER")  # type: ignore[union-attr]
    # Not the shared stream's position (which counts every tenant's submissions), and not small.
    assert submitted.stream_sequence not in range(0, int(info.state.last_seq) + 1)
    events = await _stream(
        served.returns.WatchSyncEvents(
            returns_pb2.WatchSyncEventsRequest(from_beginning=True), metadata=key_md("acme", "reader")
        )
    )
    events_info = await served.app.js.stream_info("RB_EVENTS")  # type: ignore[union-attr]
    assert all(e.sequence > events_info.state.last_seq for e in events)


async def test_dead_letters(served: Served, seeded: dict[str, Any]) -> None:
    listing = await served.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(), metadata=key_md("acme", "auditor")
    )
    (letter,) = [d for d in listing.dead_letters if d.return_id == "ISO-1"]
    assert letter.id != seeded["raw_dlq_id"]  # an opaque id, not RB_DLQ's global sequence
    shown = await served.admin.GetDeadLetter(
        admin_pb2.GetDeadLetterRequest(id=letter.id), metadata=key_md("acme", "auditor")
    )
    assert shown.return_id == "ISO-1" and shown.id == letter.id
    theirs = await served.admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(), metadata=key_md("beta", "auditor")
    )
    assert not [d for d in theirs.dead_letters if d.return_id == "ISO-1"]
    admin = key_md("beta", "integration_admin")
    for letter_id in (letter.id, seeded["raw_dlq_id"]):
        for call in (
            served.admin.GetDeadLetter(admin_pb2.GetDeadLetterRequest(id=letter_id), metadata=admin),
            served.admin.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(id=letter_id), metadata=admin),
            served.admin.DiscardDeadLetter(admin_pb2.DiscardDeadLetterRequest(id=letter_id), metadata=admin),
        ):
            assert await _code(call) == grpc.StatusCode.NOT_FOUND


async def test_inventory(served: Served, seeded: dict[str, Any]) -> None:
    get = inventory_pb2.GetInventoryRequest(sku="ISO-SKU", location={"site": "DAL1"})  # type: ignore[arg-type]
    assert (await served.inventory.GetInventory(get, metadata=key_md("acme", "reader"))).sku == "ISO-SKU"
    assert (
        await _code(served.inventory.GetInventory(get, metadata=key_md("beta", "reader")))
        == grpc.StatusCode.NOT_FOUND
    )
    listed = await served.inventory.ListInventory(
        inventory_pb2.ListInventoryRequest(), metadata=key_md("beta", "reader")
    )
    assert all(level.tenant_id == "beta" for level in listed.levels)
    watched = await _stream(
        served.inventory.WatchInventory(
            inventory_pb2.WatchInventoryRequest(include_snapshot=True), metadata=key_md("beta", "reader")
        ),
        1.0,
    )
    assert all(u.level.tenant_id == "beta" for u in watched)
    mine = await _stream(
        served.inventory.WatchInventory(
            inventory_pb2.WatchInventoryRequest(include_snapshot=True), metadata=key_md("acme", "reader")
        ),
        1.0,
    )
    revisions = await served.app.js.stream_info("KV_rb_inventory")  # type: ignore[union-attr]
    assert mine and all(u.sequence > revisions.state.last_seq for u in mine)


async def test_audit_and_reconciliation(served: Served, seeded: dict[str, Any]) -> None:
    async def entries(tenant: str) -> list[admin_pb2.AuditEntry]:
        page = await served.admin.QueryAudit(
            admin_pb2.QueryAuditRequest(page_size=1000), metadata=key_md(tenant, "auditor")
        )
        return list(page.entries)

    async def acme_audited() -> list[admin_pb2.AuditEntry]:
        # return.submitted is written from the stored submission by the audit scribe, just after the answer.
        found = await entries("acme")
        assert any(e.action == "return.submitted" for e in found)
        return found

    acme, beta = await assert_eventually(acme_audited), await entries("beta")
    assert acme and all(e.tenant_id == "acme" for e in acme)
    assert all(e.tenant_id == "beta" for e in beta)
    verified = {
        tenant: await served.admin.VerifyAudit(
            admin_pb2.VerifyAuditRequest(), metadata=key_md(tenant, "auditor")
        )
        for tenant in ("acme", "beta")
    }
    last_seq = (await served.app.js.stream_info("RB_AUDIT")).state.last_seq  # type: ignore[union-attr]
    # Each tenant counts its own entries only: beta cannot watch acme's activity through this number.
    assert verified["acme"].entries_checked == len(acme) < last_seq
    assert verified["beta"].entries_checked == len(beta)
    assert all(e.sequence > last_seq for e in acme)  # opaque, not chain positions
    report = await served.admin.GetReconciliationReport(
        admin_pb2.ReconciliationRequest(), metadata=key_md("beta", "reader")
    )
    assert "ISO-1" not in str(report)


async def test_tenant_in_the_body_cannot_name_another_tenant(served: Served, seeded: dict[str, Any]) -> None:
    foreign = order("ISO-2")
    foreign.tenant_id = "acme"
    code = await _code(
        served.returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=foreign), metadata=key_md("beta", "submitter")
        )
    )
    assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)
    status = returns_pb2.GetReturnStatusRequest(return_id="ISO-2")
    assert await _code(served.returns.GetReturnStatus(status, metadata=key_md("acme", "reader"))) == (
        grpc.StatusCode.NOT_FOUND
    )
