"""KPI figures for the console, read from this process's Prometheus registry, plus a short history for charts.

The same series Prometheus scrapes (``observability/metrics.py``): the console shows what Grafana would,
without a Prometheus server in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.registry import CollectorRegistry

from returnbridge.observability.metrics import scrape_registry

__all__ = ["KpiHistory", "KpiSnapshot", "histogram_quantile", "read_kpis", "sparkline"]

QUANTILES: Final = (0.5, 0.9, 0.99)
_FAILED_OUTCOMES: Final = ("dead_lettered", "roundtrip_mismatch", "translation_failed")


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``(upper_bound, count)`` pairs (linear in a bucket).

    Returns None without observations; the highest finite bound when the quantile falls in the +Inf bucket.
    """
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


@dataclass
class KpiSnapshot:
    """Everything the KPI page shows at one moment."""

    latency: dict[str, dict[float, float | None]] = field(default_factory=dict)
    latency_count: dict[str, int] = field(default_factory=dict)
    processing: dict[str, int] = field(default_factory=dict)
    rejected_by_rule: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    api_errors: int = 0
    api_errors_by_code: dict[str, int] = field(default_factory=dict)
    erp_calls: dict[str, int] = field(default_factory=dict)
    erp_errors: dict[str, dict[str, int]] = field(default_factory=dict)
    queue_depth: dict[str, int] = field(default_factory=dict)
    dlq_size: int = 0
    # Targets whose delivery a worker's breaker holds: their ERP stopped answering (delivery/breaker.py).
    erp_down: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        """Delivered share of documents that reached an end (delivered or failed); None before any."""
        delivered = self.processing.get("delivered", 0)
        failed = sum(self.processing.get(o, 0) for o in _FAILED_OUTCOMES)
        return delivered / (delivered + failed) if delivered + failed else None

    @property
    def api_error_rate(self) -> float | None:
        return self.api_errors / self.api_calls if self.api_calls else None

    def erp_error_rate(self, erp: str) -> float | None:
        calls = self.erp_calls.get(erp, 0)
        return sum(self.erp_errors.get(erp, {}).values()) / calls if calls else None


def read_kpis(registry: CollectorRegistry | None = None) -> KpiSnapshot:
    """Current KPI values from ``registry`` (default: every process's, ``scrape_registry``; all tenants: the
    metrics carry no tenant label)."""
    if registry is None:
        registry = scrape_registry()
    snap = KpiSnapshot()
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "rb_sync_latency_seconds_bucket":
                buckets[labels["erp"]][float(labels["le"])] += sample.value
            elif sample.name == "rb_processing_total":
                snap.processing[labels["outcome"]] = int(sample.value)
            elif sample.name == "rb_rejected_total":
                snap.rejected_by_rule[labels["rule"]] = int(sample.value)
            elif sample.name == "rb_api_calls_total":
                snap.api_calls += int(sample.value)
                if labels["code"] != "OK":
                    snap.api_errors += int(sample.value)
                    code = labels["code"]
                    snap.api_errors_by_code[code] = snap.api_errors_by_code.get(code, 0) + int(sample.value)
            elif sample.name == "rb_erp_calls_total":
                erp = labels["erp"]
                snap.erp_calls[erp] = snap.erp_calls.get(erp, 0) + int(sample.value)
                if labels["outcome"] == "error":
                    by_class = snap.erp_errors.setdefault(erp, {})
                    by_class[labels["error_class"]] = by_class.get(labels["error_class"], 0) + int(
                        sample.value
                    )
            elif sample.name == "rb_queue_depth":
                snap.queue_depth[f"{labels['stream']}/{labels['consumer']}"] = int(sample.value)
            elif sample.name == "rb_dlq_size":
                snap.dlq_size = int(sample.value)
            elif sample.name == "rb_erp_breaker_open" and sample.value >= 1:
                snap.erp_down.append(labels["target"])
    snap.erp_down.sort()
    for erp, by_bound in sorted(buckets.items()):
        pairs = sorted(by_bound.items())
        snap.latency[erp] = {q: histogram_quantile(q, pairs) for q in QUANTILES}
        snap.latency_count[erp] = int(pairs[-1][1]) if pairs else 0
    return snap


class KpiHistory:
    """Samples a few series every ``interval`` seconds into fixed-size rings (the charts' data)."""

    SERIES: Final = ("dlq_size", "queue_depth", "delivered", "api_errors", "erp_errors")

    def __init__(
        self, *, interval: float = 5.0, points: int = 120, registry: CollectorRegistry | None = None
    ) -> None:
        self._interval = interval
        self._registry = registry
        self.series: dict[str, deque[tuple[float, float]]] = {
            name: deque(maxlen=points) for name in self.SERIES
        }
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        snap = read_kpis(self._registry)
        now = time.time()
        values = {
            "dlq_size": snap.dlq_size,
            "queue_depth": sum(snap.queue_depth.values()),
            "delivered": snap.processing.get("delivered", 0),
            "api_errors": snap.api_errors,
            "erp_errors": sum(sum(c.values()) for c in snap.erp_errors.values()),
        }
        for name, value in values.items():
            self.series[name].append((now, float(value)))

    def start(self) -> None:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(self._interval)

        self._task = asyncio.create_task(loop(), name="console-kpi-history")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def sparkline(
    points: deque[tuple[float, float]] | list[tuple[float, float]], *, width: int = 240, height: int = 48
) -> str:
    """An inline SVG polyline of ``points`` (time, value), scaled to the box; a flat line when all are equal.

    Only numbers go into the markup, so it is safe to mark as trusted HTML.
    """
    data = list(points)
    box = f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">'
    if len(data) < 2:
        return box + f'<text x="4" y="{height // 2}">collecting…</text></svg>'
    t0, t1 = data[0][0], data[-1][0]
    low = min(v for _, v in data)
    high = max(v for _, v in data)
    span_t = (t1 - t0) or 1.0
    span_v = (high - low) or 1.0
    coords = " ".join(
        f"{(t - t0) / span_t * (width - 2) + 1:.1f},{height - 1 - (v - low) / span_v * (height - 2):.1f}"
        for t, v in data
    )
    return (
        box
        + f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{coords}"/>'
        + f'<text x="{width - 4}" y="12" text-anchor="end">{data[-1][1]:g}</text></svg>'
    )
