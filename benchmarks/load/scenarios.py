"""Named scenarios and the runner: idle probe, load with its fault, drain, check, one JSON result each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import nats

from . import checker, faults
from .checker import ExpectedAlert, alert_verdict
from .driver import LoadDriver, idle_probe
from .faults import Fault, FaultContext
from .report import latency_summary, pct, rss_summary, timeline
from .stack import API_KEY, Stack


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fault: Fault | None = None
    cluster: bool = False
    # The alerts this scenario's fault must raise, once per incident; any other alert may fire, once.
    # Killed gateways and workers raise none here: the tool restarts them itself (as systemd would); the `serve`
    # supervisor's process_restarted is tested end to end in tests/chaos/test_supervised_restart.py.
    expected_alerts: tuple[ExpectedAlert, ...] = ()


def scenarios(scale: str = "full") -> dict[str, Scenario]:
    """Every scenario; ``scale`` "ci" shortens the long ones (outage length, kill counts)."""
    ci = scale == "ci"
    outage = 8.0 if ci else 60.0
    return {
        s.name: s
        for s in (
            Scenario("baseline", "no faults"),
            Scenario(
                "erp_errors",
                "20 % of ERP requests answer 429/500/502/503, 5 % are committed and the connection dropped",
                faults.erp_errors(min_seconds=4.0 if ci else 30.0),
            ),
            Scenario(
                "worker_kill",
                f"kill -9 of a worker x{1 if ci else 4}, restarted at once",
                faults.kill_processes("worker", 1 if ci else 4),
            ),
            Scenario(
                "gateway_kill",
                f"kill -9 of a gateway x{1 if ci else 3}, restarted at once",
                faults.kill_processes("gateway", 1 if ci else 3),
            ),
            Scenario(
                "nats_restart",
                f"kill -9 of nats-server x{1 if ci else 2}, back after 3 s on the same store",
                faults.nats_restart(1 if ci else 2),
                # Each restart is its own incident; while NATS is down the processes cannot share incident
                # records, so the hold-down against flapping cannot merge them.
                expected_alerts=(ExpectedAlert("nats_disconnected", "nats", incidents=1 if ci else 2),),
            ),
            Scenario(
                "erp_outage",
                f"SAP answers 503 to everything for {outage:g} s",
                faults.erp_outage("sap", outage),
                expected_alerts=(ExpectedAlert("erp_unreachable", "sap"),),
            ),
            Scenario(
                "erp_flapping",
                f"SAP answers 503 to 90 % of its requests for {6 if ci else 30} s",
                faults.erp_flapping("sap", 0.9, 6.0 if ci else 30.0),
            ),
            Scenario(
                "slow_erp",
                # The worker's ERP deadline is 30 s (5 s in CI): SAP commits each create 5 s (3 s) after it.
                f"SAP takes {8 if ci else 35} s to post each document for {10 if ci else 30} s, past the "
                "worker's deadline: the answers are lost, the documents committed later",
                faults.slow_erp("sap", 8.0 if ci else 35.0, 10.0 if ci else 30.0),
            ),
            Scenario(
                "leader_loss",
                "3-node cluster (R3): kill -9 of the nats-server leading RB_DELIVER mid-load, back after 10 s",
                faults.leader_loss(10.0),
                cluster=True,
                # One page: the clients of the lost node fail over at once, which is no NATS outage.
                expected_alerts=(
                    ExpectedAlert("stream_leader_elected"),
                    ExpectedAlert("nats_disconnected", incidents=0),
                ),
            ),
        )
    }


async def _quiet_nats_error(exc: Exception) -> None:
    """The scenarios kill nats-servers on purpose: one line per failed reconnect, not nats-py's traceback."""
    print(f"chaos client: nats: {exc!r}", file=sys.stderr)


def run_prefix(name: str) -> str:
    """Short and unique per run: it prefixes return ids and RMA numbers (SAP references hold 35 chars)."""
    return f"{name[:3]}{uuid.uuid4().hex[:6]}"


