"""A submission spike against `returnbridge serve` in several layouts side by side, with a probe client.

Each layout runs the real command (embedded nats-server with fsync on, full interceptor chain, admission,
simulators, delivery workers, poller, audit) as a child process:

- ``supervised``: the default: a supervisor, gateway processes on one port (one per core), a worker process, the
  simulators in their own process;
- ``single``: ``serve --single-process`` (everything in one process, the layout before the split);
- ``bounded``: ``supervised`` with ``grpc.max_concurrent_streams`` (``--max-streams``): a connection's excess
  calls wait in the client's transport instead of the gateway's event loop (32, the default since branch
  ``gateway``, makes it ``supervised``);
- ``unbounded``: ``supervised`` with ``grpc.max_concurrent_streams: 0`` (every call in the gateways' loops);
- ``flat``: ``supervised`` with ``process.background_nice: 0`` (worker and simulators at the gateways' CPU
  priority, as before it existed), to measure what the priority does;
- ``main``: ``serve`` from another source tree (``--main-tree``, e.g. a copy of main's ``python/`` with the built
  extension), to compare with the code before this branch in the same run.

For each: a probe client **in its own process** (its latency is the server's, not a busy client loop's) of another
tenant (another business unit) calls GetReturnStatus every 50 ms, and that tenant submits a new return every
200 ms from a third process, first idle for ``--idle-seconds`` (20 s: ~400 samples, so the idle p99 is not one
sample), then while ``--calls`` SubmitReturn calls are in flight from the bulk client, also in its own process(es)
(``--bulk-processes``; 20 channels in all, the shipped retry policy, so shed calls come back after the server's
pushback; ``--bulk-connections own``, the default, gives each channel its own connection as the shipped options
do, ``shared`` lets them share grpc's default one, as 20 plain channels to one address do). Samples are split by the monotonic clock (shared by the processes) at the spike's start and end. The
peak RSS of each process is sampled meanwhile. Prints one JSON object: probe p50/p99 idle and during the spike
(and their ratio), the small tenant's submit p50/p99 idle and during the spike (and their ratio), the bulk
submit p50/p99, outcomes, accepted/s, peak RSS per process role.

    .venv/bin/python benchmarks/spike_probe.py --calls 3000 --layouts single,supervised
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))
from concurrency_load import _order, _pct
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.gateway.auth import generate_api_key
from returnbridge.retry_policy import OWN_CONNECTION, channel_options

#: The bulk tenant sends the spike; the small tenant (another business unit) submits a return every 200 ms.
BULK_TENANT, SMALL_TENANT = "demo", "small"
ROLES = ["submitter", "reader"]


class _Served:
    """``returnbridge serve`` in a layout with an API key per tenant; the banner gives the address and processes."""

    def __init__(
        self,
        layout: str,
        data_dir: str,
        main_tree: str | None,
        max_streams: int = 32,
        settings: dict[str, str] | None = None,
    ) -> None:
        args = [sys.executable, "-m", "returnbridge.cli", "serve", "--grpc-port", "0", "--data-dir", data_dir]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNBRIDGE_")}
        env.update(RETURNBRIDGE_METRICS__PORT="0", RETURNBRIDGE_CONSOLE__PORT="0")
        self.tokens: dict[str, str] = {}
        keys = []
        for tenant in (BULK_TENANT, SMALL_TENANT):
            raw, digest = generate_api_key()
            self.tokens[tenant] = raw
            keys.append({"name": tenant, "tenant_id": tenant, "roles": ROLES, "sha256": digest})
        env["RETURNBRIDGE_SECURITY__API_KEYS"] = json.dumps(keys)
        env.update(settings or {})
        if layout == "single":
            args.append("--single-process")
        elif layout == "bounded":
            env["RETURNBRIDGE_GRPC__MAX_CONCURRENT_STREAMS"] = str(max_streams)
        elif layout == "unbounded":
            env["RETURNBRIDGE_GRPC__MAX_CONCURRENT_STREAMS"] = "0"
        elif layout == "flat":
            env["RETURNBRIDGE_PROCESS__BACKGROUND_NICE"] = "0"
        elif layout == "main":
            if not main_tree:
                raise SystemExit("layout main needs --main-tree")
            env["PYTHONPATH"] = main_tree
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        banner = self._banner()
        self.target = re.search(r"gRPC\s+(\S+:\d+)", banner).group(1)  # type: ignore[union-attr]
        children = re.findall(r"process\s+(\S+)\s+pid (\d+)", banner)
        self.pids = {name: int(pid) for name, pid in children} or {"single": self.proc.pid}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def _banner(self) -> str:
        seen: list[str] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith("Ctrl-C stops everything"):
                return "".join(seen)
        self.proc.kill()
        raise SystemExit("serve did not start:\n" + "".join(seen[-40:]))

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _RssSampler:
    """Peak resident memory per process while the spike runs (every 0.5 s, in a thread)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start_mb = {name: round(_rss_mb(pid)) for name, pid in pids.items()}
        self.peak_mb = dict(self.start_mb)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, pid in self.pids.items():
                self.peak_mb[name] = max(self.peak_mb[name], round(_rss_mb(pid)))

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        return {name: {"start": self.start_mb[name], "peak": self.peak_mb[name]} for name in self.pids}


