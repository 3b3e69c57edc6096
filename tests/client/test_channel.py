"""The client channel against a real grpc.aio server on loopback: retries, auth metadata, deadlines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest

from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.client import (
    DEFAULT_TIMEOUT_SECONDS,
    RETRY_SERVICE_CONFIG,
    ReturnBridgeClient,
    channel_options,
    open_channel,
)


class FlakyReturns(returns_pb2_grpc.ReturnsServiceServicer):
    """Fails the first ``failures`` calls with ``code``; records what each call carried."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.failures = failures
        self.code = code
        self.calls = 0
        self.authorization: list[str] = []
        self.deadlines: list[float | None] = []

    async def GetReturnStatus(
        self, request: returns_pb2.GetReturnStatusRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.ReturnSyncStatus:
        self.calls += 1
        metadata = dict(context.invocation_metadata() or ())
        self.authorization.append(str(metadata.get("authorization", "")))
        self.deadlines.append(context.time_remaining())
        if self.calls <= self.failures:
            await context.abort(self.code, "try again")
        return sync_pb2.ReturnSyncStatus(return_id=request.return_id)

    async def WatchSyncEvents(
        self, request: returns_pb2.WatchSyncEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sync_pb2.SyncEvent]:
        metadata = dict(context.invocation_metadata() or ())
        self.authorization.append(str(metadata.get("authorization", "")))
        self.deadlines.append(context.time_remaining())
        for version in (1, 2):
            yield sync_pb2.SyncEvent(return_id="r1", version=version)


async def serve(servicer: FlakyReturns) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    returns_pb2_grpc.add_ReturnsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
async def test_retries_unavailable_and_resource_exhausted(code: grpc.StatusCode) -> None:
    servicer = FlakyReturns(failures=2, code=code)
    server, target = await serve(servicer)
    try:
        async with ReturnBridgeClient.connect(target, token="rbk_secret_0123456789abcdef") as client:
            status = await client.status("r1")
        assert status.return_id == "r1"
        assert servicer.calls == 3
        # Every attempt carried the credential and a deadline. grpc-timeout is sent rounded up to a
        # coarser unit, so the server may see a little more than the client's 30 s: allow one second.
        assert servicer.authorization == ["Bearer rbk_secret_0123456789abcdef"] * 3
        assert all(d is not None and 0 < d <= DEFAULT_TIMEOUT_SECONDS + 1 for d in servicer.deadlines)
    finally:
        await server.stop(None)


async def test_other_errors_are_not_retried() -> None:
    servicer = FlakyReturns(failures=1, code=grpc.StatusCode.INVALID_ARGUMENT)
    server, target = await serve(servicer)
    try:
        async with ReturnBridgeClient.connect(target, token="rbk_secret_0123456789abcdef") as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.status("r1")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert servicer.calls == 1
    finally:
        await server.stop(None)


async def test_retries_give_up_after_max_attempts() -> None:
    servicer = FlakyReturns(failures=100, code=grpc.StatusCode.UNAVAILABLE)
    server, target = await serve(servicer)
    try:
        async with ReturnBridgeClient.connect(target) as client:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.status("r1")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert servicer.calls == RETRY_SERVICE_CONFIG["methodConfig"][0]["retryPolicy"]["maxAttempts"]
        assert servicer.authorization == [""] * servicer.calls  # no token configured: none sent
    finally:
        await server.stop(None)


async def test_streams_carry_the_token_and_no_deadline_by_default() -> None:
    servicer = FlakyReturns(failures=0, code=grpc.StatusCode.OK)
    server, target = await serve(servicer)
    try:
        async with ReturnBridgeClient.connect(target, token="rbk_secret_0123456789abcdef") as client:
            events = [event async for event in client.watch(["r1"])]
        assert [e.version for e in events] == [1, 2]
        assert servicer.authorization == ["Bearer rbk_secret_0123456789abcdef"]
        assert servicer.deadlines == [None]
    finally:
        await server.stop(None)


def test_service_config_and_options() -> None:
    options = dict(channel_options(keepalive_seconds=12))
    assert options["grpc.keepalive_time_ms"] == 12_000
    assert options["grpc.enable_retries"] == 1
    config = json.loads(options["grpc.service_config"])
    policy = config["methodConfig"][0]["retryPolicy"]
    assert sorted(policy["retryableStatusCodes"]) == ["RESOURCE_EXHAUSTED", "UNAVAILABLE"]
    services = {n["service"] for n in config["methodConfig"][0]["name"]}
    assert "returnbridge.api.v1.ReturnsService" in services


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        open_channel("")
    with pytest.raises(ValueError, match="mutual TLS"):
        open_channel("127.0.0.1:1", client_certificate=(b"k", b"c"))
