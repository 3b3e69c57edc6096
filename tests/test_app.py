"""The service on a real nats-server and a real gRPC channel: health, reflection, orderly stop."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from nats.aio.client import Client as NatsClient

from delivery.pipeline_harness import Pipeline, make_order, stopped_submission
from helpers.app import local_settings, running
from helpers.eventually import assert_eventually
from returnbridge.app import App
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.config import load_settings
from returnbridge.domain.context import Principal, set_principal
from returnbridge.gateway.server import API_SERVICES


@pytest.fixture
async def app(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[App]:
    settings = local_settings(tmp_path / "data", nats_server.url, simulators={"enabled": False})
    async with running(settings) as app:
        yield app


async def test_health_is_serving_once_started(app: App) -> None:
    async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        overall = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
        per_service = await stub.Check(health_pb2.HealthCheckRequest(service=API_SERVICES[0]), timeout=5)
        assert per_service.status == health_pb2.HealthCheckResponse.SERVING


def _dev_token(app: App) -> tuple[tuple[str, str]]:
    token = Path(app.endpoints.dev_token_file).read_text().strip()
    return (("authorization", f"Bearer {token}"),)


async def test_reflection_lists_all_four_services(app: App) -> None:
    async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        calls = stub.ServerReflectionInfo(iter([request]), timeout=5, metadata=_dev_token(app))
        async for response in calls:
            names.update(s.name for s in response.list_services_response.service)
    for service in API_SERVICES:
        assert service in names
    assert "grpc.health.v1.Health" in names


async def test_reflection_serves_the_contract_descriptors(app: App) -> None:
    async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="returnbridge.api.v1.ReturnOrder"
        )
        calls = stub.ServerReflectionInfo(iter([request]), timeout=5, metadata=_dev_token(app))
        responses = [r async for r in calls]
    protos = responses[0].file_descriptor_response.file_descriptor_proto
    assert protos, responses[0]


async def test_stop_turns_health_not_serving_and_closes(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(tmp_path),
            "nats": {"url": nats_server.url},
            "grpc": {"port": 0},
            "simulators": {"enabled": False},
            "metrics": {"enabled": False},
        },
    )
    app = App(settings)
    await app.start()
    target = app.endpoints.grpc
    await app.stop()
    assert app.nc is not None and app.nc.is_closed
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_health_follows_the_nats_connection(app: App, nats_server: EmbeddedNatsServer) -> None:
    from helpers.eventually import assert_eventually

    async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)

        async def status_is(expected: int) -> None:
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:  # a slow answer on a loaded machine: poll again, not fail
                raise AssertionError(f"health check failed: {exc.code()}") from exc
            assert response.status == expected

        nats_server.stop()
        await assert_eventually(lambda: status_is(health_pb2.HealthCheckResponse.NOT_SERVING), timeout=15)
        nats_server.start()
        await assert_eventually(lambda: status_is(health_pb2.HealthCheckResponse.SERVING), timeout=30)


async def test_console_is_served_on_loopback_and_in_the_endpoints(app: App) -> None:
    import httpx

    assert app.endpoints.console.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient() as http:
        response = await http.get(app.endpoints.console + "healthz")
        assert response.text == "ok"
        login = await http.get(app.endpoints.console)
        assert login.status_code == 303 and login.headers["location"].startswith("/login")


async def test_a_process_serving_until_a_signal_freezes_its_start_up_heap(tmp_path: Path) -> None:
    """run_until_signal is what a served process runs last: from then on a full collection skips the start-up heap."""
    app = App(load_settings(None, env={}, overrides={"data_dir": str(tmp_path)}))
    seen: list[int] = []

    def ready() -> None:
        seen.append(gc.get_freeze_count())
        os.kill(os.getpid(), signal.SIGINT)  # stops the app as an operator's Ctrl-C would

    gc.unfreeze()
    try:
        await asyncio.wait_for(app.run_until_signal(on_ready=ready), timeout=60)
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
    assert seen and seen[0] > 1000


async def test_the_served_app_publishes_a_reservation_whose_gateway_stopped(
    tmp_path: Path, nats_server: EmbeddedNatsServer, nats_client: NatsClient
) -> None:
    """The reservation sweeper runs in the monitoring process: a version another gateway reserved and never
    published is published and named by the served app, nobody retrying."""
    settings = local_settings(
        tmp_path / "data",
        nats_server.url,
        simulators={"enabled": False},
        delivery={"orphans": {"after_seconds": 0.5}},
    )
    async with running(settings):
        set_principal(Principal(name="rms", tenant_id="acme"))
        gateway = await Pipeline.create(nats_client)  # another gateway process, on its own connection
        await stopped_submission(gateway, make_order("S1"), after_publish=False)

        async def published() -> None:
            record = await gateway.status.get("acme", "S1")
            assert record is not None and record["versions"]["1"]["stream_sequence"]

        await assert_eventually(published, timeout=30)
        info = await nats_client.jetstream().stream_info(subjects.DELIVER_STREAM)
        assert info.state.messages == 1
