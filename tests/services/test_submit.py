"""SubmitReturn / SubmitReturns through a real grpc.aio server and JetStream."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from delivery.pipeline_harness import Pipeline, make_order, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.bus import subjects
from returnbridge.domain.tenant_ids import default_ids
from returnbridge.services.intake import idempotency_kv_key
from returnbridge.services.returns import DELIVERY_SEQUENCE


async def _stream_messages(pipeline: Pipeline) -> int:
    info = await pipeline.nc.jetstream().stream_info(subjects.DELIVER_STREAM)
    return int(info.state.messages)


async def test_accepts_after_puback_and_routes(pipeline: Pipeline) -> None:
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    response = await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("R1", site="FRA2"), client_reference="c-1"),
        metadata=md("acme"),
    )
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    assert (response.tenant_id, response.return_id, response.version) == ("acme", "R1", 1)
    assert response.idempotency_key == "acme:R1:1:AUTHORIZED"
    assert response.route.target == "sap" and response.route.rule == "eu-to-sap"
    assert list(response.route.document_types) == ["A_CustomerReturn"]
    assert response.client_reference == "c-1"
    # The reply carries a per-tenant opaque id of the stream position (issue 12).
    position = default_ids().decode("acme", DELIVERY_SEQUENCE, response.stream_sequence)
    msg = await pipeline.nc.jetstream().get_msg(subjects.DELIVER_STREAM, seq=position)
    assert msg.subject == "rb.deliver.sap.acme"
    assert msg.headers["Nats-Msg-Id"] == "acme:R1:1:AUTHORIZED"
    stored = returns_pb2.ReturnOrder.FromString(msg.data)
    assert stored.tenant_id == "acme" and stored.return_id == "R1"
    status = await pipeline.status.get("acme", "R1")
    assert status is not None and status["versions"]["1"]["state"] == "ACCEPTED"


async def test_resubmission_is_duplicate_with_original_answer(pipeline: Pipeline) -> None:
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    request = returns_pb2.SubmitReturnRequest(return_order=make_order("R2"))
    first = await stub.SubmitReturn(request, metadata=md("acme"))
    second = await stub.SubmitReturn(request, metadata=md("acme"))
    assert second.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
    assert second.stream_sequence == first.stream_sequence
    assert second.accepted_at == first.accepted_at
    assert second.route == first.route
    assert await _stream_messages(pipeline) == 1
    # Another tenant with the same return id is a different return, not a duplicate.
    other = await stub.SubmitReturn(request, metadata=md("globex"))
    assert other.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED


async def test_same_key_other_payload_is_failed_precondition(pipeline: Pipeline) -> None:
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("R3")), metadata=md("acme")
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=make_order("R3", amount="20.00")),
            metadata=md("acme"),
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "different payload" in (info.value.details() or "")
    assert await _stream_messages(pipeline) == 1


async def test_invalid_input_writes_nothing(pipeline: Pipeline) -> None:
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    bad = make_order("R4")
    bad.lines[0].quantity = "-1"
    bad.version = 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=bad), metadata=md("acme"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = dict(info.value.trailing_metadata() or ()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(details)
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    assert {v.field for v in bad_request.field_violations} == {
        "return_order.version",
        "return_order.lines[0].quantity",
    }
    other_tenant = make_order("R5")
    other_tenant.tenant_id = "globex"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=other_tenant), metadata=md("acme")
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await _stream_messages(pipeline) == 0
    assert await pipeline.status.get("acme", "R4") is None
    kv = pipeline.buckets[subjects.IDEMPOTENCY_BUCKET]
    assert (await kv.status()).values == 0


async def test_crash_after_the_reservation_before_the_publish_is_completed_by_resubmit(
    pipeline: Pipeline,
) -> None:
    """Step 1 (admission + reservation) landed, step 2 (publish) did not: the resubmit publishes, ACCEPTED."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    order = make_order("R6")
    real_publish = pipeline.publisher.publish_delivery

    async def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionError("gateway lost its NATS connection")

    pipeline.publisher.publish_delivery = crash  # type: ignore[method-assign]
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme"))
    stored = await pipeline.status.get("acme", "R6")
    assert stored is not None and stored["lifecycle"]["latest_version"] == 1
    assert stored["versions"]["1"]["stream_sequence"] == 0  # reserved, no message named
    pipeline.publisher.publish_delivery = real_publish  # type: ignore[method-assign]
    response = await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme")
    )
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    assert await _stream_messages(pipeline) == 1
    stored = await pipeline.status.get("acme", "R6")
    assert stored is not None and stored["versions"]["1"]["stream_sequence"] == 1
    again = await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=order), metadata=md("acme"))
    assert again.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
    assert (again.stream_sequence, again.accepted_at) == (response.stream_sequence, response.accepted_at)


