"""Submissions, ERP documents, dead letters and operator replays land in the audit log, per tenant."""

from __future__ import annotations

from delivery.pipeline_harness import FakeErp, Pipeline, fast_settings, make_order, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.audit.log import AuditLog
from returnbridge.delivery.worker import DeliveryWorker
from returnbridge.services.admin import AdminServicer
from returnbridge.services.returns import ReturnsServicer


async def test_audit_trail_of_a_dead_letter_and_its_replay(pipeline: Pipeline) -> None:
    js = pipeline.nc.jetstream()
    audit = await AuditLog.open(js)
    await pipeline.start_audit_scribe(audit)
    erp = FakeErp()
    worker = DeliveryWorker(
        "netsuite",
        erp,
        pipeline.mappers,
        js,
        pipeline.status,
        pipeline.dead_letters,
        fast_settings(),
        audit=audit,
    )
    await worker.start()
    pipeline.workers.append(worker)
    channel = await pipeline.start_grpc(
        ReturnsServicer(pipeline.intake, pipeline.status, js),
        AdminServicer(pipeline.dead_letters, pipeline.status, audit),
    )
    returns = returns_pb2_grpc.ReturnsServiceStub(channel)
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    pipeline.mappers.broken.add("A1")
    await returns.SubmitReturn(
        returns_pb2.SubmitReturnRequest(return_order=make_order("A1")), metadata=md("acme")
    )

    async def dead_lettered() -> int:
        page = await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=md("acme"))
        assert len(page.dead_letters) == 1
        return page.dead_letters[0].id

    letter_id = await assert_eventually(dead_lettered)
    pipeline.mappers.broken.clear()
    await admin.ReplayDeadLetter(
        admin_pb2.ReplayDeadLetterRequest(id=letter_id, comment="fixed unit price rule"), metadata=md("acme")
    )

    async def trail() -> list[admin_pb2.AuditEntry]:
        page = await admin.QueryAudit(admin_pb2.QueryAuditRequest(page_size=100), metadata=md("acme"))
        actions = [e.action for e in page.entries]
        # return.submitted is written from the stored message by the audit scribe, concurrently with the
        # worker's dead-lettering; the replay is published before the admin service records it, so the worker
        # may audit the document first. The replayed message is not a second submission.
        assert sorted(actions) == sorted(
            ["return.submitted", "dlq.dead_lettered", "dlq.replayed", "erp.document_created"]
        ), actions
        assert actions.index("dlq.dead_lettered") < actions.index("dlq.replayed")
        return list(page.entries)

    entries = {e.action: e for e in await assert_eventually(trail)}
    replayed, created = entries["dlq.replayed"], entries["erp.document_created"]
    assert replayed.actor == "rms@acme" and replayed.details["comment"] == "fixed unit price rule"
    # Written by the scribe in the name of the caller who submitted it.
    assert entries["return.submitted"].actor == "rms@acme"
    assert created.details["erp_document_id"] == next(iter(erp.documents.values())).document_id
    other = await admin.QueryAudit(admin_pb2.QueryAuditRequest(page_size=100), metadata=md("globex"))
    assert list(other.entries) == []
    verified = await admin.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=md("acme"))
    assert verified.intact and verified.entries_checked == 4
