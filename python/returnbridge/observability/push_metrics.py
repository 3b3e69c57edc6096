"""Metrics of the ERP -> RMS push path: notifications accepted or refused, change -> visible latency."""

from __future__ import annotations

from typing import Final

from prometheus_client import REGISTRY, Counter, Histogram

__all__ = [
    "INBOUND_LATENCY",
    "INBOUND_NOTIFICATIONS",
    "PATHS",
    "count_notification",
    "observe_inbound_latency",
]

PATHS: Final = frozenset({"push", "poll"})

INBOUND_NOTIFICATIONS: Final = Counter(
    "rb_inbound_notifications_total",
    "ERP notifications at the webhook receiver by ERP and outcome (accepted, or refused with its reason: "
    "too_large, missing_signature, malformed, unknown_key, stale, future, bad_signature, replayed, "
    "duplicate, bad_payload, unsupported_event, unknown_target).",
    ["erp", "outcome", "reason"],
    registry=REGISTRY,
)
# A push should land well under a second; a poll within one interval (2 s by default) plus a second.
INBOUND_LATENCY: Final = Histogram(
    "rb_inbound_latency_seconds",
    "ERP-side change -> visible to WatchInventory / WatchSyncEvents, by path (push: woken by a notification, "
    "from its event time; poll: a scheduled tick, from the record's own change time where the ERP gives one).",
    ["erp", "kind", "path"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)


def count_notification(erp: str, outcome: str, reason: str = "") -> None:
    """Count one notification; ``outcome`` is ``accepted`` or ``refused`` (then ``reason`` says why)."""
    if outcome not in ("accepted", "refused"):
        raise ValueError(f"unknown notification outcome {outcome!r}")
    INBOUND_NOTIFICATIONS.labels(erp=erp or "unknown", outcome=outcome, reason=reason).inc()


def observe_inbound_latency(erp: str, kind: str, path: str, seconds: float) -> None:
    """Record change -> visible for one batch; a negative span (clock skew between hosts) counts as 0."""
    if path not in PATHS:
        raise ValueError(f"unknown inbound path {path!r}; expected push or poll")
    INBOUND_LATENCY.labels(erp=erp, kind=kind, path=path).observe(max(0.0, seconds))
