"""The service against simulators that outlive it: push or poll, watched through the real gRPC API."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from prometheus_client import REGISTRY

from returnbridge.api.v1 import inventory_pb2, inventory_pb2_grpc
from returnbridge.app import App
from returnbridge.config import load_settings
from returnbridge.simulators.runner import SimulatorSet, start_simulators
from returnbridge.simulators.settings import SimulatorSettings

TENANT = "demo"
#: Simulator name -> routing target it serves.
TARGETS = {"netsuite": "netsuite", "sap": "sap", "oracle": "oracle_fusion"}
ERP_OF = {"netsuite": "netsuite", "sap": "sap_s4hana", "oracle": "oracle_fusion"}
#: The stock each ERP test moves: a SKU at a location the simulator seeds.
STOCK = {
    "sap": ("SKU-1001", "DAL1", "0001"),
    "netsuite": None,  # the first seeded item/location, read from the simulator
    "oracle": ("SKU-1001", "DAL1", "Stores"),
}


def push_count(erp: str, kind: str = "inventory") -> float:
    value = REGISTRY.get_sample_value(
        "rb_inbound_latency_seconds_count", {"erp": erp, "kind": kind, "path": "push"}
    )
    return value or 0.0


@dataclass
class Stack:
    tmp_path: Path
    nats_url: str
    interval: float
    push: bool
    sims: SimulatorSet = field(default_factory=SimulatorSet)
    app: App | None = None
    secrets_by_sim: dict[str, str] = field(default_factory=dict)

    async def start(self) -> None:
        self.sims = await start_simulators(SimulatorSettings())
        self.secrets_by_sim = {sim: secrets.token_urlsafe(32) for sim in TARGETS}
        await self.start_app()

    def settings(self) -> Any:
        return load_settings(
            None,
            env={},
            overrides={
                "data_dir": str(self.tmp_path / "data"),
                "nats": {"url": self.nats_url},
                "grpc": {"port": 0},
                "metrics": {"enabled": False},
                "console": {"enabled": False},
                "simulators": {"enabled": False},
                "connectors": self.sims.connector_configs(),
                "sync": {
                    "interval_seconds": self.interval,
                    "targets": [{"target": t, "tenant": TENANT} for t in TARGETS.values()],
                },
                "inbound": {
                    "enabled": self.push,
                    "keys": [
                        {
                            "key_id": f"k-{sim}",
                            "tenant": TENANT,
                            "target": target,
                            "secret": self.secrets_by_sim[sim],
                        }
                        for sim, target in TARGETS.items()
                    ],
                },
            },
        )

    async def start_app(self) -> None:
        self.app = App(self.settings())
        await self.app.start()
        if self.push:
            for sim in TARGETS:
                await self.configure_notifier(sim, enabled=True)

    async def stop_app(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None

    async def configure_notifier(self, sim: str, **settings: Any) -> dict[str, Any]:
        """Through the simulator's own control route, as an operator would."""
        assert self.app is not None
        body = {
            "url": self.app.endpoints.inbound,
            "key_id": f"k-{sim}",
            "secret": self.secrets_by_sim[sim],
        } | settings
        async with aiohttp.ClientSession() as session:
            url = self.sims.urls[sim] + "/_sim/notifications"
            async with session.put(url, json=body) as response:
                assert response.status == 200, await response.text()
                result: dict[str, Any] = await response.json()
                return result

    async def stop(self) -> None:
        await self.stop_app()
        await self.sims.stop()

    def metadata(self) -> tuple[tuple[str, str]]:
        assert self.app is not None
        token = Path(self.app.endpoints.dev_token_file).read_text().strip()
        return (("authorization", f"Bearer {token}"),)

    def stock_key(self, sim: str) -> tuple[str, str, str]:
        key = STOCK[sim]
        if key is None:
            key = sorted(self.sims.kits[sim].state.stock)[0]
        return key

    def on_hand(self, sim: str, key: tuple[str, str, str]) -> Decimal:
        return self.sims.kits[sim].state.stock[key]

    async def adjust(self, sim: str, key: tuple[str, str, str], delta: Decimal) -> Decimal:
        """A stock adjustment made inside the ERP, as a clerk does it (``/_sim/actions/``), not by returnbridge."""
        sku, site, sub = key
        body = {"sku": sku, "site": site, "delta": str(delta)} | ({"sub_location": sub} if sub else {})
        async with aiohttp.ClientSession() as session:
            url = self.sims.urls[sim] + "/_sim/actions/stock/adjust"
            async with session.post(url, json=body) as response:
                assert response.status == 200, await response.text()
        return self.on_hand(sim, key)


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, nats_url: str, *, interval: float, push: bool) -> AsyncIterator[Stack]:
    running = Stack(tmp_path, nats_url, interval, push)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


class InventoryWatch:
    """A WatchInventory stream read in the background; ``wait_for`` returns the first level matching."""

    def __init__(self, stack: Stack, sku: str) -> None:
        assert stack.app is not None
        self._channel = grpc.aio.insecure_channel(stack.app.endpoints.grpc)
        stub = inventory_pb2_grpc.InventoryServiceStub(self._channel)
        self._call = stub.WatchInventory(
            inventory_pb2.WatchInventoryRequest(include_snapshot=True, skus=[sku]), metadata=stack.metadata()
        )
        self.levels: list[inventory_pb2.InventoryLevel] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for update in self._call:
            async with self._changed:
                self.levels.append(update.level)
                self._changed.notify_all()

    async def wait_for(
        self, match: Callable[[inventory_pb2.InventoryLevel], bool], timeout: float = 30.0
    ) -> inventory_pb2.InventoryLevel:
        async def seen() -> inventory_pb2.InventoryLevel:
            async with self._changed:
                while True:
                    found = next((level for level in self.levels if match(level)), None)
                    if found is not None:
                        return found
                    await self._changed.wait()

        return await asyncio.wait_for(seen(), timeout)

    async def close(self) -> None:
        self._call.cancel()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await self._task
        await self._channel.close()
