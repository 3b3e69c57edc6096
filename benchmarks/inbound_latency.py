"""ERP-side change -> visible in WatchInventory, by push and by poll alone, idle and under submit load.

The three simulators run in this process; the service (`serve`'s App: embedded nats-server, gateway, workers,
poller, webhook receiver) runs in a child process pointed at them, as it would at real ERPs. Each sample
moves one SKU's stock inside a simulator (as a clerk's adjustment would) and times until a WatchInventory
stream opened by this process shows the new level; both clocks are this process's ``perf_counter``. Samples
rotate over SAP, NetSuite and Oracle and are spaced by a random gap as long as the poll interval, so
poll-only samples land at random points of the poll cycle. ``--load`` keeps SubmitReturn calls in flight
against the same service meanwhile.

    .venv/bin/python benchmarks/inbound_latency.py --samples 30 --interval 2 [--modes push,poll] [--loads idle,load]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import random
import secrets
import sys
import tempfile
import time
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import grpc

from returnbridge.api.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.simulators.runner import SimulatorSet, start_simulators
from returnbridge.simulators.settings import SimulatorSettings

TENANT = "demo"
TARGETS = {"sap": "sap", "netsuite": "netsuite", "oracle": "oracle_fusion"}
STOCK = {"sap": ("SKU-1001", "DAL1", "0001"), "oracle": ("SKU-1001", "DAL1", "Stores")}


def _serve(conn: Connection, data_dir: str, overrides: dict[str, Any]) -> None:
    from pathlib import Path

    from returnbridge.app import App
    from returnbridge.config import load_settings

    async def main() -> None:
        settings = load_settings(None, env={}, overrides={"data_dir": data_dir, **overrides})
        app = App(settings)
        await app.start()
        token = await asyncio.to_thread(Path(app.endpoints.dev_token_file).read_text)
        conn.send((app.endpoints.grpc, app.endpoints.inbound, token.strip()))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        await app.stop()

    asyncio.run(main())


def _order(run: str, index: int) -> returns_pb2.ReturnOrder:
    price = common_pb2.Money(amount="49.95", currency="USD")
    order = returns_pb2.ReturnOrder(
        return_id=f"inb-{run}-{index}", rma_number=f"I{run}{index:06d}", version=1,
        return_type=returns_pb2.RETURN_TYPE_REFUND, event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        reason_code="DEFECTIVE", currency="USD",
        customer=returns_pb2.Customer(customer_id="C-1", erp_customer_ref="101", tier="gold"),
        lines=[
            returns_pb2.ReturnLine(
                line_id="L1", sku="SKU-1002", product_type="apparel", quantity="1", unit_of_measure="EA",
                unit_price=price, cost_center="CC-100", vendor_code="V-200", reason_code="DEFECTIVE",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            )
        ],
    )  # fmt: skip
    order.event_time.GetCurrentTime()
    return order


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 1) if ordered else 0.0


class _Clerk:
    """Makes stock adjustments inside the simulators, as a clerk does (``/_sim/actions/stock/adjust``)."""

    def __init__(self, sims: SimulatorSet) -> None:
        self.sims = sims
        self.keys = dict(STOCK)
        self.keys["netsuite"] = sorted(sims.kits["netsuite"].state.stock)[0]
        self.session: aiohttp.ClientSession | None = None

    def expect(self, sim: str, delta: Decimal) -> Decimal:
        """The level ``delta`` will give; awaited before the change, so a fast push cannot be missed."""
        return self.sims.kits[sim].state.stock[self.keys[sim]] + delta

    async def adjust(self, sim: str, delta: Decimal) -> None:
        sku, site, sub = self.keys[sim]
        body = {"sku": sku, "site": site, "delta": str(delta)} | ({"sub_location": sub} if sub else {})
        if self.session is None:
            self.session = aiohttp.ClientSession()
        async with self.session.post(
            self.sims.urls[sim] + "/_sim/actions/stock/adjust", json=body
        ) as response:
            response.raise_for_status()


async def _measure(
    grpc_target: str, token: str, clerk: _Clerk, samples: int, load_in_flight: int, interval: float
) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {token}"),)
    channel = grpc.aio.insecure_channel(grpc_target)
    stub = inventory_pb2_grpc.InventoryServiceStub(channel)
    call = stub.WatchInventory(inventory_pb2.WatchInventoryRequest(include_snapshot=False), metadata=metadata)
    waiting: dict[tuple[str, Decimal], asyncio.Future[float]] = {}

    async def read() -> None:
        async for update in call:
            level = update.level
            future = waiting.pop((level.target, Decimal(level.on_hand)), None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    reader = asyncio.create_task(read())
    stop_load = asyncio.Event()
    submitted = 0

    async def load() -> None:
        nonlocal submitted
        run = secrets.token_hex(3)
        returns = returns_pb2_grpc.ReturnsServiceStub(channel)
        slots = asyncio.Semaphore(load_in_flight)

        async def one(index: int) -> None:
            nonlocal submitted
            try:
                await returns.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=_order(run, index)),
                    metadata=metadata,
                    timeout=120,
                )
                submitted += 1
            except grpc.aio.AioRpcError:
                pass
            finally:
                slots.release()

        index, tasks = 0, set()
        while not stop_load.is_set():
            await slots.acquire()
            task = asyncio.create_task(one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        await asyncio.gather(*tasks)

    loader = asyncio.create_task(load()) if load_in_flight else None
    latencies: dict[str, list[float]] = {sim: [] for sim in TARGETS}
    lost = 0
    try:
        await asyncio.sleep(1.0)  # the watch is open and the first poll is in
        for sim in TARGETS:  # lift the key far above every other location's level, so values never collide
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[(TARGETS[sim], clerk.expect(sim, Decimal(10000)))] = future
            await clerk.adjust(sim, Decimal(10000))
            await asyncio.wait_for(future, 30)
        started = time.perf_counter()
        for n in range(samples * len(TARGETS)):
            sim = list(TARGETS)[n % len(TARGETS)]
            # Uniform over a whole poll interval: a sample may land anywhere in the poll cycle.
            await asyncio.sleep(random.uniform(0.1, interval + 0.1))
            future = asyncio.get_running_loop().create_future()
            waiting[(TARGETS[sim], clerk.expect(sim, Decimal(1)))] = future
            t0 = time.perf_counter()
            await clerk.adjust(sim, Decimal(1))
            try:
                latencies[sim].append(await asyncio.wait_for(future, 30) - t0)
            except TimeoutError:
                lost += 1
        elapsed = time.perf_counter() - started
    finally:
        stop_load.set()
        if loader is not None:
            await loader
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await reader
        await channel.close()
        if clerk.session is not None:
            await clerk.session.close()
    every = [v for values in latencies.values() for v in values]
    return {
        "samples": len(every),
        "lost": lost,
        "p50_ms": _pct(every, 0.5),
        "p90_ms": _pct(every, 0.9),
        "p99_ms": _pct(every, 0.99),
        "max_ms": _pct(every, 1.0),
        "per_erp_p99_ms": {sim: _pct(values, 0.99) for sim, values in latencies.items()},
        "submits_per_second": round(submitted / elapsed, 1) if load_in_flight else 0,
    }


async def _run(mode: str, loaded: bool, args: argparse.Namespace) -> dict[str, Any]:
    sims = await start_simulators(SimulatorSettings())
    keys = {sim: secrets.token_urlsafe(32) for sim in TARGETS}
    overrides = {
        "grpc": {"port": 0},
        "metrics": {"enabled": False},
        "console": {"enabled": False},
        "simulators": {"enabled": False},
        "connectors": sims.connector_configs(),
        "sync": {
            "interval_seconds": args.interval,
            "targets": [{"target": t, "tenant": TENANT} for t in TARGETS.values()],
        },
        "inbound": {
            "enabled": mode == "push",
            "keys": [
                {"key_id": f"k-{sim}", "tenant": TENANT, "target": target, "secret": keys[sim]}
                for sim, target in TARGETS.items()
            ],
        },
    }
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory(prefix="rb-inbound-bench-") as data_dir:
        proc = ctx.Process(target=_serve, args=(child, data_dir, overrides))
        proc.start()
        try:
            grpc_target, inbound_url, token = await asyncio.to_thread(parent.recv)
            if mode == "push":
                async with aiohttp.ClientSession() as session:
                    for sim in TARGETS:
                        body = {
                            "enabled": True,
                            "url": inbound_url,
                            "key_id": f"k-{sim}",
                            "secret": keys[sim],
                        }
                        async with session.put(sims.urls[sim] + "/_sim/notifications", json=body) as response:
                            response.raise_for_status()
            result = await _measure(
                grpc_target, token, _Clerk(sims), args.samples, args.in_flight if loaded else 0, args.interval
            )
        finally:
            parent.send("stop")
            proc.join(60)
            await sims.stop()
    stats = {sim: kit.notifier.stats.as_dict() for sim, kit in sims.kits.items()} if mode == "push" else {}
    sent = sum(s["sent"] for s in stats.values())
    return {
        "mode": mode,
        "load": "load" if loaded else "idle",
        "interval_s": args.interval,
        **result,
        "pushes_sent": sent,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="changes per ERP per configuration")
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval (sync.interval_seconds)")
    parser.add_argument(
        "--in-flight", type=int, default=50, help="SubmitReturn calls kept in flight under load"
    )
    parser.add_argument("--modes", default="push,poll")
    parser.add_argument("--loads", default="idle,load")
    args = parser.parse_args()
    results = []
    for loaded in [name == "load" for name in args.loads.split(",")]:
        for mode in args.modes.split(","):
            result = asyncio.run(_run(mode, loaded, args))
            print(json.dumps(result), flush=True)
            results.append(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
