"""One served app per test module: embedded defaults (the demo configuration: simulators, demo reference data)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.app import DEMO_TENANT, App
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.kv import get_json, keys_matching
from returnbridge.config import load_settings


class Served:
    """The app, an authenticated ReturnsService stub, and the simulators' inspection routes."""

    def __init__(self, app: App, channel: grpc.aio.Channel, token: str) -> None:
        self.app = app
        self.returns = returns_pb2_grpc.ReturnsServiceStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.http = httpx.AsyncClient(timeout=10)
        # (erp, external references of refused versions); checked against the simulators at the end.
        self.refused: list[tuple[str, str]] = []
        # (erp, return id) of every return with accepted versions.
        self.accepted: set[tuple[str, str]] = set()

    async def submit(self, order: returns_pb2.ReturnOrder) -> returns_pb2.SubmitReturnResponse:
        return await self.returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=order), metadata=self.metadata
        )

    async def sim(self, erp: str, route: str) -> Any:
        response = await self.http.get(f"{self.app.endpoints.simulators[erp]}/_sim/{route}")
        response.raise_for_status()
        return response.json()

    async def record(self, return_id: str) -> dict[str, Any] | None:
        """The return's sync state record (versions, documents, lifecycle history)."""
        assert self.app.js is not None
        kv = await self.app.js.key_value(subjects.SYNC_STATE_BUCKET)
        record, _ = await get_json(kv, subjects.sync_state_key(DEMO_TENANT, return_id))
        return record

    async def idempotency_keys(self, return_id: str) -> list[str]:
        """The idempotency keys the return holds: versions the admission reserved in its sync record (the
        ``rb_idempotency`` bucket is no longer written), and any record an earlier release left there."""
        assert self.app.js is not None
        record = await self.record(return_id)
        reserved = [
            f"{DEMO_TENANT}:{return_id}:{version}:{entry['event']}"
            for version, entry in (record or {}).get("versions", {}).items()
        ]
        kv = await self.app.js.key_value(subjects.IDEMPOTENCY_BUCKET)
        pattern = f"{subjects.kv_token(DEMO_TENANT)}.{subjects.kv_token(return_id)}.>"
        return sorted(reserved + await keys_matching(kv, pattern))


@pytest.fixture(scope="module")
def dq_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("dq-nats"), sync_always=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    tmp_path_factory: pytest.TempPathFactory, dq_nats: EmbeddedNatsServer
) -> AsyncIterator[Served]:
    data: Path = tmp_path_factory.mktemp("dq-data")
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data),
            "nats": {"url": dq_nats.url},
            "grpc": {"port": 0},
            "metrics": {"enabled": False},
            # Port 0: the console's fixed default (9470) is shared by every test run on the machine.
            "console": {"port": 0},
            "sync": {"interval_seconds": 0.5},
            # The documented exception: gold customers get their refund on authorization.
            "returns": {"tenants": {DEMO_TENANT: {"lifecycle": {"refund_before_receipt_tiers": ["gold"]}}}},
        },
    )
    app = App(settings)
    await app.start()
    try:
        token = await asyncio.to_thread(Path(app.endpoints.dev_token_file).read_text)
        token = token.strip()
        async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
            served = Served(app, channel, token)
            try:
                yield served
            finally:
                await served.http.aclose()
    finally:
        await app.stop()