async def _probe(
    target: str, metadata: tuple[tuple[str, str], ...], stop: Event
) -> list[tuple[float, float]]:
    """(monotonic start, latency) of GetReturnStatus calls 50 ms apart until ``stop`` is set."""
    samples: list[tuple[float, float]] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        while not stop.is_set():
            start = time.monotonic()
            try:
                await stub.GetReturnStatus(
                    returns_pb2.GetReturnStatusRequest(return_id="probe-none"), metadata=metadata, timeout=30
                )
            except grpc.aio.AioRpcError:
                pass  # NOT_FOUND is the expected answer; the latency is what counts
            samples.append((start, time.monotonic() - start))
            await asyncio.sleep(0.05)
    return samples


async def _small_tenant(target: str, token: str, stop: Event) -> list[tuple[float, float, str]]:
    """(monotonic start, latency, outcome) of one new return submitted every 200 ms until ``stop`` is set."""
    samples: list[tuple[float, float, str]] = []
    metadata = (("authorization", f"Bearer {token}"),)
    run = f"small{os.getpid()}"
    async with grpc.aio.insecure_channel(target, options=channel_options()) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        index = 0
        while not stop.is_set():
            start = time.monotonic()
            try:
                await stub.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=_order(run, index)),
                    metadata=metadata,
                    timeout=60,
                )
                outcome = "ACCEPTED"
            except grpc.aio.AioRpcError as exc:
                outcome = exc.code().name
            samples.append((start, time.monotonic() - start, outcome))
            index += 1
            await asyncio.sleep(0.2)
    return samples


def _small_main(conn: Connection, target: str, token: str, stop: Event) -> None:
    conn.send(asyncio.run(_small_tenant(target, token, stop)))


def _probe_main(conn: Connection, target: str, token: str, stop: Event) -> None:
    """The probe client's process: nothing else runs in its event loop."""
    conn.send(asyncio.run(_probe(target, (("authorization", f"Bearer {token}"),), stop)))


async def _bulk(
    target: str, token: str, first: int, calls: int, channels: int, run: str, shared: bool
) -> dict[str, object]:
    metadata = (("authorization", f"Bearer {token}"),)
    # Shared: the same options minus OWN_CONNECTION, so grpc's global subchannel pool gives all one connection.
    options = [o for o in channel_options() if not shared or o != OWN_CONNECTION]
    chans = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    stubs = [returns_pb2_grpc.ReturnsServiceStub(ch) for ch in chans]
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

    await asyncio.gather(*(one(i) for i in range(first, first + calls)))
    for ch in chans:
        await ch.close()
    return {"outcomes": dict(outcomes), "latencies": latencies}


def _bulk_main(
    conn: Connection,
    target: str,
    token: str,
    first: int,
    calls: int,
    channels: int,
    run: str,
    shared: bool,
) -> None:
    """One bulk client process: its share of the calls over its share of the channels."""
    conn.send(asyncio.run(_bulk(target, token, first, calls, channels, run, shared)))


def _spawned(
    ctx: multiprocessing.context.SpawnContext, target: object, *args: object
) -> tuple[Connection, object]:
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(send, *args), daemon=True)
    process.start()
    send.close()
    return receive, process


