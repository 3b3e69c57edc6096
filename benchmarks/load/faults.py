"""Faults injected while the load runs, each hooked on the load's progress (not on wall-clock time).

Every fault notes when it started and ended in the run's event log, so the report and the plot can show them
and the checker can count alerts per incident.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient

from returnbridge.bus import subjects

from .driver import LoadDriver
from .stack import NatsNode, Stack


@dataclass
class FaultContext:
    stack: Stack
    driver: LoadDriver
    nc: NatsClient
    events: list[dict[str, Any]] = field(default_factory=list)
    # When the stream leader was killed (monotonic, and epoch seconds to compare with the service's clock).
    leader_killed_at: float | None = None
    leader_killed_wall: float | None = None

    def note(self, what: str, **details: Any) -> None:
        self.events.append({"at": time.monotonic(), "event": what, **details})

    async def at(self, fraction: float) -> None:
        """Wait until ``fraction`` of the calls have a final outcome (the load's progress)."""
        await self.driver.when_done_fraction(fraction).wait()


Fault = Callable[[FaultContext], Awaitable[None]]


async def set_sim_faults(stack: Stack, plan: dict[str, Any], sims: tuple[str, ...] | None = None) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in stack.sim_urls.items():
            if sims is None or name in sims:
                (await http.put(f"{url}/_sim/faults", json=plan)).raise_for_status()


async def sim_fault_counts(stack: Stack) -> dict[str, dict[str, int]]:
    async with httpx.AsyncClient(timeout=10) as http:
        return {
            name: (await http.get(f"{url}/_sim/faults")).json().get("injected", {})
            for name, url in stack.sim_urls.items()
        }


def erp_errors(
    error_rate: float = 0.2, drop_rate: float = 0.05, until: float = 0.8, min_seconds: float = 10.0
) -> Fault:
    """5xx and 429 on ``error_rate`` of ERP requests and commit-then-drop on ``drop_rate``, on every ERP,
    from 10 % of the load until ``until`` of it and for at least ``min_seconds`` (deliveries lag submits)."""

    async def run(ctx: FaultContext) -> None:
        await ctx.at(0.1)
        on_since = time.monotonic()
        plan = {
            "error_rate": error_rate,
            "error_statuses": [429, 500, 502, 503],
            "retry_after": 1,
            "commit_then_drop_rate": drop_rate,
            "seed": 13,
        }
        await set_sim_faults(ctx.stack, plan)
        ctx.note("erp_errors_on", error_rate=error_rate, commit_then_drop_rate=drop_rate)
        await ctx.at(until)
        # The fault's minimum length is part of the fault, not a synchronisation.
        await asyncio.sleep(max(0.0, min_seconds - (time.monotonic() - on_since)))
        await set_sim_faults(ctx.stack, {})
        ctx.note("erp_errors_off")

    return run


def erp_outage(sim: str = "sap", seconds: float = 60.0) -> Fault:
    """One ERP answers 503 to everything for ``seconds``."""

    async def run(ctx: FaultContext) -> None:
        await ctx.at(0.2)
        await set_sim_faults(ctx.stack, {"outage": True, "retry_after": 1}, (sim,))
        ctx.note("erp_outage_on", erp=sim, seconds=seconds)
        await asyncio.sleep(seconds)  # the outage's length is the fault itself
        await set_sim_faults(ctx.stack, {}, (sim,))
        ctx.note("erp_outage_off", erp=sim)

    return run


def erp_flapping(sim: str = "sap", error_rate: float = 0.9, seconds: float = 30.0) -> Fault:
    """One ERP answers 503 to ``error_rate`` of its requests for ``seconds``: up, but only now and then."""

    async def run(ctx: FaultContext) -> None:
        await ctx.at(0.2)
        plan = {"error_rate": error_rate, "error_statuses": [503], "retry_after": 1, "seed": 17}
        await set_sim_faults(ctx.stack, plan, (sim,))
        ctx.note("erp_flapping_on", erp=sim, error_rate=error_rate, seconds=seconds)
        await asyncio.sleep(seconds)  # how long the ERP flaps is the fault itself
        await set_sim_faults(ctx.stack, {}, (sim,))
        ctx.note("erp_flapping_off", erp=sim)

    return run


def slow_erp(sim: str = "sap", latency_s: float = 35.0, seconds: float = 30.0) -> Fault:
    """One ERP takes ``latency_s`` to post each document for ``seconds`` (longer than the worker's deadline): the
    worker gives up on the create while the ERP goes on and commits it (a late commit). Look-ups stay fast."""

    async def run(ctx: FaultContext) -> None:
        await ctx.at(0.2)
        latency_ms = int(latency_s * 1000)
        plan = {"latency_ms_min": latency_ms, "latency_ms_max": latency_ms, "methods": ["POST"]}
        await set_sim_faults(ctx.stack, plan, (sim,))
        ctx.note("slow_erp_on", erp=sim, latency_s=latency_s, seconds=seconds)
        await asyncio.sleep(seconds)  # how long the ERP stays slow is the fault itself
        await set_sim_faults(ctx.stack, {}, (sim,))
        ctx.note("slow_erp_off", erp=sim)
        # A create sent just before the end is still being posted: the checker must see what it leaves behind.
        await asyncio.sleep(latency_s)

    return run


def kill_processes(kind: str, times: int, start: float = 0.15, end: float = 0.75) -> Fault:
    """kill -9 a worker (``kind`` "worker") or gateway ("gateway") ``times`` times, restarting it at once."""

    async def run(ctx: FaultContext) -> None:
        procs = ctx.stack.workers if kind == "worker" else ctx.stack.gateways
        for n in range(times):
            await ctx.at(start + (end - start) * n / max(times - 1, 1))
            proc = procs[n % len(procs)]
            ctx.note(f"kill9_{kind}", process=proc.name, pid=proc.pid)
            await ctx.stack.restart(proc)
            ctx.note(f"{kind}_restarted", process=proc.name, pid=proc.pid)

    return run


def nats_restart(times: int = 1, down_seconds: float = 3.0) -> Fault:
    """kill -9 the (single) nats-server, keep it down ``down_seconds``, start it again on the same store."""

    async def run(ctx: FaultContext) -> None:
        for n in range(times):
            await ctx.at(0.2 + 0.5 * n / max(times - 1, 1))
            node = ctx.stack.nodes[0]
            await _bounce(ctx, node, down_seconds)

    return run


async def _bounce(ctx: FaultContext, node: NatsNode, down_seconds: float) -> None:
    assert node.proc is not None
    ctx.note("kill9_nats", node=node.name, pid=node.proc.pid)
    node.proc.kill9()
    await asyncio.sleep(down_seconds)  # how long the server stays away is the fault itself
    node.proc.start()
    await node.proc.wait_ready(60)
    ctx.note("nats_restarted", node=node.name)


async def stream_leader(nc: NatsClient, stream: str = subjects.DELIVER_STREAM) -> str:
    """The server name leading ``stream`` ($JS.API.STREAM.INFO's cluster.leader)."""
    info = await nc.jetstream().stream_info(stream)
    leader = info.cluster.leader if info.cluster is not None else None
    if not leader:
        raise RuntimeError(f"stream {stream} has no leader: {info.cluster}")
    return str(leader)


def leader_loss(down_seconds: float = 10.0) -> Fault:
    """kill -9 the nats-server leading RB_DELIVER mid-load; it rejoins after ``down_seconds``."""

    async def run(ctx: FaultContext) -> None:
        await ctx.at(0.3)
        leader = await stream_leader(ctx.nc)
        node = next(n for n in ctx.stack.nodes if n.name == leader)
        ctx.leader_killed_at = time.monotonic()
        ctx.leader_killed_wall = time.time()
        await _bounce(ctx, node, down_seconds)
        ctx.note("new_leader", leader=await _leader_eventually(ctx.nc))

    return run


async def _leader_eventually(nc: NatsClient, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await stream_leader(nc)
        except Exception:  # noqa: BLE001 - no leader yet / request timed out during the election
            if time.monotonic() > deadline:
                return ""
            await asyncio.sleep(0.5)


class AlertSink:
    """The webhook the service's alerter posts to: every alert with the time it arrived.

    A stdlib HTTP server on its own thread, so it serves whatever event loop (or none) the caller runs.
    """

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        sink = self.alerts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    sink.append({"received": time.monotonic(), **json.loads(body)})
                except ValueError:
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-sink", daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [a for a in list(self.alerts) if start <= a["received"] <= end]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
