"""ERP-side change -> visible in WatchInventory, by push and by poll alone, idle and under submit load.

Three processes, as in production: the three simulators (the ERPs, with their notification senders), the
service (`serve`'s App: embedded nats-server, gateway, workers, poller, webhook receiver) pointed at them, and
this one (the RMS: WatchInventory and the submit load, plus the clerk making changes over HTTP). Each sample
moves one SKU's stock inside a simulator (as a clerk's adjustment would) and times until a WatchInventory
stream opened by this process shows the new level; both times are this process's ``perf_counter``. Samples
rotate over SAP, NetSuite and Oracle and are spaced by a random gap as long as the poll interval, so
poll-only samples land at random points of the poll cycle. ``--load`` keeps SubmitReturn calls in flight
against the same service meanwhile.

    .venv/bin/python benchmarks/inbound_latency.py --samples 30 --interval 2 [--modes push,poll] [--loads idle,load]
    .venv/bin/python benchmarks/inbound_latency.py --split     # gateway/workers and poller/receiver apart
    .venv/bin/python benchmarks/inbound_latency.py --no-coalesce   # the ERP senders post every change
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
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from returnbridge.api.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.simulators.runner import start_simulators
from returnbridge.simulators.settings import SimulatorSettings

TENANT = "demo"
TARGETS = {"sap": "sap", "netsuite": "netsuite", "oracle": "oracle_fusion"}
STOCK = {"sap": ("SKU-1001", "DAL1", "0001"), "oracle": ("SKU-1001", "DAL1", "Stores")}


def _serve(conn: Connection, data_dir: str, overrides: dict[str, Any]) -> None:
    from returnbridge.app import App
    from returnbridge.config import load_settings

    async def main() -> None:
        settings = load_settings(None, env={}, overrides={"data_dir": data_dir, **overrides})
        app = App(settings)
        await app.start()
        token_file = app.endpoints.dev_token_file
        token = await asyncio.to_thread(Path(token_file).read_text) if token_file else ""
        conn.send((app.endpoints.grpc, app.endpoints.inbound, token.strip()))
        with contextlib.suppress(EOFError):  # the benchmark died: stop all the same
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


def _simulate(conn: Connection) -> None:
    """The ERPs' process: start the simulators, say where they are, answer "stats", stop on "stop"."""

    async def main() -> None:
        sims = await start_simulators(SimulatorSettings())
        keys = dict(STOCK)
        keys["netsuite"] = sorted(sims.kits["netsuite"].state.stock)[0]
        conn.send((sims.urls, sims.connector_configs(), keys))
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            if command == "stats":
                conn.send({sim: kit.notifier.stats.as_dict() for sim, kit in sims.kits.items()})
        await sims.stop()

    asyncio.run(main())


class _Clerk:
    """Makes stock adjustments inside the simulators, as a clerk does (``/_sim/actions/stock/adjust``)."""

    def __init__(self, urls: dict[str, str], keys: dict[str, tuple[str, str, str]]) -> None:
        self.urls, self.keys = urls, keys
        self.session: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        return self.session

    async def expect(self, sim: str, delta: Decimal) -> Decimal:
        """The level ``delta`` will give; awaited before the change, so a fast push cannot be missed."""
        sku, site, sub = self.keys[sim]
        async with self._session().get(self.urls[sim] + "/_sim/stock") as response:
            rows = (await response.json())["items"]
        row = next(r for r in rows if (r["sku"], r["site"], r["sub_location"]) == (sku, site, sub))
        return Decimal(row["on_hand"]) + delta

    async def adjust(self, sim: str, delta: Decimal) -> None:
        sku, site, sub = self.keys[sim]
        body = {"sku": sku, "site": site, "delta": str(delta)} | ({"sub_location": sub} if sub else {})
        async with self._session().post(self.urls[sim] + "/_sim/actions/stock/adjust", json=body) as response:
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
            waiting[(TARGETS[sim], await clerk.expect(sim, Decimal(10000)))] = future
            await clerk.adjust(sim, Decimal(10000))
            await asyncio.wait_for(future, 30)
        started = time.perf_counter()
        for n in range(samples * len(TARGETS)):
            sim = list(TARGETS)[n % len(TARGETS)]
            # Uniform over a whole poll interval: a sample may land anywhere in the poll cycle.
            await asyncio.sleep(random.uniform(0.1, interval + 0.1))
            future = asyncio.get_running_loop().create_future()
            waiting[(TARGETS[sim], await clerk.expect(sim, Decimal(1)))] = future
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
    ctx = multiprocessing.get_context("spawn")
    erp_end, erp_child = ctx.Pipe()
    erps = ctx.Process(target=_simulate, args=(erp_child,))
    erps.start()
    try:
        urls, connectors, stock_keys = await asyncio.to_thread(erp_end.recv)
        result = await _with_service(mode, loaded, args, urls, connectors, stock_keys)
        erp_end.send("stats")
        stats = await asyncio.to_thread(erp_end.recv)
    finally:
        erp_end.send("stop")
        await asyncio.to_thread(erps.join, 60)
    sent = sum(s["sent"] for s in stats.values()) if mode == "push" else 0
    waits = sum(s["queue_wait_total_seconds"] for s in stats.values())
    return {
        "mode": mode,
        "load": "load" if loaded else "idle",
        "processes": "split" if args.split else "one",
        "interval_s": args.interval,
        **result,
        "sender_coalesce": args.coalesce,
        "pushes_sent": sent,
        # Changes merged into a notification already queued for the same key (not sent on their own).
        "pushes_coalesced": sum(s.get("coalesced", 0) for s in stats.values()) if mode == "push" else 0,
        # How long notifications waited in the ERP's sender before their first POST (mean, max).
        "sender_wait_mean_ms": round(waits / sent * 1000, 1) if sent else 0.0,
        "sender_wait_max_ms": round(max(s["queue_wait_max_seconds"] for s in stats.values()) * 1000, 1),
    }


