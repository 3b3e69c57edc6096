"""``grpc.max_concurrent_streams``: a connection's excess calls wait in its own transport, other connections don't;
the shipped channel options give every channel its own connection (so N channels reach N gateway processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from helpers.eventually import assert_eventually
from returnbridge.client.channel import channel_options as client_channel_options
from returnbridge.gateway.server import GrpcServer, GrpcSettings
from returnbridge.retry_policy import channel_options

METHOD = "/test.Blocking/Call"


@dataclass
class Blocking:
    port: int
    entered: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def blocking() -> AsyncIterator[Blocking]:
    """A server whose one method blocks until released, at most 2 streams per connection."""
    state = Blocking(port=0)

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        state.entered.append(request)
        await state.release.wait()
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Blocking", {"Call": grpc.unary_unary_rpc_method_handler(call)}
    )
    server = GrpcServer(GrpcSettings(host="127.0.0.1", port=0, max_concurrent_streams=2, reflection=False))
    server.server.add_generic_rpc_handlers((handler,))
    state.port = await server.start()
    try:
        yield state
    finally:
        state.release.set()
        await server.stop(0)


async def test_excess_calls_of_one_connection_wait_while_another_connection_gets_in(
    blocking: Blocking,
) -> None:
    # Two connections: grpc shares one between channels of equal target and options unless told not to.
    own = [("grpc.use_local_subchannel_pool", 1)]
    target = f"127.0.0.1:{blocking.port}"
    async with (
        grpc.aio.insecure_channel(target, options=own) as bulk,
        grpc.aio.insecure_channel(target, options=own) as other,
    ):
        calls = [asyncio.ensure_future(bulk.unary_unary(METHOD)(b"bulk", timeout=60)) for _ in range(3)]

        async def two_in() -> None:
            assert blocking.entered.count(b"bulk") == 2

        await assert_eventually(two_in)
        probe = asyncio.ensure_future(other.unary_unary(METHOD)(b"probe", timeout=60))

        async def probe_in() -> None:
            assert b"probe" in blocking.entered

        await assert_eventually(probe_in)
        # The third bulk call, sent before the probe, is still held by the bulk connection's stream bound.
        assert blocking.entered.count(b"bulk") == 2
        blocking.release.set()
        assert await asyncio.gather(*calls, probe) == [b"bulk", b"bulk", b"bulk", b"probe"]


@pytest.mark.parametrize(
    "options", [channel_options(), client_channel_options()], ids=["retry_policy", "client"]
)
async def test_each_channel_with_the_shipped_options_is_its_own_connection(
    blocking: Blocking, options: list[tuple[str, Any]]
) -> None:
    target = f"127.0.0.1:{blocking.port}"
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(2)]
    try:
        # Two calls per channel fill each connection's 2 streams; shared, only 2 of the 4 would get in.
        calls = [
            asyncio.ensure_future(ch.unary_unary(METHOD)(b"x", timeout=60))
            for ch in channels
            for _ in range(2)
        ]

        async def all_in() -> None:
            assert len(blocking.entered) == 4

        await assert_eventually(all_in)
        blocking.release.set()
        await asyncio.gather(*calls)
    finally:
        for channel in channels:
            await channel.close()


async def test_a_burst_beyond_the_bound_queues_in_the_client_and_is_never_refused() -> None:
    """grpc's server "overload protection" counts a stream until it is freed, not until HTTP/2 closed it, so a
    client (which counts HTTP/2 streams) reused a slot early and the server refused the stream (RST_STREAM
    REFUSED_STREAM -> UNAVAILABLE; with retries, until the retry throttle ran out: 80 % of a spike). The bound is
    HTTP/2's alone now: every call of a burst completes, none is refused. Retries are off so no refusal is hidden."""

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(0)
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Blocking", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = GrpcServer(GrpcSettings(host="127.0.0.1", port=0, max_concurrent_streams=4, reflection=False))
    server.server.add_generic_rpc_handlers((handler,))
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.enable_retries", 0)]
        ) as channel:
            call = channel.unary_unary(METHOD)
            await call(b"settings", timeout=60)  # the client has seen the bound

            async def one() -> str:
                try:
                    await call(b"x", timeout=60)
                    return "OK"
                except grpc.aio.AioRpcError as exc:
                    return exc.code().name

            codes = await asyncio.gather(*(one() for _ in range(300)))
        assert set(codes) == {"OK"}, {c: codes.count(c) for c in set(codes)}
    finally:
        await server.stop(0)
