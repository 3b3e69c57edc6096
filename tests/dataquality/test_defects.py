"""Every data-quality defect kind x every ERP route, through the served SubmitReturn: refused at submit, counted,
nothing stored, and no document or ledger entry in any simulator (checked once the pipeline is idle)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY

from dataquality.conftest import Served
from dataquality.defects import DEFECTS, STATE, Defect
from dataquality.returns import ERPS, new_life
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _rejected(rule: str) -> float:
    return REGISTRY.get_sample_value("rb_rejected_total", {"rule": rule}) or 0.0


def _processing(outcome: str) -> float:
    return REGISTRY.get_sample_value("rb_processing_total", {"outcome": outcome}) or 0.0


def _details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    return status_pb2.Status.FromString(dict(error.trailing_metadata() or ())["grpc-status-details-bin"])


def _stored(record: dict[str, Any] | None) -> tuple[object, ...]:
    if record is None:
        return ()
    versions = {v: e["event"] for v, e in record["versions"].items()}
    lifecycle = record.get("lifecycle") or {}
    return versions, sorted(record["documents"]), lifecycle.get("versions"), lifecycle.get("state")


@pytest.mark.parametrize("erp", list(ERPS))
@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.id)
async def test_defect_is_refused_at_submit(served: Served, defect: Defect, erp: str) -> None:
    life = new_life(erp, defect.name, exchange=defect.exchange)
    for version, step in enumerate(defect.prelude, start=1):
        valid = life.order(version, step) if isinstance(step, int) else step(life, version)
        accepted = await served.submit(valid)
        assert accepted.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
        assert accepted.route.target == ERPS[erp]["target"]
    if defect.prelude:
        served.accepted.add((erp, life.return_id))
    version = defect.version or len(defect.prelude) + 1
    order = defect.build(life, version)
    before = (_stored(await served.record(life.return_id)), await served.idempotency_keys(life.return_id))
    counted, rejected = _rejected(defect.rule), _processing("rejected")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.submit(order)

    error = caught.value
    assert error.code() == defect.code, error.details()
    status = _details(error)
    if defect.code == STATE:
        failure = error_details_pb2.PreconditionFailure()
        assert any(d.Unpack(failure) for d in status.details), status
        (violation,) = failure.violations
        assert violation.type == defect.expect and violation.subject == f"returns/{life.return_id}"
        if defect.expect == "LIFECYCLE":
            event = returns_pb2.LifecycleEvent.Name(order.event).removeprefix("LIFECYCLE_EVENT_")
            assert "current state " in violation.description and f"event {event}" in violation.description
    else:
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in status.details), status
        fields = [v.field for v in bad.field_violations]
        assert any(f.endswith(defect.expect) for f in fields), (defect.expect, fields)
        # The answer names the field, never a Python class or a traceback.
        assert "Error" not in error.details() and "Traceback" not in error.details()
    assert _rejected(defect.rule) == counted + 1
    assert _processing("rejected") == rejected + 1
    # Nothing written: no idempotency record, no version, no document, no lifecycle step.
    after = (_stored(await served.record(life.return_id)), await served.idempotency_keys(life.return_id))
    assert after == before
    if version > len(defect.prelude):
        served.refused.append((erp, f"{life.rma}-{version}"))


@pytest.mark.parametrize("erp", list(ERPS))
async def test_policy_exception_refund_on_authorization_for_gold(served: Served, erp: str) -> None:
    """The documented exception: a gold customer's refund before receipt is accepted; standard is refused above."""
    life = new_life(erp, "advance-refund", tier="gold")
    for version, event in enumerate(
        (returns_pb2.LIFECYCLE_EVENT_AUTHORIZED, returns_pb2.LIFECYCLE_EVENT_REFUNDED), 1
    ):
        response = await served.submit(life.order(version, event))
        assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    # The goods arrive afterwards: a receipt is still allowed, a second refund is not.
    response = await served.submit(life.order(3, returns_pb2.LIFECYCLE_EVENT_RECEIVED))
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.submit(life.order(4, returns_pb2.LIFECYCLE_EVENT_REFUNDED))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = await served.returns.GetReturnStatus(
        returns_pb2.GetReturnStatusRequest(return_id=life.return_id), metadata=served.metadata
    )
    assert status.lifecycle_state == "REFUNDED" and status.latest_version == 3
    served.accepted.add((erp, life.return_id))
    served.refused.append((erp, f"{life.rma}-4"))


@pytest.mark.parametrize("erp", list(ERPS))
async def test_concurrent_events_from_one_state_admit_exactly_one(served: Served, erp: str) -> None:
    """RECEIVED and CANCELLED raced from AUTHORIZED at the same version: the KV compare-and-set admits one."""
    life = new_life(erp, "race")
    await served.submit(life.order(1, returns_pb2.LIFECYCLE_EVENT_AUTHORIZED))
    results = await asyncio.gather(
        served.submit(life.order(2, returns_pb2.LIFECYCLE_EVENT_RECEIVED)),
        served.submit(life.order(2, returns_pb2.LIFECYCLE_EVENT_CANCELLED)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(refused) == 1 and refused[0].code() == grpc.StatusCode.FAILED_PRECONDITION, results
    record = await served.record(life.return_id)
    assert record is not None and sorted(record["lifecycle"]["versions"]) == ["1", "2"]
    served.accepted.add((erp, life.return_id))


async def test_no_refused_event_reached_any_simulator(served: Served) -> None:
    """Once every accepted version is delivered, no simulator holds a document or ledger entry of a refused one,
    and every document and ledger entry belongs to a document our sync state delivered."""
    assert served.refused and served.accepted

    async def idle() -> dict[str, set[str]]:
        delivered: dict[str, set[str]] = {erp: set() for erp in ERPS}
        for erp, return_id in served.accepted:
            record = await served.record(return_id)
            assert record is not None
            for doc in record["documents"].values():
                assert doc["state"] == "DELIVERED", (return_id, doc["step"], doc["state"], doc["last_error"])
                delivered[erp].add(doc["erp_document_id"])
            for entry in record["versions"].values():
                assert entry["steps"] or entry["state"] == "DELIVERED", (return_id, entry)
        return delivered

    delivered = await assert_eventually(idle, timeout=60)
    for erp in ERPS:
        documents = await served.sim(erp, "documents")
        ledger = await served.sim(erp, "ledger")
        text = repr(documents) + repr(ledger)
        leaked = [ref for owner, ref in served.refused if owner == erp and ref in text]
        assert not leaked, (erp, leaked)
        posted = {str(entry["document_id"]) for entry in ledger["entries"]}
        assert posted <= delivered[erp], (erp, sorted(posted - delivered[erp])[:10])
        assert ledger["balanced"] is True
