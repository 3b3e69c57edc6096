"""KPI arithmetic over a private registry: quantiles like Prometheus, rates, and the SVG charts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from returnbridge.console.kpis import KpiHistory, histogram_quantile, read_kpis, sparkline
from returnbridge.console.templating import template_environment


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1.0, 0), (2.0, 10), (math.inf, 10)], 1.5),
        (0.9, [(1.0, 10), (2.0, 10), (math.inf, 10)], 0.9),
        (0.99, [(1.0, 0), (2.0, 0), (math.inf, 4)], 2.0),  # in +Inf: the highest finite bound
        (0.5, [(1.0, 0), (math.inf, 0)], None),
        (0.5, [], None),
    ],
)
def test_histogram_quantile(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    got = histogram_quantile(q, buckets)
    assert got == (pytest.approx(expected) if expected is not None else None)


def registry_with_traffic() -> CollectorRegistry:
    registry = CollectorRegistry()
    latency = Histogram(
        "rb_sync_latency_seconds", "", ["erp", "document_type"], buckets=(0.1, 1.0, 10.0), registry=registry
    )
    for seconds in (0.05, 0.5, 0.5, 5.0):
        latency.labels("netsuite", "cashRefund").observe(seconds)
    processing = Counter("rb_processing_total", "", ["outcome"], registry=registry)
    processing.labels("delivered").inc(9)
    processing.labels("dead_lettered").inc(1)
    processing.labels("rejected").inc(4)
    rejected = Counter("rb_rejected_total", "", ["rule"], registry=registry)
    rejected.labels("lifecycle.transition").inc(3)
    rejected.labels("erp_constraint").inc(1)
    api = Counter("rb_api_calls_total", "", ["method", "code"], registry=registry)
    api.labels("/x/Submit", "OK").inc(8)
    api.labels("/x/Submit", "INVALID_ARGUMENT").inc(2)
    erp = Counter("rb_erp_calls_total", "", ["erp", "operation", "outcome", "error_class"], registry=registry)
    erp.labels("sap", "create", "ok", "").inc(3)
    erp.labels("sap", "create", "error", "auth").inc(1)
    depth = Gauge("rb_queue_depth", "", ["stream", "consumer"], registry=registry)
    depth.labels("RB_DELIVER", "rb-deliver-sap").set(7)
    Gauge("rb_dlq_size", "", registry=registry).set(2)
    breaker = Gauge("rb_erp_breaker_open", "", ["target"], registry=registry)
    breaker.labels("sap").set(1)
    breaker.labels("netsuite").set(0)  # opened and closed again
    return registry


def test_read_kpis() -> None:
    snap = read_kpis(registry_with_traffic())
    assert snap.latency_count == {"netsuite": 4}
    assert snap.latency["netsuite"][0.5] == pytest.approx(0.55)  # 2nd of 4 in (0.1, 1.0]: 0.1 + 0.9 * 1/2
    assert snap.accuracy == pytest.approx(0.9)  # rejected requests are not documents that reached an end
    assert snap.api_error_rate == pytest.approx(0.2)
    assert snap.api_errors_by_code == {"INVALID_ARGUMENT": 2}
    assert snap.erp_error_rate("sap") == pytest.approx(0.25)
    assert snap.erp_errors == {"sap": {"auth": 1}}
    assert snap.queue_depth == {"RB_DELIVER/rb-deliver-sap": 7}
    assert snap.dlq_size == 2
    assert snap.rejected_by_rule == {"lifecycle.transition": 3, "erp_constraint": 1}
    assert snap.erp_down == ["sap"]
    assert read_kpis(CollectorRegistry()).accuracy is None


@pytest.mark.parametrize(
    ("registry", "shown"),
    [
        (registry_with_traffic, "ERP not answering, delivery paused"),
        (CollectorRegistry, "No delivery paused"),
    ],
)
def test_the_panels_say_which_erp_is_down(registry: Callable[[], CollectorRegistry], shown: str) -> None:
    snap = read_kpis(registry())
    html = template_environment().get_template("kpis_panels.html").render(k=snap, charts=defaultdict(str))
    line = next(line for line in html.splitlines() if 'id="erp-down"' in line)
    assert shown in line
    assert ("sap" in line) == bool(snap.erp_down)


def test_history_and_sparkline() -> None:
    registry = registry_with_traffic()
    history = KpiHistory(points=3, registry=registry)
    for _ in range(5):
        history.sample()
    assert len(history.series["dlq_size"]) == 3  # a ring: the oldest points fall off
    assert [v for _, v in history.series["queue_depth"]] == [7.0, 7.0, 7.0]
    svg = sparkline([(0.0, 1.0), (1.0, 3.0), (2.0, 2.0)], width=100, height=20)
    assert svg.startswith("<svg") and "<polyline" in svg and 'points="1.0,19.0 50.0,1.0 99.0,10.0"' in svg
    assert "collecting" in sparkline([])
