"""The issue-12 probes against the served App: how long hostile requests hold the service, and what they cost.

Usage: ``.venv/bin/python benchmarks/security_probe.py``. Starts the App on embedded defaults in a temp dir, then:

1. 1,000 anonymous malformed requests (garbage bytes): wall time, status codes, bytes of log written.
2. ValidateMapping with a 10^9-expansion alias bomb, a depth bomb and a 10,000+ node flood, four of each at once,
   while health checks run every 50 ms: each reply's time and code, and the slowest health check.
3. The inputs that used to be INTERNAL (page token "²", timestamps +-2^62 s, after_sequence 2^64-1): codes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.app import App
from returnbridge.config import load_settings


def _laughs() -> str:
    lines = ['a0: &a0 ["lol"]'] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)
    ]
    return "\n".join(lines) + "\nrules: *a9\n"


async def _code(call: object) -> str:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "OK"


async def _bomb(
    admin: admin_pb2_grpc.AdminServiceStub, health: health_pb2_grpc.HealthStub, spec: str, md: object
) -> tuple[list[tuple[str, float]], float]:
    """Four ValidateMapping calls with ``spec`` at once, health checked every 50 ms meanwhile."""
    slowest = 0.0
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal slowest
        while not stop.is_set():
            t0 = time.monotonic()
            await health.Check(health_pb2.HealthCheckRequest(), timeout=30)
            slowest = max(slowest, time.monotonic() - t0)
            await asyncio.sleep(0.05)

    async def one() -> tuple[str, float]:
        t0 = time.monotonic()
        request = admin_pb2.ValidateMappingRequest(spec_yaml=spec)
        code = await _code(admin.ValidateMapping(request, metadata=md, timeout=60))
        return code, time.monotonic() - t0

    watcher = asyncio.ensure_future(watch())
    results = await asyncio.gather(*(one() for _ in range(4)))
    stop.set()
    await watcher
    return list(results), slowest


async def main() -> None:
    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None,
            env={},
            overrides={
                "data_dir": tmp,
                "grpc": {"port": 0},
                "metrics": {"enabled": False},
                "simulators": {"enabled": False},
                "nats": {"sync_always": False},
                "process": {"workers": [], "sync": False},
            },
        )
        app = App(settings)
        await app.start()
        token = (await asyncio.to_thread(Path(app.endpoints.dev_token_file).read_text)).strip()
        md = (("authorization", f"Bearer {token}"),)
        try:
            async with grpc.aio.insecure_channel(app.endpoints.grpc) as channel:
                raw = channel.unary_unary(
                    "/returnbridge.api.v1.ReturnsService/GetReturnStatus",
                    request_serializer=lambda b: b,
                    response_deserializer=lambda b: b,
                )
                before = len(log_text.getvalue())
                started = time.monotonic()
                codes = Counter(
                    await asyncio.gather(*(_code(raw(b"\xff\xff\xff", timeout=30)) for _ in range(1000)))
                )
                took = time.monotonic() - started
                print(
                    f"1,000 anonymous malformed requests: {dict(codes)} in {took:.2f} s, "
                    f"{len(log_text.getvalue()) - before} bytes of log"
                )

                admin = admin_pb2_grpc.AdminServiceStub(channel)
                health = health_pb2_grpc.HealthStub(channel)
                bombs = {
                    "alias bomb (10^9)": _laughs(),
                    "depth bomb": "- " * 3000 + "x",
                    "node flood (12,000 lines)": "- a\n" * 12_000,
                }
                for name, spec in bombs.items():
                    results, slowest = await _bomb(admin, health, spec, md)
                    print(
                        f"ValidateMapping x4 {name}: {[c for c, _ in results]}, slowest reply "
                        f"{max(t for _, t in results):.2f} s, slowest health check {slowest * 1000:.0f} ms"
                    )

                returns = returns_pb2_grpc.ReturnsServiceStub(channel)
                probes = {
                    "ListDeadLetters page_token='²'": admin.ListDeadLetters(
                        admin_pb2.ListDeadLettersRequest(page_token="\u00b2"), metadata=md
                    ),
                    "QueryAudit since=2^62 s": admin.QueryAudit(
                        admin_pb2.QueryAuditRequest(since=timestamp_pb2.Timestamp(seconds=2**62)), metadata=md
                    ),
                    "GetReconciliationReport since=-2^62 s": admin.GetReconciliationReport(
                        admin_pb2.ReconciliationRequest(since=timestamp_pb2.Timestamp(seconds=-(2**62))),
                        metadata=md,
                    ),
                    "GetReturnStatus return_id 1 MB": returns.GetReturnStatus(
                        returns_pb2.GetReturnStatusRequest(return_id="x" * 1_000_000), metadata=md
                    ),
                }
                for name, call in probes.items():
                    print(f"{name}: {await _code(call)}")
                watch_call = returns.WatchSyncEvents(
                    returns_pb2.WatchSyncEventsRequest(after_sequence=2**64 - 1), metadata=md, timeout=5
                )
                print(f"WatchSyncEvents after_sequence=2^64-1: {await _code(watch_call.read())}")
        finally:
            await app.stop()


if __name__ == "__main__":
    asyncio.run(main())
