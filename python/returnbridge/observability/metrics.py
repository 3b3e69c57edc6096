"""Prometheus metrics every component records through, backed by the default ``prometheus_client`` registry."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

__all__ = [
    "ALERTS",
    "API_CALLS",
    "BREAKER_OPEN",
    "DLQ_SIZE",
    "ERP_CALLS",
    "ERP_ERROR_CLASSES",
    "PROCESSING",
    "PROCESSING_OUTCOMES",
    "QUEUE_DEPTH",
    "REJECTED",
    "RESERVATIONS_PUBLISHED",
    "SYNC_LATENCY",
    "count_alert",
    "count_api_call",
    "count_erp_call",
    "count_processing",
    "count_rejection",
    "count_reservation_published",
    "observe_sync_latency",
    "scrape_registry",
    "set_breaker_open",
    "set_dlq_size",
    "set_queue_depth",
    "start_metrics_server",
    "stop_metrics_servers",
]

#: prometheus_client's multiprocess mode: every process writes its samples to files in this directory.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

PROCESSING_OUTCOMES: Final = frozenset(
    {"validated", "rejected", "delivered", "dead_lettered", "roundtrip_mismatch", "translation_failed"}
)
ERP_CALL_OUTCOMES: Final = frozenset({"ok", "error"})
ERP_ERROR_CLASSES: Final = frozenset({"transient", "permanent", "auth"})

# Accepted -> ERP confirmed spans fast REST posts (sub-second) up to retries with backoff over minutes.
_LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

SYNC_LATENCY: Final = Histogram(
    "rb_sync_latency_seconds",
    "Time from ACCEPTED at the gateway to the ERP confirming the document.",
    ["erp", "document_type"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
PROCESSING: Final = Counter(
    "rb_processing_total",
    "Documents by processing outcome (validated, rejected, delivered, dead_lettered, roundtrip_mismatch, "
    "translation_failed).",
    ["outcome"],
    registry=REGISTRY,
)
REJECTED: Final = Counter(
    "rb_rejected_total",
    "Submissions refused at submit, by the rule that refused them (one count per distinct rule per submission).",
    ["rule"],
    registry=REGISTRY,
)
ERP_CALLS: Final = Counter(
    "rb_erp_calls_total",
    "ERP calls by ERP, operation, outcome and error class.",
    ["erp", "operation", "outcome", "error_class"],
    registry=REGISTRY,
)
ERP_REQUESTS: Final = Counter(
    "rb_erp_requests_total",
    "HTTP requests the delivery workers sent to ERPs (lookups, creates, read-backs, CSRF fetches); divided by "
    'rb_processing_total{outcome="delivered"} it is the ERP calls per delivered document.',
    ["erp", "operation"],
    registry=REGISTRY,
)
API_CALLS: Final = Counter(
    "rb_api_calls_total",
    "gRPC calls by full method name and status code.",
    ["method", "code"],
    registry=REGISTRY,
)
RESERVATIONS_PUBLISHED: Final = Counter(
    "rb_reservations_published_total",
    "Versions reserved at submit whose gateway never published them (it stopped, or NATS was away), published by "
    "the reservation sweeper (delivery/orphans.py).",
    registry=REGISTRY,
)
QUEUE_DEPTH: Final = Gauge(
    "rb_queue_depth",
    "Pending messages per JetStream stream and consumer.",
    ["stream", "consumer"],
    registry=REGISTRY,
    # Under the ``serve`` supervisor (multiprocess mode) one process samples; its latest value is the truth.
    multiprocess_mode="mostrecent",
)
BREAKER_OPEN: Final = Gauge(
    "rb_erp_breaker_open",
    "1 while a target's ERP is taken as down and its delivery paused (delivery/breaker.py).",
    ["target"],
    registry=REGISTRY,
    # One breaker per worker process and target: any live process that paused the target shows. Live only: a
    # worker killed while its breaker was open would otherwise say "ERP down" (and page) until the files go.
    multiprocess_mode="livemax",
)
DLQ_SIZE: Final = Gauge(
    "rb_dlq_size",
    "Messages held in the dead-letter stream.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)

_servers_lock = threading.Lock()
_servers: list[object] = []


def _require_label(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"metric label {name!r} must not be empty")


def observe_sync_latency(erp: str, document_type: str, seconds: float) -> None:
    """Record accepted -> ERP confirmed latency for one document.

    Raises:
        ValueError: empty labels or a negative duration.
    """
    _require_label("erp", erp)
    _require_label("document_type", document_type)
    if seconds < 0:
        raise ValueError(f"sync latency must not be negative, got {seconds}")
    SYNC_LATENCY.labels(erp=erp, document_type=document_type).observe(seconds)


def count_processing(outcome: str) -> None:
    """Count one document processing outcome; ``outcome`` must be one of ``PROCESSING_OUTCOMES``."""
    if outcome not in PROCESSING_OUTCOMES:
        raise ValueError(
            f"unknown processing outcome {outcome!r}; expected one of {sorted(PROCESSING_OUTCOMES)}"
        )
    PROCESSING.labels(outcome=outcome).inc()


def count_reservation_published() -> None:
    RESERVATIONS_PUBLISHED.inc()


def count_rejection(rules: Iterable[str]) -> None:
    """Count one refused submission: ``rb_processing_total{outcome="rejected"}`` and each distinct rule once."""
    PROCESSING.labels(outcome="rejected").inc()
    for rule in sorted(set(rules)) or ["unclassified"]:
        REJECTED.labels(rule=rule or "validation").inc()


def count_erp_call(erp: str, operation: str, outcome: str, error_class: str = "") -> None:
    """Count one ERP call; errors carry their class (transient, permanent, auth), successes carry none."""
    _require_label("erp", erp)
    _require_label("operation", operation)
    if outcome not in ERP_CALL_OUTCOMES:
        raise ValueError(f"unknown ERP call outcome {outcome!r}; expected 'ok' or 'error'")
    if outcome == "ok" and error_class:
        raise ValueError("a successful ERP call has no error class")
    if outcome == "error" and error_class not in ERP_ERROR_CLASSES:
        raise ValueError(
            f"unknown ERP error class {error_class!r}; expected one of {sorted(ERP_ERROR_CLASSES)}"
        )
    ERP_CALLS.labels(erp=erp, operation=operation, outcome=outcome, error_class=error_class).inc()


def count_erp_requests(erp: str, operation: str, requests: int) -> None:
    """Add the HTTP requests one connector call sent (0 for transports without HTTP, e.g. RFC)."""
    _require_label("erp", erp)
    _require_label("operation", operation)
    if requests < 0:
        raise ValueError("requests must be >= 0")
    ERP_REQUESTS.labels(erp=erp, operation=operation).inc(requests)


def count_api_call(method: str, code: str) -> None:
    """Count one gRPC call by full method (``/pkg.Service/Method``) and status code name (``OK``, ``NOT_FOUND``)."""
    _require_label("method", method)
    _require_label("code", code)
    API_CALLS.labels(method=method, code=code).inc()


def set_queue_depth(stream: str, consumer: str, depth: int) -> None:
    """Set the number of pending messages for one stream consumer."""
    _require_label("stream", stream)
    _require_label("consumer", consumer)
    if depth < 0:
        raise ValueError(f"queue depth must not be negative, got {depth}")
    QUEUE_DEPTH.labels(stream=stream, consumer=consumer).set(depth)


def set_breaker_open(target: str, is_open: bool) -> None:
    """Report whether ``target``'s circuit breaker is open."""
    _require_label("target", target)
    BREAKER_OPEN.labels(target=target).set(1 if is_open else 0)


