"""Metrics API: label validation, counter deltas, and the HTTP exposition server on port 0."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

from returnbridge.observability import metrics


def _value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def server_port() -> Iterator[int]:
    port = metrics.start_metrics_server("127.0.0.1", 0)
    try:
        yield port
    finally:
        metrics.stop_metrics_servers()


def test_counters_and_gauges_record_deltas() -> None:
    before = _value("rb_processing_total", {"outcome": "validated"})
    metrics.count_processing("validated")
    metrics.count_processing("validated")
    assert _value("rb_processing_total", {"outcome": "validated"}) == before + 2

    labels = {"erp": "netsuite", "operation": "create", "outcome": "error", "error_class": "transient"}
    before = _value("rb_erp_calls_total", labels)
    metrics.count_erp_call("netsuite", "create", "error", "transient")
    assert _value("rb_erp_calls_total", labels) == before + 1

    ok = {"erp": "sap", "operation": "read_status", "outcome": "ok", "error_class": ""}
    before = _value("rb_erp_calls_total", ok)
    metrics.count_erp_call("sap", "read_status", "ok")
    assert _value("rb_erp_calls_total", ok) == before + 1

    api = {"method": "/returnbridge.api.v1.ReturnsService/SubmitReturn", "code": "INVALID_ARGUMENT"}
    before = _value("rb_api_calls_total", api)
    metrics.count_api_call(api["method"], api["code"])
    assert _value("rb_api_calls_total", api) == before + 1

    metrics.set_queue_depth("RB_DELIVER", "deliver-netsuite", 17)
    assert _value("rb_queue_depth", {"stream": "RB_DELIVER", "consumer": "deliver-netsuite"}) == 17
    metrics.set_dlq_size(3)
    assert _value("rb_dlq_size") == 3


def test_sync_latency_histogram_buckets() -> None:
    labels = {"erp": "oracle_fusion", "document_type": "receivablesCreditMemos"}
    count_before = _value("rb_sync_latency_seconds_count", labels)
    le_1 = _value("rb_sync_latency_seconds_bucket", {**labels, "le": "1.0"})
    le_10 = _value("rb_sync_latency_seconds_bucket", {**labels, "le": "10.0"})
    metrics.observe_sync_latency("oracle_fusion", "receivablesCreditMemos", 0.7)
    metrics.observe_sync_latency("oracle_fusion", "receivablesCreditMemos", 7.5)
    assert _value("rb_sync_latency_seconds_count", labels) == count_before + 2
    assert _value("rb_sync_latency_seconds_bucket", {**labels, "le": "1.0"}) == le_1 + 1
    assert _value("rb_sync_latency_seconds_bucket", {**labels, "le": "10.0"}) == le_10 + 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.count_processing("ok"), "unknown processing outcome"),
        (lambda: metrics.count_erp_call("sap", "create", "maybe"), "unknown ERP call outcome"),
        (lambda: metrics.count_erp_call("sap", "create", "error", "flaky"), "unknown ERP error class"),
        (lambda: metrics.count_erp_call("sap", "create", "error"), "unknown ERP error class"),
        (lambda: metrics.count_erp_call("sap", "create", "ok", "transient"), "no error class"),
        (lambda: metrics.count_erp_call("", "create", "ok"), "'erp' must not be empty"),
        (lambda: metrics.count_api_call("/a/B", ""), "'code' must not be empty"),
        (lambda: metrics.observe_sync_latency("sap", "A_CustomerReturn", -1.0), "must not be negative"),
        (lambda: metrics.set_queue_depth("RB_DELIVER", "c", -1), "must not be negative"),
        (lambda: metrics.set_dlq_size(-5), "must not be negative"),
        (lambda: metrics.count_alert("backlog", "lost"), "unknown alert outcome"),
    ],
)
def test_bad_metric_input_is_refused(call: Callable[[], None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_exposition_server_serves_our_metrics(server_port: int) -> None:
    assert server_port > 0
    metrics.count_processing("dead_lettered")
    with urllib.request.urlopen(f"http://127.0.0.1:{server_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for name in (
        "rb_sync_latency_seconds",
        "rb_processing_total",
        "rb_erp_calls_total",
        "rb_api_calls_total",
        "rb_queue_depth",
        "rb_dlq_size",
    ):
        assert f"# TYPE {name}" in text
    assert 'rb_processing_total{outcome="dead_lettered"}' in text


def test_a_rejection_counts_once_as_rejected_and_once_per_distinct_rule() -> None:
    def value(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("rb_processing_total", {"outcome": "rejected"}),
        value("rb_rejected_total", {"rule": "contract.enum"}),
        value("rb_rejected_total", {"rule": "text.control_character"}),
        value("rb_rejected_total", {"rule": "validation"}),
    )
    metrics.count_rejection(["contract.enum", "contract.enum", "text.control_character", ""])
    after = (
        value("rb_processing_total", {"outcome": "rejected"}),
        value("rb_rejected_total", {"rule": "contract.enum"}),
        value("rb_rejected_total", {"rule": "text.control_character"}),
        value("rb_rejected_total", {"rule": "validation"}),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 1]


def test_a_dead_workers_open_breaker_no_longer_shows(tmp_path: Path) -> None:
    """Under the supervisor each process writes its samples to files; a worker killed while its breaker was open
    must not keep the target "down" once the supervisor marked it dead (it restarts the worker)."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    worker = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from returnbridge.observability.metrics import set_breaker_open; "
            "set_breaker_open('sap', True); print(os.getpid())",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    def open_targets() -> dict[str, float]:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call]
        return {
            s.labels["target"]: s.value
            for family in registry.collect()
            for s in family.samples
            if s.name == "rb_erp_breaker_open"
        }

    assert open_targets() == {"sap": 1.0}  # the supervisor has not reaped it yet
    multiprocess.mark_process_dead(int(worker.stdout), str(tmp_path))  # type: ignore[no-untyped-call]
    assert open_targets() == {}
