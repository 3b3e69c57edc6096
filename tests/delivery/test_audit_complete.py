"""A complete audit trail: no delivered ERP document and no accepted version without its audit entry."""

from __future__ import annotations

import asyncio
from typing import Any

import nats

from delivery.pipeline_harness import FakeErp, Pipeline, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_stream
from returnbridge.bus import subjects
from returnbridge.bus.consumer import SUBMITTED_AUDIT_CONSUMER, ensure_submitted_audit_consumer
from returnbridge.delivery.submitted_audit import SubmittedAuditor
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import ConflictError
from returnbridge.services.intake import Intake
from returnbridge.sync.audit_completeness import check_audit_completeness


class FlakyAudit(AuditLog):
    """The real log, whose ERP-document appends lose the chain race ``failures`` times first."""

    failures = 0

    async def record(self, **fields: Any) -> int:
        if fields["action"].startswith("erp.document_") and self.failures > 0:
            self.failures -= 1
            raise ConflictError("audit append lost the race 200 times")
        return await super().record(**fields)


async def test_a_failed_audit_append_is_retried_before_delivered_is_stored(pipeline: Pipeline) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    audit = await FlakyAudit.open(pipeline.nc.jetstream())
    audit.failures = 2
    intake = Intake(
        pipeline.router,
        pipeline.publisher,
        pipeline.buckets[subjects.IDEMPOTENCY_BUCKET],
        pipeline.status,
    )
    erp = FakeErp()
    await pipeline.start_worker("netsuite", erp=erp, audit=audit)
    await pipeline.start_audit_scribe(audit)
    await intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("A1")))

    async def delivered() -> None:
        record = await pipeline.status.get("acme", "A1")
        assert record is not None and record["documents"]["1:return_authorization"]["state"] == "DELIVERED"

    await assert_eventually(delivered, timeout=30)
    assert audit.failures == 0 and sum(erp.creates.values()) == 1
    ids = [d.document_id for d in erp.documents.values()]
    report = await check_audit_completeness(
        audit,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        erp_document_ids=ids,
        scribe=pipeline.nc.jetstream(),
    )
    assert report.ok, report.gaps
    assert (report.versions, report.documents, report.erp_documents) == (1, 1, 1)


async def test_completeness_reports_a_document_without_its_entry(pipeline: Pipeline) -> None:
    """The check can fail: a delivered document whose audit entry was never written is a gap."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    audit = await AuditLog.open(pipeline.nc.jetstream())
    erp = FakeErp()
    await pipeline.start_worker("netsuite")  # a worker without an audit log
    pipeline.erps["netsuite"] = erp
    intake = Intake(
        pipeline.router,
        pipeline.publisher,
        pipeline.buckets[subjects.IDEMPOTENCY_BUCKET],
        pipeline.status,
    )
    await pipeline.start_audit_scribe(audit)
    await intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("G1")))

    async def delivered() -> None:
        record = await pipeline.status.get("acme", "G1")
        assert record is not None and record["documents"]["1:return_authorization"]["state"] == "DELIVERED"

    await assert_eventually(delivered, timeout=30)
    report = await check_audit_completeness(
        audit,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        erp_document_ids=["no-such-id"],
        scribe=pipeline.nc.jetstream(),
    )
    assert len(report.gaps) == 2, report.gaps
    assert "delivered without an erp.document_* entry" in report.gaps[0]
    assert "ERP document no-such-id" in report.gaps[1]


async def test_burst_with_two_racing_writers_leaves_no_gap(pipeline: Pipeline, nats_server: Any) -> None:
    """Gateway and worker append from separate connections (as separate processes do) at a burst rate."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    worker_nc = await nats.connect(nats_server.url)
    try:
        gateway_audit = await AuditLog.open(pipeline.nc.jetstream())
        worker_audit = await AuditLog.open(worker_nc.jetstream())
        intake = Intake(
            pipeline.router,
            pipeline.publisher,
            pipeline.buckets[subjects.IDEMPOTENCY_BUCKET],
            pipeline.status,
        )
        erp = FakeErp()
        await pipeline.start_worker("netsuite", erp=erp, audit=worker_audit)
        # The scribe (here on the gateway's connection) races the worker for the chain's tail.
        await pipeline.start_audit_scribe(gateway_audit)
        count = 300
        await asyncio.gather(
            *(
                intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order(f"B{i}")))
                for i in range(count)
            )
        )

        async def all_delivered() -> None:
            assert sum(erp.creates.values()) == count
            for i in range(0, count, 37):
                record = await pipeline.status.get("acme", f"B{i}")
                assert (
                    record is not None
                    and record["documents"]["1:return_authorization"]["state"] == "DELIVERED"
                )

        await assert_eventually(all_delivered, timeout=120)

        async def complete() -> None:
            report = await check_audit_completeness(
                gateway_audit,
                pipeline.buckets[subjects.SYNC_STATE_BUCKET],
                erp_document_ids=[d.document_id for d in erp.documents.values()],
            )
            assert report.ok, report.gaps[:5]
            assert (report.versions, report.documents, report.erp_documents) == (count, count, count)

        await assert_eventually(complete, timeout=60, interval=0.5)
        chain = await verify_stream(gateway_audit)
        assert chain.ok, chain.problems[:5]
    finally:
        await worker_nc.drain()


