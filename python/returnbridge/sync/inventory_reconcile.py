"""Inventory reconciliation: the RMS-side projection (``rb_inventory``) against a full read of each ERP's stock.

The ERP is the book of record for stock: ``repair`` rebuilds the projection from what the ERP reports (writes
the ERP's level, drops levels the ERP no longer reports) and never writes to the ERP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.publisher import Publisher
from returnbridge.domain.erps import erp_enum
from returnbridge.errors import TranslationError
from returnbridge.mapping.ports import MapperSource
from returnbridge.observability.inbound_metrics import count_inventory_repaired, set_inventory_drift
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import PollTarget

log = logging.getLogger(__name__)

# A full read stops here: an ERP that never says "no more pages" must not keep the reconciler forever.
MAX_PAGES = 10_000
Location = tuple[str, str, str]  # sku, site, sub-location


@dataclass(frozen=True, slots=True)
class InventoryDrift:
    """One level that differs: ``missing_in_rms``, ``missing_in_erp`` or ``quantity_mismatch``."""

    kind: str
    target: str
    sku: str
    site: str
    sub_location: str
    rms_on_hand: str
    erp_on_hand: str

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "target": self.target,
            "sku": self.sku,
            "site": self.site,
            "sub_location": self.sub_location,
            "rms_on_hand": self.rms_on_hand,
            "erp_on_hand": self.erp_on_hand,
        }


@dataclass
class InventoryReport:
    tenant: str
    targets: list[str] = field(default_factory=list)
    erp_levels: int = 0
    rms_levels: int = 0
    unreadable: int = 0
    drifts: list[InventoryDrift] = field(default_factory=list)
    repaired: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for drift in self.drifts:
            out[drift.kind] = out.get(drift.kind, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "targets": self.targets,
            "erp_levels": self.erp_levels,
            "rms_levels": self.rms_levels,
            "unreadable": self.unreadable,
            "counts": self.counts(),
            "repaired": self.repaired,
            "drifts": [d.as_dict() for d in self.drifts],
        }


class InventoryReconciler:
    """Compares per target and per SKU and location; ``run(repair=True)`` rebuilds the projection from the ERP.

    Args:
        store: the inventory projection.
        mappers: the inbound mappings (the same the poller translates with).
        targets: the ERPs to read (connector, tenant, mapping).
        publisher: when given, a repaired level is also published on ``rb.inventory.<tenant>`` (watchers see it).
        page_size: records per ERP read.
    """

    def __init__(
        self,
        store: InventoryStore,
        mappers: MapperSource,
        targets: list[PollTarget],
        *,
        publisher: Publisher | None = None,
        page_size: int = 500,
    ) -> None:
        self._store = store
        self._mappers = mappers
        self._targets = targets
        self._publisher = publisher
        self._page_size = page_size

    async def run(self, *, repair: bool = False) -> list[InventoryReport]:
        """One report per tenant of the targets."""
        reports: dict[str, InventoryReport] = {}
        for target in self._targets:
            tenant = target.config.tenant
            report = reports.setdefault(tenant, InventoryReport(tenant))
            await self._reconcile(target, report, repair)
        return list(reports.values())

    async def _reconcile(self, target: PollTarget, report: InventoryReport, repair: bool) -> None:
        name, tenant = target.config.target, target.config.tenant
        report.targets.append(name)
        erp = await self._read_erp(target, report)
        rms = {_location(level): level for level in await self._store.levels(tenant, name)}
        report.erp_levels += len(erp)
        report.rms_levels += len(rms)
        found: list[InventoryDrift] = []
        for where, level in sorted(erp.items()):
            held = rms.get(where)
            if held is None:
                found.append(_drift("missing_in_rms", name, where, "", level.on_hand))
            elif _quantity(held.on_hand) != _quantity(level.on_hand):
                found.append(_drift("quantity_mismatch", name, where, held.on_hand, level.on_hand))
        for where, held in sorted(rms.items()):
            if where not in erp:
                found.append(_drift("missing_in_erp", name, where, held.on_hand, ""))
        report.drifts.extend(found)
        counts: dict[str, int] = {}
        for drift in found:
            counts[drift.kind] = counts.get(drift.kind, 0) + 1
        set_inventory_drift(name, counts)
        if not repair or not found:
            return
        for drift in found:
            where = (drift.sku, drift.site, drift.sub_location)
            if drift.kind == "missing_in_erp":
                await self._store.delete(rms[where])
            else:
                await self._store.put(erp[where])
                if self._publisher is not None:
                    await self._publisher.publish_event(
                        subjects.inventory(tenant), erp[where].SerializeToString()
                    )
        report.repaired += len(found)
        count_inventory_repaired(name, len(found))
        set_inventory_drift(name, {})

    async def _read_erp(
        self, target: PollTarget, report: InventoryReport
    ) -> dict[Location, inventory_pb2.InventoryLevel]:
        """The ERP's whole stock: ``read_inventory`` from no cursor until it has no more pages."""
        mapper = self._mappers.get(target.mapping("inventory"))
        levels: dict[Location, inventory_pb2.InventoryLevel] = {}
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            batch = await target.connector.read_inventory(cursor, self._page_size)
            for output in mapper.translate_batch(batch.records):
                if isinstance(output, TranslationError):
                    report.unreadable += 1
                    log.warning("inventory record of %s not mapped: %s", target.config.target, output)
                    continue
                level = inventory_pb2.InventoryLevel.FromString(output)
                level.tenant_id = target.config.tenant
                level.target = target.config.target
                level.source_erp = erp_enum(target.connector.erp)  # type: ignore[assignment]
                levels[_location(level)] = level
            if not batch.has_more or batch.cursor == cursor:
                break
            cursor = batch.cursor
        return levels


def _location(level: inventory_pb2.InventoryLevel) -> Location:
    return level.sku, level.location.site, level.location.sub_location


def _quantity(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _drift(kind: str, target: str, where: Location, rms: str, erp: str) -> InventoryDrift:
    return InventoryDrift(kind, target, where[0], where[1], where[2], rms, erp)
