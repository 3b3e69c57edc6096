"""Submissions refused at the edge (request limits, undecodable bytes) are counted like every other refusal:
``rb_rejected_total{rule}`` and ``rb_processing_total{outcome="rejected"}``; refused reads are not submissions."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from returnbridge.api.v1 import returns_pb2
from returnbridge.gateway.malformed import RULE_MALFORMED
from returnbridge.gateway.request_limits import RULE_REQUEST_LIMITS
from security.conftest import Served, key_md
from security.rpcs import Rpc, api_rpcs


def _rpc(short: str) -> Rpc:
    return next(r for r in api_rpcs() if r.short == short)


def _counts(rule: str) -> tuple[float, float]:
    rejected = REGISTRY.get_sample_value("rb_rejected_total", {"rule": rule}) or 0.0
    processed = REGISTRY.get_sample_value("rb_processing_total", {"outcome": "rejected"}) or 0.0
    return rejected, processed


async def _refusal_code(served: Served, short: str, request: object) -> grpc.StatusCode:
    """The code a refused submission is answered with: the call's status, or the item's error in a bulk stream."""
    try:
        reply = await _rpc(short).call(
            served.channel, request, metadata=key_md("acme", "submitter"), timeout=30
        )
    except grpc.aio.AioRpcError as error:
        return error.code()
    assert isinstance(reply, returns_pb2.SubmitReturnResult) and reply.WhichOneof("result") == "error", reply
    return next(c for c in grpc.StatusCode if c.value[0] == reply.error.code)


def _oversized() -> returns_pb2.SubmitReturnRequest:
    order = returns_pb2.ReturnOrder(return_id="R-LIMITS", rma_number="RMA-LIMITS", version=1, currency="USD")
    for i in range(2001):  # past the 2,000-line cap of the request limits
        order.lines.add(line_id=str(i), sku="SKU-1", quantity="1", unit_of_measure="EA")
    return returns_pb2.SubmitReturnRequest(return_order=order)


@pytest.mark.parametrize("short", ["ReturnsService.SubmitReturn", "ReturnsService.SubmitReturns"])
async def test_a_submission_refused_by_the_request_limits_is_counted(served: Served, short: str) -> None:
    before = _counts(RULE_REQUEST_LIMITS)
    assert await _refusal_code(served, short, _oversized()) == grpc.StatusCode.INVALID_ARGUMENT
    after = _counts(RULE_REQUEST_LIMITS)
    assert after == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize("short", ["ReturnsService.SubmitReturn", "ReturnsService.SubmitReturns"])
async def test_an_undecodable_submission_is_counted(served: Served, short: str) -> None:
    before = _counts(RULE_MALFORMED)
    assert await _refusal_code(served, short, b"\xff\xff\xff") == grpc.StatusCode.INVALID_ARGUMENT
    assert _counts(RULE_MALFORMED) == (before[0] + 1, before[1] + 1)


async def test_refused_reads_are_not_counted_as_submissions(served: Served) -> None:
    before = _counts(RULE_REQUEST_LIMITS), _counts(RULE_MALFORMED)
    status = _rpc("ReturnsService.GetReturnStatus")
    for payload in (returns_pb2.GetReturnStatusRequest(return_id="x" * 100_000), b"\xff\xff\xff"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await status.call(served.channel, payload, metadata=key_md("acme", "reader"), timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (_counts(RULE_REQUEST_LIMITS), _counts(RULE_MALFORMED)) == before