def _run(
    target: str,
    tokens: dict[str, str],
    calls: int,
    idle_seconds: float,
    bulk_processes: int,
    shared: bool = False,
) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    token = tokens[BULK_TENANT]
    probe_conn, probe = _spawned(ctx, _probe_main, target, tokens[SMALL_TENANT], stop)
    small_conn, small = _spawned(ctx, _small_main, target, tokens[SMALL_TENANT], stop)
    time.sleep(idle_seconds)  # the probe's idle phase (it runs in its own process meanwhile)
    run = f"{int(time.time())}{os.getpid()}"
    spike_start = time.monotonic()
    share, channels = -(-calls // bulk_processes), max(20 // bulk_processes, 1)
    bulk = [
        _spawned(ctx, _bulk_main, target, token, first, min(share, calls - first), channels, run, shared)
        for first in range(0, calls, share)
    ]
    results = [conn.recv() for conn, _ in bulk]
    spike_end = time.monotonic()
    stop.set()
    samples: list[tuple[float, float]] = probe_conn.recv()
    small_samples: list[tuple[float, float, str]] = small_conn.recv()
    for _, process in (*bulk, (probe_conn, probe), (small_conn, small)):
        process.join(30)  # type: ignore[attr-defined]
    seconds = spike_end - spike_start
    outcomes: Counter[str] = Counter()
    latencies: list[float] = []
    for result in results:
        outcomes.update(result["outcomes"])
        latencies.extend(result["latencies"])
    idle = [lat for at, lat in samples if at < spike_start]
    spike = [lat for at, lat in samples if spike_start <= at <= spike_end]
    idle_p99 = _pct(idle, 0.99)
    spike_p99 = _pct(spike, 0.99)
    small_idle = [lat for at, lat, _ in small_samples if at < spike_start]
    small_spike = [lat for at, lat, _ in small_samples if spike_start <= at <= spike_end]
    small_idle_p99, small_spike_p99 = _pct(small_idle, 0.99), _pct(small_spike, 0.99)
    return {
        "probe_idle_p50_ms": round(_pct(idle, 0.5), 1),
        "probe_idle_p99_ms": round(idle_p99, 1),
        "probe_spike_p50_ms": round(_pct(spike, 0.5), 1),
        "probe_spike_p99_ms": round(spike_p99, 1),
        "probe_p99_ratio": round(spike_p99 / idle_p99, 2) if idle_p99 else None,
        "probe_samples": [len(idle), len(spike)],
        "submit_outcomes": dict(outcomes),
        "submit_per_second": round(calls / seconds, 1),
        "accepted_per_second": round(outcomes["ACCEPTED"] / seconds, 1),
        "spike_seconds": round(seconds, 1),
        "submit_p50_ms": round(_pct(latencies, 0.5), 1),
        "submit_p99_ms": round(_pct(latencies, 0.99), 1),
        "small_tenant_idle_p50_ms": round(_pct(small_idle, 0.5), 1),
        "small_tenant_idle_p99_ms": round(small_idle_p99, 1),
        "small_tenant_spike_p50_ms": round(_pct(small_spike, 0.5), 1),
        "small_tenant_spike_p99_ms": round(small_spike_p99, 1),
        "small_tenant_p99_ratio": round(small_spike_p99 / small_idle_p99, 2) if small_idle_p99 else None,
        "small_tenant_outcomes": dict(Counter(outcome for _, _, outcome in small_samples)),
    }


def _one_layout(
    layout: str,
    calls: int,
    idle_seconds: float,
    main_tree: str | None,
    max_streams: int,
    bulk_processes: int,
    settings: dict[str, str] | None = None,
    shared: bool = False,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        served = _Served(layout, data_dir, main_tree, max_streams, settings)
        try:
            sampler = _RssSampler(served.pids)
            result = _run(served.target, served.tokens, calls, idle_seconds, bulk_processes, shared)
            result["rss_mb"] = sampler.stop()
        finally:
            served.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--bulk-processes", type=int, default=1, help="processes the bulk calls are spread over"
    )
    parser.add_argument(
        "--layouts",
        default="single,supervised",
        help="comma-separated: main, single, supervised, flat, bounded, unbounded",
    )
    parser.add_argument(
        "--bulk-connections",
        default="own",
        help="comma-separated, each run per layout: own (a connection per bulk channel, as the shipped options "
        "give) and/or shared (one for all, as plain channels get); a shared run is named '<layout>+shared'",
    )
    parser.add_argument("--main-tree", help="PYTHONPATH of the code layout 'main' runs")
    parser.add_argument(
        "--max-streams", type=int, default=32, help="grpc.max_concurrent_streams of 'bounded'"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[;KEY=VALUE]",
        help="one more layout: 'supervised' with these RETURNBRIDGE_* settings, run after --layouts",
    )
    args = parser.parse_args()
    runs: list[tuple[str, str, dict[str, str]]] = [
        (name, name, {}) for name in args.layouts.split(",") if name
    ]
    for spec in args.variant:
        name, _, pairs = spec.partition(":")
        settings = dict(pair.split("=", 1) for pair in pairs.split(";") if pair)
        if not name or not all(key.startswith("RETURNBRIDGE_") for key in settings):
            parser.error(f"--variant {spec!r}: expected NAME:RETURNBRIDGE_KEY=VALUE[;...]")
        runs.append((name, "supervised", settings))
    results: dict[str, object] = {
        "calls": args.calls,
        "bulk_processes": args.bulk_processes,
        "bulk_connections": args.bulk_connections,
        "cpus": len(os.sched_getaffinity(0)),
        "load_before": os.getloadavg(),
    }
    connections = [c for c in args.bulk_connections.split(",") if c]
    if not connections or set(connections) - {"own", "shared"}:
        parser.error("--bulk-connections: own and/or shared")
    for name, layout, settings, shared in [
        (name if c == "own" else f"{name}+shared", layout, settings, c == "shared")
        for name, layout, settings in runs
        for c in connections
    ]:
        results[name] = _one_layout(
            layout,
            args.calls,
            args.idle_seconds,
            args.main_tree,
            args.max_streams,
            args.bulk_processes,
            settings,
            shared,
        )
        results[f"load_after_{name}"] = os.getloadavg()
        print(json.dumps({name: results[name]}), file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
