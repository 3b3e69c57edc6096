"""Metrics of the ERP -> RMS direction: inventory drift found by reconciliation, inbound records dead-lettered."""

from __future__ import annotations

from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge

__all__ = [
    "INBOUND_DEAD_LETTERED",
    "INVENTORY_DRIFT",
    "INVENTORY_REPAIRED",
    "count_inbound_dead_letter",
    "count_inventory_repaired",
    "set_inventory_drift",
]

DRIFT_KINDS: Final = ("missing_in_rms", "missing_in_erp", "quantity_mismatch")

INVENTORY_DRIFT: Final = Gauge(
    "rb_inventory_drift",
    "Levels the last inventory reconciliation found different between the RMS projection and the ERP, by kind.",
    ["target", "kind"],
    registry=REGISTRY,
)
INVENTORY_REPAIRED: Final = Counter(
    "rb_inventory_repaired_total",
    "Inventory levels rebuilt from the ERP by reconciliation --repair.",
    ["target"],
    registry=REGISTRY,
)
INBOUND_DEAD_LETTERED: Final = Counter(
    "rb_inbound_dead_lettered_total",
    "Inbound ERP records refused after translation and dead-lettered on RB_INBOUND_DLQ, by kind and reason.",
    ["target", "kind", "reason"],
    registry=REGISTRY,
)


def set_inventory_drift(target: str, counts: dict[str, int]) -> None:
    for kind in DRIFT_KINDS:
        INVENTORY_DRIFT.labels(target=target, kind=kind).set(counts.get(kind, 0))


def count_inventory_repaired(target: str, levels: int) -> None:
    INVENTORY_REPAIRED.labels(target=target).inc(levels)


def count_inbound_dead_letter(target: str, kind: str, reason: str) -> None:
    INBOUND_DEAD_LETTERED.labels(target=target, kind=kind, reason=reason).inc()
