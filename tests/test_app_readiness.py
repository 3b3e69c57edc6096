"""A gateway that waits for a delivery worker (``process.await_workers``, set by ``serve``) says NOT_SERVING until
it is told one is up, and then follows its NATS link as before."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpers.app import running
from helpers.eventually import assert_eventually
from helpers.settings import served_settings
from returnbridge.bus.embedded import EmbeddedNatsServer


async def _health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return int(reply.status)


async def test_health_waits_for_the_worker_then_follows_nats(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        simulators={"enabled": False},
        process={"workers": [], "sync": False, "await_workers": True},
    )
    async with running(settings) as app:
        target = app.endpoints.grpc
        # Started, NATS connected, streams there: still no worker, so not SERVING.
        assert await _health(target) == health_pb2.HealthCheckResponse.NOT_SERVING
        await app.open_for_calls()
        assert await _health(target) == health_pb2.HealthCheckResponse.SERVING

        # From here on health follows the NATS link as for any gateway.
        nats_server.stop()

        async def not_serving() -> None:
            assert await _health(target) == health_pb2.HealthCheckResponse.NOT_SERVING

        await assert_eventually(not_serving, timeout=30)
        nats_server.start()

        async def serving() -> None:
            assert await _health(target) == health_pb2.HealthCheckResponse.SERVING

        await assert_eventually(serving, timeout=60)


async def test_a_gateway_that_does_not_wait_is_serving_once_started(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    settings = served_settings(
        tmp_path, nats_server.url, simulators={"enabled": False}, process={"workers": [], "sync": False}
    )
    async with running(settings) as app:
        assert await _health(app.endpoints.grpc) == health_pb2.HealthCheckResponse.SERVING