async def test_bulk_stream_answers_every_item(pipeline: Pipeline) -> None:
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    bad = make_order("B-bad")
    bad.lines[0].quantity = "zero"

    async def requests():  # type: ignore[no-untyped-def]
        for i in range(200):
            yield returns_pb2.SubmitReturnRequest(return_order=make_order(f"B{i}"), client_reference=f"c{i}")
        yield returns_pb2.SubmitReturnRequest(return_order=bad, client_reference="bad")
        yield returns_pb2.SubmitReturnRequest(return_order=make_order("B0"), client_reference="dup")

    results = [r async for r in stub.SubmitReturns(requests(), metadata=md("acme"))]
    assert len(results) == 202
    by_ref = {r.client_reference: r for r in results}
    assert by_ref["bad"].WhichOneof("result") == "error"
    assert by_ref["bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert by_ref["bad"].error.field_violations[0].field == "return_order.lines[0].quantity"
    # The resubmitted B0 may race the first one; either way both answers name the one stored message.
    assert by_ref["dup"].accepted.stream_sequence == by_ref["c0"].accepted.stream_sequence
    assert await _stream_messages(pipeline) == 200


async def test_bulk_stream_submits_each_returns_events_in_order(pipeline: Pipeline) -> None:
    """Events of one return in one stream are admitted in stream order, whatever the concurrency."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    life = (
        returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        returns_pb2.LIFECYCLE_EVENT_RECEIVED,
        returns_pb2.LIFECYCLE_EVENT_REFUNDED,
    )

    async def requests():  # type: ignore[no-untyped-def]
        for version, event in enumerate(life, start=1):
            for i in range(20):
                order = make_order(f"O{i}", version, event)
                yield returns_pb2.SubmitReturnRequest(return_order=order, client_reference=f"O{i}-{version}")
        # Out of order within the stream: refused by the lifecycle, never raced past it.
        stale = make_order("O0", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED, notes="changed")
        yield returns_pb2.SubmitReturnRequest(return_order=stale, client_reference="stale")

    results = [r async for r in stub.SubmitReturns(requests(), metadata=md("acme"))]
    by_ref = {r.client_reference: r for r in results}
    assert all(by_ref[f"O{i}-{v}"].WhichOneof("result") == "accepted" for i in range(20) for v in (1, 2, 3))
    assert by_ref["stale"].error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert await _stream_messages(pipeline) == 60


def _refuse_publish(pipeline: Pipeline) -> None:
    async def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a duplicate must be answered without publishing again")

    pipeline.publisher.publish_delivery = refuse  # type: ignore[method-assign]


async def _named(pipeline: Pipeline, return_id: str, version: int = 1) -> int:
    async def check() -> int:
        stored = await pipeline.status.get("acme", return_id)
        assert stored is not None and stored["versions"][str(version)]["stream_sequence"]
        return int(stored["versions"][str(version)]["stream_sequence"])

    return await assert_eventually(check)


async def test_duplicate_is_answered_from_the_named_message_not_the_dedup_window(pipeline: Pipeline) -> None:
    """Past JetStream's duplicate window a republish would store a second message: a named one never republishes."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    request = returns_pb2.SubmitReturnRequest(return_order=make_order("R20"))
    first = await stub.SubmitReturn(request, metadata=md("acme"))
    # The answer does not wait for the message to be named in the sync record; it lands right after.
    assert await _named(pipeline, "R20") == default_ids().decode(
        "acme", DELIVERY_SEQUENCE, first.stream_sequence
    )
    _refuse_publish(pipeline)
    again = await stub.SubmitReturn(request, metadata=md("acme"))
    assert again.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
    assert (again.stream_sequence, again.accepted_at, again.route) == (
        first.stream_sequence,
        first.accepted_at,
        first.route,
    )
    assert again.idempotency_key == first.idempotency_key
    assert await _stream_messages(pipeline) == 1


def _lose_naming(pipeline: Pipeline) -> list[int]:
    """The gateway dies after the PubAck, before the message is named: its one naming write never lands."""
    real_confirm = pipeline.status.confirm
    lost: list[int] = []

    async def confirm(*args: Any, **kwargs: Any) -> Any:
        if not lost:
            lost.append(args[3])
            raise ConnectionError("gateway lost its NATS connection after the PubAck")
        return await real_confirm(*args, **kwargs)

    pipeline.status.confirm = confirm  # type: ignore[method-assign]
    return lost


async def test_crash_between_puback_and_naming_is_completed_by_resubmit(pipeline: Pipeline) -> None:
    """Step 2 (publish) landed, the naming did not: within the window the republish is deduplicated (DUPLICATE)."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    request = returns_pb2.SubmitReturnRequest(return_order=make_order("R21"))
    lost = _lose_naming(pipeline)
    first = await stub.SubmitReturn(request, metadata=md("acme"))
    assert first.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    await pipeline.intake.drain()
    assert lost == [1]
    stored = await pipeline.status.get("acme", "R21")
    # Reserved before the publish, so GetReturnStatus shows it; the message is not named.
    assert stored is not None and stored["versions"]["1"]["stream_sequence"] == 0
    response = await stub.SubmitReturn(request, metadata=md("acme"))
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
    assert (response.stream_sequence, response.accepted_at) == (first.stream_sequence, first.accepted_at)
    assert await _stream_messages(pipeline) == 1
    assert await _named(pipeline, "R21") == 1
    _refuse_publish(pipeline)
    again = await stub.SubmitReturn(request, metadata=md("acme"))
    assert again.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE
    assert (again.stream_sequence, again.accepted_at) == (first.stream_sequence, first.accepted_at)


async def test_a_retry_past_the_window_stores_a_second_copy_and_only_the_named_one_delivers(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """The publish landed, the naming did not, and the retry comes after the dedup window: two messages, one
    ERP document (the worker acks the copy that is not named, and names a reserved version itself)."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    request = returns_pb2.SubmitReturnRequest(return_order=make_order("R23"))
    _lose_naming(pipeline)
    await stub.SubmitReturn(request, metadata=md("acme"))
    await pipeline.intake.drain()
    real_publish = pipeline.publisher.publish_delivery

    async def past_window(*args: Any, **kwargs: Any) -> Any:
        kwargs["msg_id"] = str(kwargs["msg_id"]) + ":past-the-window"  # what JetStream no longer deduplicates
        return await real_publish(*args, **kwargs)

    pipeline.publisher.publish_delivery = past_window  # type: ignore[method-assign]
    retried = await stub.SubmitReturn(request, metadata=md("acme"))
    assert await _stream_messages(pipeline) == 2
    named = await _named(pipeline, "R23")
    assert default_ids().decode("acme", DELIVERY_SEQUENCE, retried.stream_sequence) == named == 2
    erp = await pipeline.start_worker()

    async def delivered() -> None:
        stored = await pipeline.status.get("acme", "R23")
        assert stored is not None
        assert [d["state"] for d in stored["documents"].values()] == ["DELIVERED"]
        info = await pipeline.nc.jetstream().consumer_info(subjects.DELIVER_STREAM, "rb-deliver-netsuite")
        assert info.num_pending == 0 and info.num_ack_pending == 0

    await assert_eventually(delivered)
    assert sum(erp.creates.values()) == 1 and len(erp.requests) == 1
    # Message 1 was acked as the copy, not delivered (in one worker the lookup would hide a second delivery;
    # across worker processes both copies could reach the ERP at once).
    assert "message 1 is a second copy of 2" in caplog.text


async def test_a_worker_names_a_reserved_version_before_delivering_it(pipeline: Pipeline) -> None:
    """The gateway died after the PubAck and nobody retried: the worker names the message, then delivers."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    _lose_naming(pipeline)
    await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("R24")), metadata=md("acme")
    )
    await pipeline.intake.drain()
    erp = await pipeline.start_worker()

    async def delivered() -> None:
        stored = await pipeline.status.get("acme", "R24")
        assert stored is not None and stored["versions"]["1"]["stream_sequence"] == 1
        assert [d["state"] for d in stored["documents"].values()] == ["DELIVERED"]

    await assert_eventually(delivered)
    assert sum(erp.creates.values()) == 1


async def test_version_held_by_another_event_is_refused_and_nothing_is_published(pipeline: Pipeline) -> None:
    """A second event at an accepted version used to be ACCEPTED and then fail in the worker (KeyError)."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("R22")), metadata=md("acme")
    )
    other = returns_pb2.SubmitReturnRequest(
        return_order=make_order("R22", event=returns_pb2.LIFECYCLE_EVENT_RECEIVED)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitReturn(other, metadata=md("acme"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = status_pb2.Status.FromString(dict(caught.value.trailing_metadata())["grpc-status-details-bin"])
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    (violation,) = failure.violations
    assert violation.type == "VERSION" and violation.subject == "returns/R22"
    assert "already accepted as AUTHORIZED" in violation.description
    assert await _stream_messages(pipeline) == 1


async def test_a_return_accepted_before_histories_were_kept_is_adopted(pipeline: Pipeline) -> None:
    """A sync record without a lifecycle history (an upgrade): its versions set the state and the version floor."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    old = make_order("R30")
    old.tenant_id = "acme"
    await pipeline.status.register(
        old, returns_pb2.RouteDecision(target="netsuite"), [], stream_sequence=1, accepted_at=1.0
    )
    record = await pipeline.status.get("acme", "R30")
    assert record is not None and "lifecycle" not in record
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitReturn(
            returns_pb2.SubmitReturnRequest(
                return_order=make_order("R30", 2, returns_pb2.LIFECYCLE_EVENT_REFUNDED)
            ),
            metadata=md("acme"),
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "in state AUTHORIZED" in caught.value.details()
    received = make_order("R30", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED)
    response = await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=received), metadata=md("acme")
    )
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    record = await pipeline.status.get("acme", "R30")
    assert record is not None and record["lifecycle"]["state"] == "RECEIVED" and record["lifecycle"]["legacy"]


async def test_a_version_admitted_by_an_earlier_release_is_completed_from_its_idempotency_record(
    pipeline: Pipeline,
) -> None:
    """Before admissions reserved versions, a crash after the admission left the history booked, no version
    entry, and a pending ``rb_idempotency`` record: the retry reserves the version from that record (its
    ``accepted_at`` and route) and publishes; another payload under the key is refused."""
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    order = make_order("R31")
    order.tenant_id = "acme"
    digest = hashlib.sha256(order.SerializeToString(deterministic=True)).hexdigest()
    assert pipeline.intake.admissions is not None
    await pipeline.intake.admissions.admit(order, digest)  # the earlier release: no reservation
    route = returns_pb2.RouteDecision(target="netsuite", rule="earlier-rule")
    old = {
        "key": "acme:R31:1:AUTHORIZED",
        "digest": digest,
        "state": "pending",
        "accepted_at": 1000.5,
        "route": base64.b64encode(route.SerializeToString()).decode(),
        "stream_sequence": 0,
    }
    kv = pipeline.buckets[subjects.IDEMPOTENCY_BUCKET]
    await kv.create(idempotency_kv_key(order), json.dumps(old).encode())
    other = make_order("R31", amount="20.00")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(return_order=other), metadata=md("acme"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    response = await stub.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("R31")), metadata=md("acme")
    )
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    assert response.accepted_at.ToNanoseconds() == 1000_500_000_000
    assert response.route.rule == "earlier-rule"
    stored = await pipeline.status.get("acme", "R31")
    assert stored is not None and stored["versions"]["1"]["stream_sequence"] == 1
    assert await _stream_messages(pipeline) == 1
