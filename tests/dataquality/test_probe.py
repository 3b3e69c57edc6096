"""The independent tester's corpus (``probes.py``) x every ERP route, through the served SubmitReturn: each defect
refused at submit naming its field (or precondition), counted, nothing stored, and no simulator document or
ledger entry of it once the pipeline is idle. One served app for the module, as ``test_defects.py``."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY

from dataquality.conftest import Served
from dataquality.defects import STATE, Defect
from dataquality.probes import KNOWN_GAPS, PROBES
from dataquality.returns import ERPS, new_life
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _rejected(rule: str) -> float:
    return REGISTRY.get_sample_value("rb_rejected_total", {"rule": rule}) or 0.0


def _details(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    return status_pb2.Status.FromString(dict(error.trailing_metadata() or ())["grpc-status-details-bin"])


def _stored(record: dict[str, Any] | None) -> tuple[object, ...]:
    if record is None:
        return ()
    lifecycle = record.get("lifecycle") or {}
    return sorted(record["versions"]), sorted(record["documents"]), lifecycle.get("versions")


@pytest.mark.parametrize("erp", list(ERPS))
@pytest.mark.parametrize(
    "defect",
    [
        *PROBES,
        *(pytest.param(d, marks=pytest.mark.xfail(strict=True, reason="known gap")) for d in KNOWN_GAPS),
    ],
    ids=lambda d: d.id,
)
async def test_probe_is_refused_at_submit(served: Served, defect: Defect, erp: str) -> None:
    life = new_life(erp, defect.name, exchange=defect.exchange)
    for version, step in enumerate(defect.prelude, start=1):
        valid = life.order(version, step) if isinstance(step, int) else step(life, version)
        accepted = await served.submit(valid)
        assert accepted.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
        served.accepted.add((erp, valid.return_id))
    version = defect.version or len(defect.prelude) + 1
    order = defect.build(life, version)
    before = (_stored(await served.record(life.return_id)), await served.idempotency_keys(life.return_id))
    counted = _rejected(defect.rule)

    try:
        response = await served.submit(order)
    except grpc.aio.AioRpcError as caught:
        error = caught
    else:
        served.accepted.add((erp, life.return_id))
        pytest.fail(f"{defect.id} on {erp}: accepted ({returns_pb2.SubmitOutcome.Name(response.outcome)})")

    assert error.code() == defect.code, error.details()
    status = _details(error)
    if defect.code == STATE:
        failure = error_details_pb2.PreconditionFailure()
        assert any(d.Unpack(failure) for d in status.details), status
        assert [v.type for v in failure.violations] == [defect.expect]
        assert failure.violations[0].subject == f"returns/{life.return_id}"
    else:
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in status.details), status
        fields = [v.field for v in bad.field_violations]
        assert any(f.endswith(defect.expect) for f in fields), (defect.expect, fields)
        assert "Error" not in error.details() and "Traceback" not in error.details()
    if defect.rule:  # "": not pinned (the routed ERP's own rules)
        assert _rejected(defect.rule) >= counted + 1, defect.rule
    after = (_stored(await served.record(life.return_id)), await served.idempotency_keys(life.return_id))
    assert after == before
    served.refused.append((erp, f"{order.rma_number}-{order.version}"))


async def test_no_probe_reached_any_simulator(served: Served) -> None:
    """Once the accepted versions are delivered, no simulator holds anything of a refused event."""
    assert served.refused

    async def idle() -> None:
        for _, return_id in served.accepted:
            record = await served.record(return_id)
            assert record is not None
            for doc in record["documents"].values():
                assert doc["state"] == "DELIVERED", (return_id, doc["step"], doc["state"], doc["last_error"])

    await assert_eventually(idle, timeout=60)
    for erp in ERPS:
        documents = await served.sim(erp, "documents")
        ledger = await served.sim(erp, "ledger")
        text = repr(documents) + repr(ledger)
        leaked = [ref for owner, ref in served.refused if owner == erp and f"'{ref}'" in text]
        assert not leaked, (erp, leaked)
        assert ledger["balanced"] is True