async def _with_service(
    mode: str,
    loaded: bool,
    args: argparse.Namespace,
    urls: dict[str, str],
    connectors: dict[str, Any],
    stock_keys: dict[str, tuple[str, str, str]],
) -> dict[str, Any]:
    keys = {sim: secrets.token_urlsafe(32) for sim in TARGETS}
    overrides = {
        "grpc": {"port": 0},
        "metrics": {"enabled": False},
        "console": {"enabled": False},
        "simulators": {"enabled": False},
        "connectors": connectors,
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
    if not args.split:
        parts = [overrides]
    else:  # gateway + workers in one process, poller + receiver in another, on one nats-server
        parts = [
            {**overrides, "process": {"sync": False}},
            {**overrides, "process": {"gateway": False, "sync": True, "workers": []}},
        ]
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="rb-inbound-bench-") as data_dir:
        nats_server = None
        if args.split:
            nats_server = EmbeddedNatsServer(Path(data_dir) / "nats", sync_always=False)
            nats_server.start()
            parts = [{**part, "nats": {"url": nats_server.url}} for part in parts]
        procs: list[tuple[Any, Any]] = []
        try:
            for n, part in enumerate(parts):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(child, str(Path(data_dir) / f"app{n}"), part))
                proc.start()
                procs.append((proc, parent))
            answers = [await asyncio.to_thread(parent.recv) for _, parent in procs]
            grpc_target = next(a[0] for a in answers if a[0])
            token = next(a[2] for a in answers if a[2])
            inbound_url = next((a[1] for a in answers if a[1]), "")
            async with aiohttp.ClientSession() as session:
                for sim in TARGETS:
                    body = {
                        "enabled": mode == "push",
                        "url": inbound_url or "http://127.0.0.1:9/",
                        "key_id": f"k-{sim}",
                        "secret": keys[sim],
                        "coalesce": args.coalesce,
                    }
                    async with session.put(urls[sim] + "/_sim/notifications", json=body) as response:
                        response.raise_for_status()
            return await _measure(
                grpc_target,
                token,
                _Clerk(urls, stock_keys),
                args.samples,
                args.in_flight if loaded else 0,
                args.interval,
            )
        finally:
            for _, parent in procs:
                parent.send("stop")
            for proc, _ in procs:
                await asyncio.to_thread(proc.join, 60)
            if nats_server is not None:
                nats_server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30, help="changes per ERP per configuration")
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval (sync.interval_seconds)")
    parser.add_argument(
        "--in-flight", type=int, default=50, help="SubmitReturn calls kept in flight under load"
    )
    parser.add_argument("--modes", default="push,poll")
    parser.add_argument(
        "--split", action="store_true", help="gateway + workers and poller + receiver in two processes"
    )
    parser.add_argument("--loads", default="idle,load")
    parser.add_argument(
        "--no-coalesce",
        dest="coalesce",
        action="store_false",
        help="the ERP senders post every change (before: a backlog grows with every change)",
    )
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
