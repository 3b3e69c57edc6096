"""Operability: Prometheus metrics and alerting (webhook + NATS)."""

from returnbridge.observability.alerts import AlertConfig, Alerter
from returnbridge.observability.metrics import (
    count_api_call,
    count_erp_call,
    count_processing,
    observe_sync_latency,
    set_dlq_size,
    set_queue_depth,
    start_metrics_server,
)
from returnbridge.observability.monitor import MonitorConfig, QueueMonitor

__all__ = [
    "AlertConfig",
    "Alerter",
    "MonitorConfig",
    "QueueMonitor",
    "count_api_call",
    "count_erp_call",
    "count_processing",
    "observe_sync_latency",
    "set_dlq_size",
    "set_queue_depth",
    "start_metrics_server",
]