async def test_an_accepted_event_gets_its_entry_from_the_stream_even_if_no_writer_was_up(
    pipeline: Pipeline,
) -> None:
    """The stored message is the authority: accepted while no scribe runs (as if the gateway died right after the
    PubAck), the check reports the gap and what the scribe still owes; once a scribe runs, the entry is there."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    audit = await AuditLog.open(pipeline.nc.jetstream())
    js = pipeline.nc.jetstream()
    await ensure_submitted_audit_consumer(js)  # as every gateway does before serving
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("K1")))
    sync_state = pipeline.buckets[subjects.SYNC_STATE_BUCKET]

    async def owed() -> None:
        # Polled: nats-server counts a consumer's pending messages a moment after the store (once, in CI, the
        # consumer info taken right after the PubAck still said 0).
        report = await check_audit_completeness(audit, sync_state, scribe=js, scribe_wait_seconds=0)
        assert report.gaps == ["acme/K1 v1: accepted without a return.submitted entry"]
        assert report.unaudited == 1 and "1 stored submissions still wait" in report.summary()

    await assert_eventually(owed, timeout=10)

    await pipeline.start_audit_scribe(audit)
    report = await check_audit_completeness(audit, sync_state, scribe=js, scribe_wait_seconds=60)
    assert report.ok, report.gaps
    assert (report.versions, report.unaudited) == (1, 0)
    page = await audit.query(tenant_id="acme", action="return.submitted")
    (entry,) = page.entries
    assert entry.object_id == "K1:1" and entry.actor == "rms" and entry.details["target"] == "netsuite"


async def test_a_scribe_that_dies_before_its_ack_leaves_one_entry_not_two(pipeline: Pipeline) -> None:
    """The entry landed, the ack never did (the scribe's process died): the redelivered message is written again
    by another scribe, and JetStream drops that second append by its message id (the idempotency key's)."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    js = pipeline.nc.jetstream()
    await ensure_submitted_audit_consumer(js)
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("K2")))

    dying = SubmittedAuditor(js, await AuditLog.open(js))
    sub = await js.pull_subscribe_bind(consumer=SUBMITTED_AUDIT_CONSUMER, stream=subjects.DELIVER_STREAM)
    (msg,) = await sub.fetch(1, timeout=10)

    async def lost_ack() -> None:  # the process is gone before its ack is sent
        return None

    msg.ack = lost_ack  # type: ignore[method-assign]
    await dying.write([msg])
    await msg.nak()  # what the ack wait would do after the death, without waiting for it
    await sub.unsubscribe()

    audit = await AuditLog.open(js)  # another process's writer: it does not know the dead one's tail
    await pipeline.start_audit_scribe(audit)
    sync_state = pipeline.buckets[subjects.SYNC_STATE_BUCKET]

    async def redelivered_and_written() -> None:
        info = await js.consumer_info(subjects.DELIVER_STREAM, SUBMITTED_AUDIT_CONSUMER)
        # Delivered twice (consumer sequence 2: the redelivery), and acknowledged since.
        assert info.delivered is not None and info.ack_floor is not None, info
        assert info.delivered.consumer_seq >= 2, info
        assert info.ack_floor.consumer_seq == info.delivered.consumer_seq and not info.num_pending, info

    await assert_eventually(redelivered_and_written, timeout=60, interval=0.2)
    page = await audit.query(tenant_id="acme", action="return.submitted")
    assert [e.object_id for e in page.entries] == ["K2:1"]
    report = await check_audit_completeness(audit, sync_state, scribe=js, scribe_wait_seconds=10)
    assert report.ok and not report.duplicates, (report.gaps, report.duplicates)
    chain = await verify_stream(audit)
    assert chain.ok, chain.problems[:5]


def test_the_check_reads_the_delivery_headers_by_their_names() -> None:
    from returnbridge.delivery import headers
    from returnbridge.sync import audit_completeness

    assert (audit_completeness.H_IDEMPOTENCY, audit_completeness.H_REPLAY_OF) == (
        headers.H_IDEMPOTENCY,
        headers.H_REPLAY_OF,
    )


async def test_a_reserved_version_never_published_owes_no_entry_but_a_published_unnamed_one_does(
    pipeline: Pipeline,
) -> None:
    """The admission reserves a version before its publish. Stopped before the publish, nothing was accepted: no
    gap. Stopped after the PubAck but before naming the message (no worker ran since), it was accepted: the
    check finds its message in the stream, and the missing entry is a gap."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    audit = await AuditLog.open(pipeline.nc.jetstream())
    js = pipeline.nc.jetstream()
    await ensure_submitted_audit_consumer(js)
    real_publish = pipeline.publisher.publish_delivery

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("gateway lost its NATS connection")

    pipeline.publisher.publish_delivery = down  # type: ignore[method-assign]
    try:
        await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("V1")))
    except ConnectionError:
        pass
    pipeline.publisher.publish_delivery = real_publish  # type: ignore[method-assign]

    async def lost(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("gateway died after the PubAck")

    pipeline.status.confirm = lost  # type: ignore[method-assign]
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("V2")))
    await pipeline.intake.drain()
    sync_state = pipeline.buckets[subjects.SYNC_STATE_BUCKET]
    for return_id in ("V1", "V2"):
        record = await pipeline.status.get("acme", return_id)
        assert record is not None and record["versions"]["1"]["stream_sequence"] == 0
    report = await check_audit_completeness(audit, sync_state, scribe=js, scribe_wait_seconds=0)
    assert report.gaps == ["acme/V2 v1: accepted without a return.submitted entry"]
    assert (report.versions, report.reserved) == (1, 1)
    assert "1 reserved versions never published" in report.summary()
