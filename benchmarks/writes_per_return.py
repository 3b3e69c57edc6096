"""What one return costs end to end on served defaults: JetStream writes per stream and CPU per process.

Starts ``returnbridge serve`` (supervised layout, embedded nats-server with fsync on, the bundled simulators),
submits ``--calls`` new returns with ``--in-flight`` at once, waits ``--settle`` seconds for delivery and the ERP
status coming back, then reads every stream's last sequence and every process's CPU time (``/proc``) and prints
their growth divided by the returns submitted, as JSON. Every write here is fsync'd by nats-server, so the
writes per return bound what nats-server costs; the CPU per process says where the rest goes.

    .venv/bin/python benchmarks/writes_per_return.py --calls 2000 --in-flight 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import grpc
import nats

sys.path.insert(0, str(Path(__file__).parent))
from concurrency_load import _order
from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.retry_policy import channel_options
from spike_probe import BULK_TENANT, _Served


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _nats_server(data_dir: str) -> tuple[str, int]:
    """The embedded nats-server's URL (with its generated credentials) and pid."""
    conf = Path(data_dir, "nats", "nats-server.conf").read_text()
    port = re.search(r'listen: "127\.0\.0\.1:(\d+)"', conf).group(1)  # type: ignore[union-attr]
    password = re.search(r'password: "([^"]+)"', conf).group(1)  # type: ignore[union-attr]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "nats-server" in cmdline and data_dir in cmdline:
                return f"nats://returnbridge:{password}@127.0.0.1:{port}", int(entry.name)
    raise SystemExit("embedded nats-server not found")


async def _last_sequences(url: str) -> dict[str, int]:
    nc = await nats.connect(url)
    try:
        return {info.config.name or "": info.state.last_seq for info in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


async def _submit(target: str, token: str, calls: int, in_flight: int) -> int:
    """Submit ``calls`` new returns; the number ACCEPTED."""
    metadata = (("authorization", f"Bearer {token}"),)
    slots = asyncio.Semaphore(in_flight)
    accepted = 0
    async with grpc.aio.insecure_channel(target, options=channel_options()) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)

        async def one(index: int) -> None:
            nonlocal accepted
            async with slots:
                answer = await stub.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=_order("wpr", index)),
                    metadata=metadata,
                    timeout=120,
                )
                accepted += answer.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED

        await asyncio.gather(*(one(i) for i in range(calls)))
    return accepted


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds to wait for delivery after the last"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        served = _Served("supervised", data_dir, None)
        try:
            url, nats_pid = _nats_server(data_dir)
            pids = {**served.pids, "nats-server": nats_pid}
            before = asyncio.run(_last_sequences(url))
            cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            accepted = asyncio.run(
                _submit(served.target, served.tokens[BULK_TENANT], args.calls, args.in_flight)
            )
            asyncio.run(asyncio.sleep(args.settle))
            after = asyncio.run(_last_sequences(url))
            cpu_after = {name: _cpu_seconds(pid) for name, pid in pids.items()}
        finally:
            served.stop()
    writes = {name: round((seq - before.get(name, 0)) / accepted, 2) for name, seq in sorted(after.items())}
    print(
        json.dumps(
            {
                "calls": args.calls,
                "in_flight": args.in_flight,
                "accepted": accepted,
                "writes_per_return": {name: n for name, n in writes.items() if n},
                "writes_per_return_total": round(sum(writes.values()), 2),
                "cpu_ms_per_return": {
                    name: round((cpu_after[name] - cpu_before[name]) / accepted * 1000, 2) for name in pids
                },
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
