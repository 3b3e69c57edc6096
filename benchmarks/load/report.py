"""Numbers of a run: percentiles, per-second timelines, RSS samples, and the PNG plot over time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .driver import LoadResult, ProbeSample, Submission


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def latency_summary(values: list[float]) -> dict[str, float | None]:
    return {"p50_ms": ms(pct(values, 0.5)), "p90_ms": ms(pct(values, 0.9)), "p99_ms": ms(pct(values, 0.99))}


def timeline(result: LoadResult, bucket: float = 1.0) -> list[dict[str, Any]]:
    """Per bucket since the load started: answers/s, submit latency of the calls answered in it, probe."""
    origin = result.started
    length = max(1, math.ceil((result.ended - origin) / bucket))
    subs: list[list[Submission]] = [[] for _ in range(length)]
    probes: list[list[ProbeSample]] = [[] for _ in range(length)]
    for sub in result.submissions:
        if sub.ended:
            subs[min(length - 1, int((sub.ended - origin) / bucket))].append(sub)
    for sample in result.probe:
        index = int((sample.at - origin) / bucket)
        if 0 <= index < length:
            probes[index].append(sample)
    rows = []
    for i in range(length):
        done = subs[i]
        latencies = [s.ended - s.started for s in done]
        rows.append(
            {
                "t": round(i * bucket, 1),
                "accepted_per_s": round(sum(s.ok for s in done) / bucket, 1),
                "failed_per_s": round(sum(not s.ok for s in done) / bucket, 1),
                "submit_p50_ms": ms(pct(latencies, 0.5)),
                "submit_p99_ms": ms(pct(latencies, 0.99)),
                "probe_p50_ms": ms(pct([p.latency for p in probes[i]], 0.5)),
                "probe_p99_ms": ms(pct([p.latency for p in probes[i]], 0.99)),
                "probe_errors": sum(p.code not in ("OK", "NOT_FOUND") for p in probes[i]),
            }
        )
    return rows


def rss_summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """Per process: first, max and last RSS (KiB) over the run's samples."""
    names = sorted({name for s in samples for name in s["rss_kb"]})
    out: dict[str, dict[str, int | None]] = {}
    for name in names:
        values = [s["rss_kb"][name] for s in samples if s["rss_kb"].get(name) is not None]
        out[name] = {
            "first_kb": values[0] if values else None,
            "max_kb": max(values) if values else None,
            "last_kb": values[-1] if values else None,
        }
    return out


def plot(results: list[dict[str, Any]], path: Path) -> Path:
    """One row per scenario: answers/s on the left, submit p50/p99 and probe p99 on the right (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(13, 3.2 * len(results)), squeeze=False)
    for row, result in zip(axes, results, strict=True):
        series = result["timeline"]
        t = [r["t"] for r in series]
        left, right = row
        left.plot(t, [r["accepted_per_s"] for r in series], label="accepted/s", color="tab:green")
        left.plot(t, [r["failed_per_s"] for r in series], label="failed/s", color="tab:red")
        left.set_title(f"{result['scenario']}: throughput")
        left.set_xlabel("s since load start")
        for name, key, color in (
            ("submit p50", "submit_p50_ms", "tab:blue"),
            ("submit p99", "submit_p99_ms", "tab:purple"),
            ("probe p99", "probe_p99_ms", "tab:orange"),
        ):
            points = [(r["t"], r[key]) for r in series if r[key]]
            if points:
                right.plot(*zip(*points, strict=True), label=name, color=color)
        right.set_yscale("log")
        right.set_title(f"{result['scenario']}: latency (ms)")
        right.set_xlabel("s since load start")
        for event in result.get("events", []):
            for ax in row:
                ax.axvline(event["t"], color="grey", linestyle=":", linewidth=1)
        left.legend(loc="upper right", fontsize=8)
        right.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
