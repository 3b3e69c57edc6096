"""A submission spike against the served app, with and without admission control, and a probe client.

Runs the App (embedded nats-server, full interceptor chain, simulators, delivery workers, audit) in a child
process twice: ``grpc.admission.enabled`` false, then true. Each run measures a probe client calling
GetReturnStatus every 50 ms, first idle, then while ``--calls`` SubmitReturn calls are in flight from a bulk
client (20 channels, the shipped retry policy, so shed calls come back after the server's pushback). Prints one
JSON object with both runs: probe p50/p99 idle and during the spike (and their ratio), submit p50/p99,
outcomes.

    .venv/bin/python benchmarks/spike_probe.py --calls 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))
from concurrency_load import _order, _pct
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.retry_policy import channel_options


def _serve(conn: Connection, data_dir: str, admission: bool) -> None:
    from returnbridge.app import App
    from returnbridge.config import load_settings

    async def main() -> None:
        settings = load_settings(
            None,
            env={},
            overrides={
                "data_dir": data_dir,
                "grpc": {"port": 0, "admission": {"enabled": admission}},
                "metrics": {"enabled": False},
                "process": {"sync": False},
            },
        )
        app = App(settings)
        await app.start()
        token = await asyncio.to_thread(Path(app.endpoints.dev_token_file).read_text)
        conn.send((app.endpoints.grpc, token.strip()))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await app.stop()

    asyncio.run(main())


async def _probe(target: str, metadata: tuple[tuple[str, str], ...], stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        while not stop.is_set():
            start = time.perf_counter()
            try:
                await stub.GetReturnStatus(
                    returns_pb2.GetReturnStatusRequest(return_id="probe-none"), metadata=metadata, timeout=30
                )
            except grpc.aio.AioRpcError:
                pass  # NOT_FOUND is the expected answer; the latency is what counts
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.05)
    return latencies


async def _run(target: str, token: str, calls: int, idle_seconds: float) -> dict[str, object]:
    metadata = (("authorization", f"Bearer {token}"),)
    stop = asyncio.Event()
    idle_task = asyncio.create_task(_probe(target, metadata, stop))
    await asyncio.sleep(idle_seconds)
    stop.set()
    idle = await idle_task

    stop = asyncio.Event()
    spike_probe = asyncio.create_task(_probe(target, metadata, stop))
    run = f"{int(time.time())}{os.getpid()}"
    channels = [grpc.aio.insecure_channel(target, options=channel_options()) for _ in range(20)]
    stubs = [returns_pb2_grpc.ReturnsServiceStub(ch) for ch in channels]
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []

    async def one(index: int) -> None:
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
    seconds = time.perf_counter() - started
    stop.set()
    spike = await spike_probe
    for ch in channels:
        await ch.close()
    idle_p99 = _pct(idle, 0.99)
    spike_p99 = _pct(spike, 0.99)
    return {
        "probe_idle_p50_ms": round(_pct(idle, 0.5), 1),
        "probe_idle_p99_ms": round(idle_p99, 1),
        "probe_spike_p50_ms": round(_pct(spike, 0.5), 1),
        "probe_spike_p99_ms": round(spike_p99, 1),
        "probe_p99_ratio": round(spike_p99 / idle_p99, 2) if idle_p99 else None,
        "probe_samples": [len(idle), len(spike)],
        "submit_outcomes": dict(outcomes),
        "submit_per_second": round(calls / seconds, 1),
        "submit_p50_ms": round(_pct(latencies, 0.5), 1),
        "submit_p99_ms": round(_pct(latencies, 0.99), 1),
    }


def _one_config(calls: int, admission: bool, idle_seconds: float) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    with tempfile.TemporaryDirectory() as data_dir:
        proc = ctx.Process(target=_serve, args=(child, data_dir, admission))
        proc.start()
        try:
            target, token = parent.recv()
            result = asyncio.run(_run(target, token, calls, idle_seconds))
        finally:
            parent.send("stop")
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    results = {
        "calls": args.calls,
        "load_before": os.getloadavg(),
        "admission_off": _one_config(args.calls, False, args.idle_seconds),
        "admission_on": _one_config(args.calls, True, args.idle_seconds),
        "load_after": os.getloadavg(),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
