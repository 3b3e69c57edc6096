"""GetReturnStatus, WatchSyncEvents and AdminService dead letters over gRPC, tenant-scoped."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from delivery.pipeline_harness import LIFECYCLE, FakeErp, Pipeline, make_order, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.errors import PermanentErpError, SpecError
from returnbridge.services.admin import AdminServicer


def check_spec(text: str, file_name: str, base: str) -> list[SpecError]:
    return (
        [SpecError("unknown op 'frobnicate'", file=file_name, line=3, rule="lines.qty")]
        if "frob" in text
        else []
    )


async def _setup(
    pipeline: Pipeline,
) -> tuple[returns_pb2_grpc.ReturnsServiceStub, admin_pb2_grpc.AdminServiceStub]:
    admin = AdminServicer(pipeline.dead_letters, pipeline.status, check_spec=check_spec)
    channel = await pipeline.start_grpc(pipeline.returns_servicer(), admin)
    return returns_pb2_grpc.ReturnsServiceStub(channel), admin_pb2_grpc.AdminServiceStub(channel)


async def test_status_per_document_and_cross_tenant_not_found(pipeline: Pipeline) -> None:
    returns, _ = await _setup(pipeline)
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["itemReceipt"] = [PermanentErpError("location 9 inactive", erp="netsuite", code="INVALID_FLD")]
    await pipeline.start_worker("netsuite")
    for version, event in enumerate(LIFECYCLE, start=1):
        await returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=make_order("S1", version, event)),
            metadata=md("acme"),
        )

    async def settled() -> sync_pb2.ReturnSyncStatus:
        status = await returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id="S1"), metadata=md("acme")
        )
        assert [d.state for d in status.documents] == [
            sync_pb2.SYNC_STATE_DELIVERED,
            sync_pb2.SYNC_STATE_DEAD_LETTERED,
            sync_pb2.SYNC_STATE_WAITING,
        ]
        return status

    status = await assert_eventually(settled)
    assert status.state == sync_pb2.SYNC_STATE_DEAD_LETTERED
    assert status.latest_version == 3 and status.rma_number == "RMA-S1"
    assert status.documents[0].erp_document_id and status.documents[0].attempts == 1
    assert status.documents[1].last_error.code == "INVALID_FLD"
    assert status.documents[1].last_error.error_class == 2
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id="S1"), metadata=md("globex")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    by_rma = await returns.GetReturnStatus(
        returns_pb2.GetReturnStatusRequest(rma_number="RMA-S1"), metadata=md("acme")
    )
    assert by_rma.return_id == "S1" and by_rma.latest_version == 3
    for request, code in (
        (returns_pb2.GetReturnStatusRequest(rma_number="RMA-S1"), grpc.StatusCode.NOT_FOUND),  # other tenant
        (returns_pb2.GetReturnStatusRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            returns_pb2.GetReturnStatusRequest(return_id="S1", rma_number="RMA-S1"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await returns.GetReturnStatus(request, metadata=md("globex"))
        assert info.value.code() == code, request


async def test_watch_filters_and_resumes_from_sequence(pipeline: Pipeline) -> None:
    returns, _ = await _setup(pipeline)
    await pipeline.start_worker("netsuite")
    for rid in ("W1", "W2"):
        await returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=make_order(rid)), metadata=md("acme")
        )
    await returns.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("W1")), metadata=md("globex")
    )

    async def collect(
        request: returns_pb2.WatchSyncEventsRequest, tenant: str, count: int
    ) -> list[sync_pb2.SyncEvent]:
        events: list[sync_pb2.SyncEvent] = []
        call = returns.WatchSyncEvents(request, metadata=md(tenant))
        async for event in call:
            events.append(event)
            if len(events) == count:
                call.cancel()
                break
        return events

    delivered = await asyncio.wait_for(
        collect(
            returns_pb2.WatchSyncEventsRequest(
                from_beginning=True, return_ids=["W1"], states=[sync_pb2.SYNC_STATE_DELIVERED]
            ),
            "acme",
            1,
        ),
        timeout=10,
    )
    assert delivered[0].return_id == "W1" and delivered[0].tenant_id == "acme"
    everything = await asyncio.wait_for(
        collect(returns_pb2.WatchSyncEventsRequest(from_beginning=True), "acme", 6), timeout=10
    )
    assert all(e.tenant_id == "acme" for e in everything)
    # Sequences are per-tenant opaque ids (issue 12): distinct and resumable, not ordered numbers.
    assert len({e.sequence for e in everything}) == len(everything) and all(e.sequence for e in everything)
    resumed = await asyncio.wait_for(
        collect(returns_pb2.WatchSyncEventsRequest(after_sequence=everything[2].sequence), "acme", 3),
        timeout=10,
    )
    assert [e.sequence for e in resumed] == [e.sequence for e in everything[3:6]]
    # Another tenant never sees acme's events.
    theirs = await asyncio.wait_for(
        collect(returns_pb2.WatchSyncEventsRequest(from_beginning=True), "globex", 1), timeout=10
    )
    assert theirs[0].tenant_id == "globex"


async def test_dead_letters_list_get_replay_discard_are_tenant_scoped(pipeline: Pipeline) -> None:
    returns, admin = await _setup(pipeline)
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    pipeline.mappers.broken.update({"D1", "D2"})
    await pipeline.start_worker("netsuite")
    for rid in ("D1", "D2"):
        await returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=make_order(rid)), metadata=md("acme")
        )

    async def two_letters() -> list[admin_pb2.DeadLetter]:
        page = await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=md("acme"))
        assert len(page.dead_letters) == 2
        return list(page.dead_letters)

    letters = await assert_eventually(two_letters)
    assert {letter.return_id for letter in letters} == {"D1", "D2"}
    assert all(letter.reason.startswith("translation failed") for letter in letters)
    one_page = await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(page_size=1), metadata=md("acme"))
    assert len(one_page.dead_letters) == 1 and one_page.next_page_token
    rest = await admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(page_size=1, page_token=one_page.next_page_token),
        metadata=md("acme"),
    )
    assert [d.id for d in rest.dead_letters] == [letters[1].id]
    d1 = next(letter for letter in letters if letter.return_id == "D1")
    d2 = next(letter for letter in letters if letter.return_id == "D2")

    for call, request in (
        (admin.GetDeadLetter, admin_pb2.GetDeadLetterRequest(id=d1.id)),
        (admin.ReplayDeadLetter, admin_pb2.ReplayDeadLetterRequest(id=d1.id)),
        (admin.DiscardDeadLetter, admin_pb2.DiscardDeadLetterRequest(id=d1.id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(request, metadata=md("globex"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert (
        await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=md("globex"))
    ).dead_letters == []

    full = await admin.GetDeadLetter(admin_pb2.GetDeadLetterRequest(id=d1.id), metadata=md("acme"))
    assert returns_pb2.ReturnOrder.FromString(full.payload).return_id == "D1"
    pipeline.mappers.broken.clear()
    replayed = await admin.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(id=d1.id), metadata=md("acme"))
    assert replayed.dead_letter.state == admin_pb2.DEAD_LETTER_STATE_REPLAYED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await admin.ReplayDeadLetter(admin_pb2.ReplayDeadLetterRequest(id=d1.id), metadata=md("acme"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    discarded = await admin.DiscardDeadLetter(
        admin_pb2.DiscardDeadLetterRequest(id=d2.id), metadata=md("acme")
    )
    assert discarded.state == admin_pb2.DEAD_LETTER_STATE_DISCARDED

    async def delivered_once() -> None:
        status = await returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id="D1"), metadata=md("acme")
        )
        assert status.documents[0].state == sync_pb2.SYNC_STATE_DELIVERED

    await assert_eventually(delivered_once)
    assert sum(erp.creates.values()) == 1
    pending = await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=md("acme"))
    assert pending.dead_letters == []
    resolved = await admin.ListDeadLetters(
        admin_pb2.ListDeadLettersRequest(include_resolved=True), metadata=md("acme")
    )
    assert {d.state for d in resolved.dead_letters} == {
        admin_pb2.DEAD_LETTER_STATE_REPLAYED,
        admin_pb2.DEAD_LETTER_STATE_DISCARDED,
    }


async def test_validate_mapping_reports_problems(pipeline: Pipeline) -> None:
    _, admin = await _setup(pipeline)
    bad = await admin.ValidateMapping(
        admin_pb2.ValidateMappingRequest(spec_yaml="rules:\n  - x\n  - frob\n", file_name="o.yaml"),
        metadata=md("acme"),
    )
    assert not bad.valid
    assert (bad.problems[0].file, bad.problems[0].line, bad.problems[0].rule) == ("o.yaml", 3, "lines.qty")
    good = await admin.ValidateMapping(
        admin_pb2.ValidateMappingRequest(spec_yaml="rules:\n  - a\n  - b\n"), metadata=md("acme")
    )
    assert good.valid and good.rule_count == 2
