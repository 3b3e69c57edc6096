"""Admission control: tenant-fair slots for submissions, reads never queued, shedding with a retry hint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from prometheus_client import REGISTRY

from gateway.support import KEYS, Running, bearer, detail, rich_status, security_config, start, stop
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.errors import RateLimitedError
from returnbridge.gateway.admission import Admission, AdmissionSettings
from returnbridge.retry_policy import channel_options


def _shed_count() -> float:
    return (
        REGISTRY.get_sample_value("rb_api_calls_total", {"method": SUBMIT, "code": "RESOURCE_EXHAUSTED"})
        or 0.0
    )


SUBMIT = "/returnbridge.api.v1.ReturnsService/SubmitReturn"
STATUS = "/returnbridge.api.v1.ReturnsService/GetReturnStatus"


async def _hold(
    admission: Admission, method: str, tenant: str, order: list[str], release: asyncio.Event
) -> None:
    async with admission.slot(method, tenant):
        order.append(tenant)
        await release.wait()


async def _submitting(
    admission: Admission, tenant: str, count: int, order: list[str], release: asyncio.Event
) -> list[asyncio.Task[None]]:
    """``count`` submissions of ``tenant`` holding their slot until ``release``, each one as far as it gets."""
    tasks = [asyncio.create_task(_hold(admission, SUBMIT, tenant, order, release)) for _ in range(count)]
    await asyncio.sleep(0)
    return tasks


async def test_a_small_tenant_is_served_before_a_bulk_tenants_queue() -> None:
    admission = Admission(AdmissionSettings(max_in_flight=2, max_queued=100))
    order: list[str] = []
    gates = [asyncio.Event() for _ in range(8)]
    bulk = [asyncio.create_task(_hold(admission, SUBMIT, "bulk", order, gates[i])) for i in range(6)]
    await asyncio.sleep(0)
    small = asyncio.create_task(_hold(admission, SUBMIT, "small", order, gates[6]))
    await asyncio.sleep(0)
    assert (admission.in_flight, admission.queued) == (2, 5)
    gates[0].set()  # one bulk call finishes: the slot goes to the small tenant, not the next bulk call

    async def third_started() -> None:  # a condition, not a 10 ms sleep: a loaded machine may take longer
        assert len(order) == 3

    await assert_eventually(third_started, timeout=30)
    assert order == ["bulk", "bulk", "small"]
    # Reads are their own lane: never queued behind the submissions.
    read_order: list[str] = []
    read_gate = asyncio.Event()
    read_gate.set()
    await asyncio.wait_for(_hold(admission, STATUS, "bulk", read_order, read_gate), timeout=1)
    assert read_order == ["bulk"]
    for gate in gates:
        gate.set()
    await asyncio.gather(*bulk, small)
    assert (admission.in_flight, admission.queued) == (0, 0)


async def test_sheds_past_the_queue_bound_but_not_a_tenant_below_its_share() -> None:
    admission = Admission(AdmissionSettings(max_in_flight=1, max_queued=4, min_retry_after_seconds=0.5))
    release = asyncio.Event()
    order: list[str] = []
    held = await _submitting(admission, "bulk", 5, order, release)
    assert admission.queued == 4
    with pytest.raises(RateLimitedError) as info:
        await _hold(admission, SUBMIT, "bulk", order, release)
    assert info.value.retry_after >= 0.5 and info.value.quota == "server:queue"
    # Another tenant still gets a place: its share of the queue is untouched.
    (other,) = await _submitting(admission, "small", 1, order, release)
    assert admission.queued == 5
    release.set()
    await asyncio.gather(*held, other)
    assert order.index("small") == 1  # served right after the call that held the slot


async def test_a_call_waiting_too_long_is_shed() -> None:
    admission = Admission(AdmissionSettings(max_in_flight=1, max_queue_seconds=0.05))
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(admission, SUBMIT, "a", [], release))
    await asyncio.sleep(0)
    with pytest.raises(RateLimitedError, match="no slot within"):
        await _hold(admission, SUBMIT, "b", [], release)
    assert admission.queued == 0
    release.set()
    await holder


async def test_the_bound_drops_while_a_reader_is_served_and_comes_back_when_the_bulk_caller_is_alone() -> (
    None
):
    admission = Admission(
        AdmissionSettings(max_in_flight=4, contended_in_flight=1, contended_seconds=0.3, max_queued=100)
    )
    release = asyncio.Event()
    order: list[str] = []
    first = await _submitting(admission, "bulk", 2, order, release)
    assert (admission.capacity(), admission.in_flight) == (4, 2)  # alone: the whole bound
    # A health check or reflection call is not a reader waiting on us.
    async with admission.slot("/grpc.health.v1.Health/Check", "-"):
        pass
    assert admission.capacity() == 4
    async with admission.slot(STATUS, "other"):
        pass
    assert admission.capacity() == 1
    # Two slots are taken, one is allowed: the next submission waits although 4 would have been free.
    (third,) = await _submitting(admission, "bulk", 1, order, release)
    assert (admission.in_flight, admission.queued) == (2, 1)

    async def alone_again() -> None:
        assert admission.capacity() == 4

    await assert_eventually(alone_again, timeout=30)
    release.set()
    await asyncio.gather(*first, third)
    assert order == ["bulk"] * 3 and (admission.in_flight, admission.queued) == (0, 0)


async def test_a_second_tenants_submissions_make_the_bound_the_contended_one() -> None:
    admission = Admission(AdmissionSettings(max_in_flight=4, contended_in_flight=2, max_queued=100))
    release = asyncio.Event()
    order: list[str] = []
    bulk = await _submitting(admission, "bulk", 3, order, release)
    assert (admission.capacity(), admission.in_flight) == (4, 3)
    (small,) = await _submitting(admission, "small", 1, order, release)
    # The small tenant found a free slot; from now on two tenants share the loop, so the bound is 2 and the bulk
    # tenant's next call waits until its four have drained below it, although the bound alone was 4.
    assert (admission.capacity(), admission.in_flight, admission.queued) == (2, 4, 0)
    (more,) = await _submitting(admission, "bulk", 1, order, release)
    assert (admission.in_flight, admission.queued) == (4, 1)
    release.set()
    await asyncio.gather(*bulk, small, more)
    assert order == ["bulk", "bulk", "bulk", "small", "bulk"]
    assert admission.capacity() == 4  # alone again


def test_the_contended_bound_never_exceeds_the_bound() -> None:
    admission = Admission(AdmissionSettings(max_in_flight=2, contended_in_flight=8))
    admission._last_read = float("inf")  # a reader now and forever
    assert admission.capacity() == 2


@pytest.fixture
async def gw() -> AsyncIterator[Running]:
    running = await start(
        security_config(),
        admission=Admission(AdmissionSettings(max_in_flight=1, max_queued=0, min_retry_after_seconds=0.3)),
    )
    try:
        yield running
    finally:
        running.servicer.release.set()
        await stop(running)


async def test_shed_call_carries_retry_info_and_pushback_and_the_shipped_policy_retries(gw: Running) -> None:
    md = bearer(KEYS["submitter"])
    holder = gw.returns.SubmitReturn(returns_pb2.SubmitReturnRequest(client_reference="hold"), metadata=md)

    async def holding() -> None:
        assert gw.servicer.entered == 1

    await assert_eventually(holding)
    # A plain channel sees the shed answer itself.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(returns_pb2.SubmitReturnRequest(), metadata=md, timeout=5)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = detail(rich_status(info.value), error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() >= 300
    assert dict(info.value.trailing_metadata() or ())["grpc-retry-pushback-ms"] == "300"
    # Reads pass while the only submission slot is taken.
    status = await gw.returns.GetReturnStatus(
        returns_pb2.GetReturnStatusRequest(return_id="r"), metadata=md, timeout=5
    )
    assert isinstance(status, sync_pb2.ReturnSyncStatus)
    # A client on the shipped retry policy waits the pushback and gets through once the slot is free.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gw.port}", options=channel_options()) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        shed_before = _shed_count()
        call = stub.SubmitReturn(returns_pb2.SubmitReturnRequest(), metadata=md, timeout=10)

        async def first_attempt_shed() -> None:
            assert _shed_count() > shed_before

        await assert_eventually(first_attempt_shed)  # the first attempt is shed ...
        gw.servicer.release.set()  # ... the slot frees, and the retry after the pushback gets through
        response = await call
        assert response.tenant_id == "acme"
    await holder
