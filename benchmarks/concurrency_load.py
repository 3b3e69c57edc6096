"""10,000 return transactions in flight against the real service: the full gateway chain, the simulators.

Runs `returnbridge serve`'s App (embedded nats-server, auth + rate limit + RBAC interceptors, validation,
routing, JetStream, delivery workers, the NetSuite simulator over HTTP) in a child process and opens
``--in-flight`` SubmitReturn calls at once from this process. Reports how many were accepted (none may be
CANCELLED or refused), submit throughput and latency, and how long until the ERP confirmed them all.

    .venv/bin/python benchmarks/concurrency_load.py --calls 10000 --in-flight 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import grpc
import nats

from returnbridge.api.v1 import common_pb2, returns_pb2, returns_pb2_grpc, sync_pb2


def _serve(conn: Connection, data_dir: str, sync_always: bool) -> None:
    from returnbridge.app import App
    from returnbridge.config import load_settings

    async def main() -> None:
        settings = load_settings(
            None,
            env={},
            overrides={
                "data_dir": data_dir,
                "grpc": {"port": 0},
                "metrics": {"enabled": False},
                "console": {"enabled": False},
                "nats": {"sync_always": sync_always},
                "process": {"sync": False},
            },
        )
        app = App(settings)
        await app.start()
        token = await asyncio.to_thread(Path(app.endpoints.dev_token_file).read_text)
        conn.send((app.endpoints.grpc, app.endpoints.nats, token.strip()))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        await app.stop()

    asyncio.run(main())


def _order(run: str, index: int) -> returns_pb2.ReturnOrder:
    price = common_pb2.Money(amount="49.95", currency="USD")
    order = returns_pb2.ReturnOrder(
        return_id=f"load-{run}-{index}",
        rma_number=f"L{run}{index:06d}",
        version=1,
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        reason_code="DEFECTIVE",
        currency="USD",
        customer=returns_pb2.Customer(customer_id="C-1", erp_customer_ref="101", tier="gold"),
        lines=[
            returns_pb2.ReturnLine(
                line_id="L1", sku="SKU-1001", product_type="apparel", quantity="1", unit_of_measure="EA",
                unit_price=price, cost_center="CC-100", vendor_code="V-200", reason_code="DEFECTIVE",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            )
        ],
    )  # fmt: skip
    order.event_time.GetCurrentTime()
    return order


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if ordered else 0.0


async def _load(
    target: str, nats_url: str, token: str, calls: int, in_flight: int, confirm_timeout: float, data_dir: str
) -> dict:
    from returnbridge.bus.embedded import client_login

    run = str(int(time.time()))
    metadata = (("authorization", f"Bearer {token}"),)
    # The served app's embedded nats-server takes only the credentials it generated into data_dir.
    nc = await nats.connect(nats_url, **client_login(nats_url, Path(data_dir)))
    delivered: set[str] = set()
    all_delivered = asyncio.Event()

    async def on_event(msg: nats.aio.msg.Msg) -> None:
        event = sync_pb2.SyncEvent.FromString(msg.data)
        if event.state == sync_pb2.SYNC_STATE_DELIVERED and event.return_id.startswith(f"load-{run}-"):
            delivered.add(event.return_id)
            if len(delivered) >= calls:
                all_delivered.set()

    await nc.subscribe("rb.status.demo", cb=on_event)
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    slots = asyncio.Semaphore(in_flight)
    options = [("grpc.max_concurrent_streams", 0)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(4)]
    stubs = [returns_pb2_grpc.ReturnsServiceStub(ch) for ch in channels]

    async def one(index: int) -> None:
        async with slots:
            start = time.perf_counter()
            try:
                await stubs[index % len(stubs)].SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=_order(run, index)),
                    metadata=metadata,
                    timeout=300,
                )
                outcomes["ACCEPTED"] += 1
            except grpc.aio.AioRpcError as exc:
                outcomes[exc.code().name] += 1
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    submit_seconds = time.perf_counter() - started
    try:
        await asyncio.wait_for(all_delivered.wait(), timeout=confirm_timeout)
    except TimeoutError:
        pass
    confirmed_seconds = time.perf_counter() - started
    for ch in channels:
        await ch.close()
    await nc.drain()
    return {
        "calls": calls,
        "in_flight": in_flight,
        "outcomes": dict(outcomes),
        "submit_seconds": round(submit_seconds, 2),
        "submit_per_second": round(calls / submit_seconds, 1),
        "submit_p50_ms": round(_pct(latencies, 0.5), 1),
        "submit_p99_ms": round(_pct(latencies, 0.99), 1),
        "erp_confirmed": len(delivered),
        "all_confirmed_after_seconds": round(confirmed_seconds, 2) if len(delivered) >= calls else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=10_000)
    parser.add_argument(
        "--sync-always", action="store_true", help="fsync every JetStream write (the default of serve)"
    )
    parser.add_argument("--confirm-timeout", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, data_dir, args.sync_always), daemon=True
        )
        server.start()
        target, nats_url, token = parent.recv()
        try:
            result = asyncio.run(
                _load(target, nats_url, token, args.calls, args.in_flight, args.confirm_timeout, data_dir)
            )
        finally:
            parent.send("stop")
            server.join(timeout=30)
            if server.is_alive():
                server.kill()
    print(json.dumps(result, indent=2))
    ok = result["outcomes"].get("ACCEPTED") == args.calls and result["erp_confirmed"] == args.calls
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
