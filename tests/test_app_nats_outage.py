"""The served app while NATS is away: honest UNAVAILABLE at once, and back to OK when it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from helpers.app import running
from helpers.eventually import assert_eventually
from helpers.settings import served_settings
from mapping.samples import build_return
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.app import App
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.gateway.auth import hash_api_key

KEY = "rb-outage-test-key-0001"


@pytest.fixture
async def app(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[App]:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        simulators={"enabled": False},
        process={"workers": []},
        security={
            "api_keys": [
                {"name": "rms", "tenant_id": "acme", "roles": ["submitter"], "sha256": hash_api_key(KEY)}
            ]
        },
    )
    async with running(settings) as app:
        yield app


async def test_submit_is_unavailable_at_once_while_nats_is_down(
    app: App, nats_server: EmbeddedNatsServer
) -> None:
    md = (("authorization", f"Bearer {KEY}"),)
    async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        order = build_return(1, seed=1, serialized_every=0, version=1, erp="netsuite")
        nats_server.stop()
        assert app.nc is not None
        await assert_eventually(lambda: _assert_disconnected(app), timeout=15)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            # A deadline well under the PubAck timeout (5 s): the old answer, INTERNAL after 5 s, would be
            # DEADLINE_EXCEEDED here, so the code alone proves the answer came at once (no wall-clock assert).
            await stub.SubmitReturn(
                returns_pb2.SubmitReturnRequest(return_order=order), metadata=md, timeout=3
            )
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE, info.value
        status = rpc_status.from_call(info.value)
        assert status is not None
        assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in status.details)
        # Bad input is still called bad input, bus or no bus.
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.SubmitReturn(returns_pb2.SubmitReturnRequest(), metadata=md, timeout=3)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        nats_server.start()

        async def accepted() -> None:
            try:
                response = await stub.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=order), metadata=md, timeout=5
                )
            except grpc.aio.AioRpcError as exc:
                raise AssertionError(exc.code()) from exc
            assert response.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED

        await assert_eventually(accepted, timeout=30)


async def _assert_disconnected(app: App) -> None:
    assert app.nc is not None and not app.nc.is_connected