async def run_scenario(
    stack: Stack,
    scenario: Scenario,
    *,
    calls: int,
    in_flight: int,
    channels: int = 20,
    idle_seconds: float = 3.0,
    drain_timeout: float = 300.0,
    alerts: faults.AlertSink | None = None,
) -> dict[str, Any]:
    prefix = run_prefix(scenario.name)
    nc = await nats.connect(
        servers=stack.nats_url.split(","),
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        name="chaos",
        error_cb=_quiet_nats_error,
    )
    try:
        idle = await idle_probe(stack.gateway_targets, API_KEY, idle_seconds)
        driver = LoadDriver(
            stack.gateway_targets, API_KEY, prefix=prefix, calls=calls, in_flight=in_flight, channels=channels
        )
        ctx = FaultContext(stack, driver, nc)
        rss: list[dict[str, Any]] = []
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(_sample_rss(stack, rss, stop_sampling))
        fault_task = asyncio.create_task(scenario.fault(ctx)) if scenario.fault else None
        load_started = time.monotonic()
        result = await driver.run()
        if fault_task is not None:
            # A fault still waiting on progress the load never reached is a bug of the scenario, not a pass.
            await asyncio.wait_for(fault_task, timeout=600)
        await faults.set_sim_faults(stack, {})
        injected = await faults.sim_fault_counts(stack)
        report = await checker.check(
            nc,
            stack.sim_urls,
            result.submissions,
            return_prefix=f"{prefix}-",
            rma_prefix=prefix,
            drain_timeout=drain_timeout,
        )
        stop_sampling.set()
        await sampler
        ended = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()

    latencies = [s.ended - s.started for s in result.submissions if s.ok]
    seconds = result.ended - result.started
    idle_p99 = pct([p.latency for p in idle], 0.99)
    spike_p99 = pct([p.latency for p in result.probe], 0.99)
    window_alerts = alerts.between(load_started, ended) if alerts else []
    incidents = sorted(
        {(a.get("kind"), a.get("key")) for a in window_alerts if a.get("status") != "resolved"}
    )
    verdict = alert_verdict(window_alerts, scenario.expected_alerts)
    out: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "prefix": prefix,
        "processes": {
            "nats_nodes": len(stack.nodes),
            "gateways": len(stack.gateways),
            "workers": len(stack.workers),
            "replicas": stack.config.replicas or len(stack.nodes),
        },
        "calls": calls,
        "in_flight": in_flight,
        "channels": channels,
        "load_seconds": round(seconds, 1),
        "accepted_per_s": round(sum(s.ok for s in result.submissions) / seconds, 1) if seconds else None,
        "submit_latency": latency_summary(latencies),
        "client_outcomes": _count(s.outcome for s in result.submissions),
        "client_errors_seen": _count(e for s in result.submissions for e in s.errors),
        # An attempt answered INTERNAL is a failure the service could not classify: a bug even when the retry
        # hid it (a leader election must answer UNAVAILABLE).
        "internal_answers": sum(e == "INTERNAL" for s in result.submissions for e in s.errors),
        "attempts_per_return_max": max((s.attempts for s in result.submissions), default=0),
        "probe_idle": latency_summary([p.latency for p in idle]),
        "probe_during_load": latency_summary([p.latency for p in result.probe]),
        "probe_p99_ratio": round(spike_p99 / idle_p99, 2) if idle_p99 and spike_p99 else None,
        "probe_errors": _count(p.code for p in result.probe if p.code not in ("OK", "NOT_FOUND")),
        "check": report.to_json(),
        "erp_faults_injected": injected,
        "alerts": {
            "sent": len(window_alerts),
            "incidents": [f"{kind}:{key}" for kind, key in incidents],
            "by_kind": _count(str(a.get("kind")) for a in window_alerts),
            "by_status": _count(str(a.get("status")) for a in window_alerts),
            "expected": [f"{e.kind}:{e.key or '*'} x{e.incidents}" for e in scenario.expected_alerts],
            **verdict,
        },
        # The checker's verdict and one alert per incident of the fault (none missing, none twice).
        "clean": report.clean and not verdict["problems"],
        "events": [
            {"t": round(e["at"] - result.started, 2), **{k: v for k, v in e.items() if k != "at"}}
            for e in ctx.events
        ],
        "rss": rss_summary(rss),
        "timeline": timeline(result),
        "load_average": os.getloadavg(),
    }
    if ctx.leader_killed_at is not None and ctx.leader_killed_wall is not None:
        out["writes_resumed_after_leader_loss_s"] = writes_resumed_after(
            result.submissions, ctx.leader_killed_at, ctx.leader_killed_wall
        )
        out["call_started_after_leader_loss_accepted_s"] = first_call_accepted_after(
            result.submissions, ctx.leader_killed_at
        )
    return out


def writes_resumed_after(submissions: list[Any], killed_at: float, killed_wall: float) -> float | None:
    """Seconds from the kill to the first ACCEPTED answer of a call the service admitted after it (its
    ``accepted_at``): when the service took writes again. With thousands of calls in flight, a call the client
    starts after the kill first waits behind the others in its own transport; that wait is not the service's."""
    after = [s.ended for s in submissions if s.outcome == "ACCEPTED" and s.accepted_at >= killed_wall]
    return round(min(after) - killed_at, 2) if after else None


def first_call_accepted_after(submissions: list[Any], killed_at: float) -> float | None:
    """Seconds from the kill to the first ACCEPTED answer of an attempt the client started after it (the
    client's view: it includes the wait behind the calls already in flight)."""
    after = [s.ended for s in submissions if s.ok and s.first_ok_attempt_started >= killed_at]
    return round(min(after) - killed_at, 2) if after else None


async def _sample_rss(stack: Stack, out: list[dict[str, Any]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        out.append({"at": time.monotonic(), "rss_kb": stack.rss_kb()})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