def set_dlq_size(size: int) -> None:
    """Set the number of messages in the dead-letter stream."""
    if size < 0:
        raise ValueError(f"DLQ size must not be negative, got {size}")
    DLQ_SIZE.set(size)


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` and the console read: this process's registry, or, when ``PROMETHEUS_MULTIPROC_DIR`` is
    set (the ``serve`` supervisor's children write there), the sum over every process of the deployment."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def start_metrics_server(host: str, port: int) -> int:
    """Serve ``/metrics`` over HTTP in a daemon thread and return the bound port (``port=0`` picks one)."""
    server, _thread = start_http_server(port, addr=host, registry=scrape_registry())
    with _servers_lock:
        _servers.append(server)
    return int(server.server_port)


def stop_metrics_servers() -> None:
    """Shut down every exposition server this process started (tests and graceful shutdown)."""
    with _servers_lock:
        servers, _servers[:] = list(_servers), []
    for server in servers:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


ALERT_OUTCOMES: Final = frozenset({"sent", "deduplicated", "rate_limited", "failed", "resolved"})
ALERTS: Final = Counter(
    "rb_alerts_total",
    "Alert attempts by kind and outcome (sent, deduplicated, rate_limited, failed, resolved).",
    ["kind", "outcome"],
    registry=REGISTRY,
)


def count_alert(kind: str, outcome: str) -> None:
    """Count one alert attempt; lets dashboards see alerts swallowed by dedup or the rate limit."""
    _require_label("kind", kind)
    if outcome not in ALERT_OUTCOMES:
        raise ValueError(f"unknown alert outcome {outcome!r}; expected one of {sorted(ALERT_OUTCOMES)}")
    ALERTS.labels(kind=kind, outcome=outcome).inc()
