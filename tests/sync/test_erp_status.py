"""What the ERP reports about a delivered document: found by reference, changed once, never undone by a late report."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from delivery.pipeline_harness import Pipeline, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import inventory_pb2, returns_pb2
from returnbridge.domain.context import Principal, set_principal


def _report(
    document_id: str, status: str, at: int, reference: str = "RMA-E1-1"
) -> inventory_pb2.DocumentStatus:
    report = inventory_pb2.DocumentStatus(
        tenant_id="acme",
        document_type="returnAuthorization",
        document_id=document_id,
        external_reference=reference,
        status=status,
        as_of=Timestamp(seconds=at),
    )
    report.amount.amount, report.amount.currency = "19.99", "USD"
    return report


async def test_erp_status_changes_once_and_a_late_older_report_never_undoes_it(pipeline: Pipeline) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    await pipeline.start_worker("netsuite")
    order = make_order("E1", 1, returns_pb2.LIFECYCLE_EVENT_AUTHORIZED)
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))

    async def delivered() -> str:
        record = await pipeline.status.get("acme", "E1")
        assert record is not None
        (doc,) = record["documents"].values()
        assert doc["state"] == "DELIVERED"
        return str(doc["erp_document_id"])

    document_id = await assert_eventually(delivered)
    note = pipeline.status.note_erp_status
    assert await note(_report(document_id, "closed", 200))
    assert not await note(_report(document_id, "closed", 200))  # the next poll, a duplicate push
    assert not await note(_report(document_id, "pending_receipt", 100))  # older, arriving late
    assert not await note(_report("999999", "cancelled", 300))  # not a document of this return
    assert not await note(_report(document_id, "cancelled", 300, reference="RMA-OTHER-1"))
    assert not await note(_report(document_id, "cancelled", 300, reference="no-version"))
    assert await note(_report(document_id, "cancelled", 300))
    record = await pipeline.status.get("acme", "E1")
    assert record is not None
    (doc,) = record["documents"].values()
    assert (doc["erp_status"], doc["erp_amount"], doc["state"]) == (
        "cancelled",
        {"amount": "19.99", "currency": "USD"},
        "DELIVERED",
    )
