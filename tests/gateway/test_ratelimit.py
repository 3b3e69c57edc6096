"""Rate limits: token buckets per principal and tenant, the concurrency cap, and RESOURCE_EXHAUSTED details."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from google.rpc import error_details_pb2
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from gateway.support import KEYS, FakeClock, bearer, detail, rich_status, security_config, start, stop
from gateway.support import principal as _principal
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import RateLimitedError
from returnbridge.gateway.ratelimit import RateLimiter
from returnbridge.gateway.security_config import RateLimitConfig
from returnbridge.observability.alerts import AlertConfig, Alerter


def test_principal_bucket_burst_then_refill() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        RateLimitConfig(
            principal_rate_per_second=2, principal_burst=3, tenant_rate_per_second=100, tenant_burst=100
        ),
        clock=clock,
    )
    for _ in range(3):
        limiter.check_rate(_principal())
    with pytest.raises(RateLimitedError) as info:
        limiter.check_rate(_principal())
    assert info.value.retry_after == 0.5 and info.value.quota == "principal:acme/rms"
    # Another principal of the same tenant has its own bucket.
    limiter.check_rate(_principal("other"))
    clock.now += 0.5
    limiter.check_rate(_principal())
    with pytest.raises(RateLimitedError):
        limiter.check_rate(_principal())


def test_tenant_bucket_is_shared_and_refusal_charges_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        RateLimitConfig(
            principal_rate_per_second=1, principal_burst=5, tenant_rate_per_second=1, tenant_burst=4
        ),
        clock=clock,
    )
    for name in ("a", "b", "c", "d"):
        limiter.check_rate(_principal(name))
    with pytest.raises(RateLimitedError) as info:
        limiter.check_rate(_principal("e"))
    assert info.value.quota == "tenant:acme" and info.value.retry_after == 1.0
    limiter.check_rate(_principal("x", tenant="beta"))
    clock.now += 1.0
    limiter.check_rate(_principal("e"))


def test_disabled_limiter_admits_everything() -> None:
    limiter = RateLimiter(RateLimitConfig(enabled=False, principal_burst=1, max_concurrent_rpcs=1))
    for _ in range(10):
        limiter.check_rate(_principal())
    with limiter.concurrency_slot("/m"), limiter.concurrency_slot("/m"):
        pass


def test_bucket_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(
        RateLimitConfig(principal_burst=1, tenant_burst=10_000, max_tracked_keys=10), clock=clock
    )
    limiter.check_rate(_principal("first"))
    with pytest.raises(RateLimitedError):
        limiter.check_rate(_principal("first"))
    for index in range(20):
        limiter.check_rate(_principal(f"p{index}"))
    # "first" was evicted: it starts again with a full bucket.
    limiter.check_rate(_principal("first"))


async def test_rate_limit_returns_resource_exhausted_with_retry_info() -> None:
    config = security_config(
        rate_limits={"principal_rate_per_second": 0.5, "principal_burst": 2, "tenant_burst": 100}
    )
    running = await start(config)
    try:
        request = returns_pb2.SubmitReturnRequest()
        for _ in range(2):
            await running.returns.SubmitReturn(request, metadata=bearer(KEYS["submitter"]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await running.returns.SubmitReturn(request, metadata=bearer(KEYS["submitter"]))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rich_status(info.value)
        retry = detail(status, error_details_pb2.RetryInfo)
        assert 1.9 <= retry.retry_delay.ToTimedelta().total_seconds() <= 2.0
        quota = detail(status, error_details_pb2.QuotaFailure)
        assert [v.subject for v in quota.violations] == ["principal:acme/submitter-svc"]
        # Other principals are unaffected.
        await running.returns.SubmitReturn(request, metadata=bearer(KEYS["beta_submitter"]))
    finally:
        await stop(running)


async def test_concurrency_cap_refuses_while_slots_are_taken(nats_client: NatsClient) -> None:
    alerts: list[dict[str, object]] = []

    async def on_alert(msg: Msg) -> None:
        alerts.append(json.loads(msg.data))

    await nats_client.subscribe("rb.alerts.>", cb=on_alert)
    await nats_client.flush()
    config = security_config(rate_limits={"max_concurrent_rpcs": 2})
    running = await start(config, alerter=Alerter(AlertConfig(), nc=nats_client))
    try:
        held = [
            asyncio.ensure_future(
                running.returns.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(client_reference="hold"),
                    metadata=bearer(KEYS["submitter"]),
                )
            )
            for _ in range(2)
        ]

        async def both_inside() -> None:
            assert running.servicer.entered == 2

        await assert_eventually(both_inside)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await running.returns.SubmitReturn(
                returns_pb2.SubmitReturnRequest(), metadata=bearer(KEYS["submitter"])
            )
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        quota = detail(rich_status(info.value), error_details_pb2.QuotaFailure)
        assert quota.violations[0].subject == "server:concurrent_rpcs"
        # Watch streams are exempt by default, health is open: both still work at the cap.
        events = running.returns.WatchSyncEvents(
            returns_pb2.WatchSyncEventsRequest(), metadata=bearer(KEYS["reader"])
        )
        assert [e.sequence async for e in events] == [1, 2, 3]
        running.servicer.release.set()
        await asyncio.gather(*held)
        await running.returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(), metadata=bearer(KEYS["submitter"])
        )

        async def backlog_fired_and_resolved() -> None:
            assert [(a["kind"], a["key"], a["status"]) for a in alerts] == [
                ("backlog", "grpc:concurrent_rpcs", "firing"),
                ("backlog", "grpc:concurrent_rpcs", "resolved"),
            ]

        await assert_eventually(backlog_fired_and_resolved)
    finally:
        await stop(running)
