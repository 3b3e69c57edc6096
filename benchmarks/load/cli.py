"""``load_chaos.py bench | chaos``: run scenarios on fresh stacks, write JSON and a PNG, print a summary."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .faults import AlertSink
from .report import plot
from .scenarios import Scenario, run_scenario, scenarios
from .stack import Stack, StackConfig


async def run_on_fresh_stack(
    scenario: Scenario, args: argparse.Namespace, workdir: Path, alerts: AlertSink
) -> dict[str, Any]:
    config = StackConfig(
        nodes=3 if scenario.cluster else 1,
        gateways=args.gateways,
        workers=args.workers,
        alert_webhook=alerts.url,
    )
    stack = Stack(workdir / scenario.name, config)
    started = time.monotonic()
    await stack.start()
    try:
        print(
            f"[{scenario.name}] stack up in {time.monotonic() - started:.1f} s; {scenario.description}",
            flush=True,
        )
        return await run_scenario(
            stack,
            scenario,
            calls=args.calls,
            in_flight=args.in_flight,
            channels=args.channels,
            idle_seconds=args.idle_seconds,
            drain_timeout=args.drain_timeout,
            alerts=alerts,
        )
    finally:
        stack.stop()


def summary_line(result: dict[str, Any]) -> str:
    check = result["check"]
    resumed = result.get("writes_resumed_after_leader_loss_s")
    started_after = result.get("call_started_after_leader_loss_accepted_s")
    return (
        f"[{result['scenario']}] {'CLEAN' if result['clean'] else 'PROBLEMS'}: lost {check['lost']}, "
        f"duplicated {check['duplicated']}, unknown {check['unknown']}, false OK {check['false_ok']}, "
        f"dead-lettered {check['dead_lettered']}, audit gaps {check['audit_gaps']}, "
        f"audit duplicates {check['audit_duplicates']}, "
        f"chain {'ok' if check['audit_chain_ok'] else 'BROKEN'}, drained {check['backlog_drained']} "
        f"({check['drain_seconds']} s); {result['accepted_per_s']} accepted/s, submit p99 "
        f"{result['submit_latency']['p99_ms']} ms, probe p99 {result['probe_during_load']['p99_ms']} ms "
        f"(idle {result['probe_idle']['p99_ms']} ms); INTERNAL answers {result.get('internal_answers', 0)}; "
        f"alerts per incident {result['alerts']['per_incident']}"
        + (f" ALERT PROBLEMS {result['alerts']['problems']}" if result["alerts"]["problems"] else "")
        + f"; peak RSS MiB {_peak_rss(result)}"
        + (
            f"; writes resumed {resumed} s after leader loss (the first call started after it was accepted "
            f"after {started_after} s)"
            if resumed is not None
            else ""
        )
    )


def _peak_rss(result: dict[str, Any]) -> dict[str, int]:
    return {name: round(v["max_kb"] / 1024) for name, v in result.get("rss", {}).items() if v.get("max_kb")}


async def main_async(args: argparse.Namespace) -> int:
    catalogue = scenarios(args.scale)
    names = ["baseline"] if args.command == "bench" else args.scenarios.split(",")
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        print(f"unknown scenario(s) {unknown}; known: {', '.join(catalogue)}", file=sys.stderr)
        return 2
    alerts = AlertSink()
    alerts.start()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="rb-chaos-") as tmp:
            workdir = Path(args.workdir) if args.workdir else Path(tmp)
            for name in names:
                result = await run_on_fresh_stack(catalogue[name], args, workdir, alerts)
                results.append(result)
                print(summary_line(result), flush=True)
    finally:
        alerts.stop()
    json_path, png = write_outputs(Path(args.out), args.command, results)
    print(f"results: {json_path}\nplot:    {png}")
    return 0 if all(r["clean"] for r in results) else 1


def write_outputs(out: Path, command: str, results: list[dict[str, Any]]) -> tuple[Path, Path]:
    """``<command>-<UTC stamp>.json`` and ``.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    json_path = out / f"{command}-{stamp}.json"
    json_path.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2))
    return json_path, plot(results, out / f"{command}-{stamp}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="load_chaos.py", description=__doc__)
    parser.add_argument("command", choices=("bench", "chaos"))
    parser.add_argument("--scenarios", default=",".join(scenarios()), help="chaos: comma-separated names")
    parser.add_argument("--scale", choices=("full", "ci"), default="full", help="fault sizes (ci: shorter)")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--out", default="benchmarks/results", help="directory for the JSON and the PNG")
    parser.add_argument("--workdir", help="keep stores and process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))
