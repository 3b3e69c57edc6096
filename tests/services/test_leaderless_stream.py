"""SubmitReturn while the delivery stream has no leader answers UNAVAILABLE (retryable), never INTERNAL (issue 13).

During a JetStream leader election nothing serves the stream's subjects, so the PubAck request gets "no
responders" and nats.py's ``js.publish`` raises ``NoStreamResponseError``; the leader-loss chaos run answered
such calls INTERNAL. A real server makes the same reply here when no stream serves ``rb.deliver.>`` (the stream
removed for the test, put back for the retry): the error is genuine, not mocked.
"""

from __future__ import annotations

import grpc
import nats.js.errors
import pytest

from delivery.pipeline_harness import Pipeline, make_order, md
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.bus import subjects
from returnbridge.bus.link import as_bus_unavailable


async def test_publish_without_a_stream_leader_is_bus_unavailable(pipeline: Pipeline) -> None:
    js = pipeline.nc.jetstream()
    with pytest.raises(nats.js.errors.NoStreamResponseError) as raised:
        await js.publish("rb.nobody.listens", b"x")
    assert as_bus_unavailable(raised.value) is not None


async def test_submit_during_an_election_is_unavailable_then_accepted_on_retry(pipeline: Pipeline) -> None:
    js = pipeline.nc.jetstream()
    config = (await js.stream_info(subjects.DELIVER_STREAM)).config
    stub = returns_pb2_grpc.ReturnsServiceStub(await pipeline.start_grpc(pipeline.returns_servicer()))
    request = returns_pb2.SubmitReturnRequest(return_order=make_order("R-ELECT", site="FRA2"))

    await js.delete_stream(subjects.DELIVER_STREAM)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitReturn(request, metadata=md("acme"))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value.details()
    assert "retry with the same idempotency key" in (info.value.details() or "")

    # The election is over: the same call (same idempotency key) completes the pending acceptance.
    await js.add_stream(config)
    response = await stub.SubmitReturn(request, metadata=md("acme"))
    assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
    assert (await js.stream_info(subjects.DELIVER_STREAM)).state.messages == 1


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (
            nats.js.errors.APIError(
                code=503, err_code=10008, description="JetStream system temporarily unavailable"
            ),
            True,
        ),
        (
            nats.js.errors.ServerError(
                code=500, err_code=10009, description="JetStream cluster can not handle request"
            ),
            True,
        ),
        (nats.js.errors.APIError(code=503, err_code=10077, description="insufficient resources"), True),
        (
            nats.js.errors.BadRequestError(code=400, err_code=10071, description="wrong last sequence: 7"),
            False,
        ),
        (nats.js.errors.NotFoundError(code=404, err_code=10059, description="stream not found"), False),
        (nats.js.errors.ServerError(code=500, err_code=10051, description="stream general error"), False),
    ],
)
def test_cluster_without_a_leader_answers_are_bus_unavailable(
    error: nats.js.errors.APIError, unavailable: bool
) -> None:
    # The API answers of a leaderless cluster by their code; the rest stays what it is (INTERNAL or the caller's).
    assert (as_bus_unavailable(error) is not None) is unavailable
