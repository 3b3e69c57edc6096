"""Inventory levels in KV ``rb_inventory`` (key ``tenant.sku.site.sub.target``): store, read, list and watch."""

from __future__ import annotations

from collections.abc import AsyncIterator

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import keys_matching
from returnbridge.errors import FieldViolation, NotFoundError, ValidationError

MAX_PAGE = 1000
DEFAULT_PAGE = 100


def _parts(key: str) -> tuple[str, str, str, str, str]:
    tenant, sku, site, sub, target = (subjects.kv_untoken(p) for p in key.split("."))
    return tenant, sku, site, "" if sub == "_" else sub, target


class InventoryStore:
    """Args: kv: the ``rb_inventory`` bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @staticmethod
    def key_of(level: inventory_pb2.InventoryLevel) -> str:
        return subjects.inventory_key(
            level.tenant_id, level.sku, level.location.site, level.location.sub_location, level.target
        )

    async def put(self, level: inventory_pb2.InventoryLevel) -> int:
        if not level.tenant_id or not level.sku or not level.location.site:
            raise ValidationError("inventory level needs tenant_id, sku and location.site")
        return await self.kv.put(self.key_of(level), level.SerializeToString())

    async def delete(self, level: inventory_pb2.InventoryLevel) -> None:
        """Drop a level (reconciliation's repair: the ERP no longer reports the SKU at that location)."""
        await self.kv.delete(self.key_of(level))

    async def levels(self, tenant: str, target: str) -> list[inventory_pb2.InventoryLevel]:
        """Every stored level of one ERP target of the tenant (reconciliation's RMS side)."""
        out = []
        for key in sorted(await keys_matching(self.kv, subjects.inventory_tenant_filter(tenant))):
            if _parts(key)[4] != target:
                continue
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            if entry.value:
                out.append(inventory_pb2.InventoryLevel.FromString(entry.value))
        return out

    async def get(
        self, tenant: str, sku: str, site: str, sub_location: str = "", target: str = ""
    ) -> inventory_pb2.InventoryLevel:
        """The level of one SKU at one location; ``target`` picks the ERP when several report it.

        Raises:
            NotFoundError: no ERP reported it.
            ValidationError: several ERPs report it and ``target`` does not say which.
        """
        if not sku or not site:
            raise ValidationError("sku and location.site are required")
        if target:
            keys = [subjects.inventory_key(tenant, sku, site, sub_location, target)]
        else:
            keys = await keys_matching(
                self.kv, subjects.inventory_location_filter(tenant, sku, site, sub_location)
            )
        levels = []
        for key in keys:
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            if entry.value:
                levels.append(inventory_pb2.InventoryLevel.FromString(entry.value))
        if not levels:
            raise NotFoundError(f"no inventory for {sku!r} at {site!r}")
        if len(levels) > 1:
            names = ", ".join(sorted(level.target for level in levels))
            raise ValidationError(
                f"{sku!r} at {site!r} is reported by several ERP targets ({names})",
                [FieldViolation("target", f"name one of: {names}")],
            )
        return levels[0]

    async def list(
        self, tenant: str, *, skus: set[str], sites: set[str], page_size: int = 0, page_token: str = ""
    ) -> tuple[list[inventory_pb2.InventoryLevel], str]:
        """Sorted by key; the page token is the last key returned."""
        if page_size < 0 or page_size > MAX_PAGE:
            raise ValidationError(f"page_size must be between 0 and {MAX_PAGE}")
        page_size = page_size or DEFAULT_PAGE
        keys = sorted(await keys_matching(self.kv, subjects.inventory_tenant_filter(tenant)))
        levels: list[inventory_pb2.InventoryLevel] = []
        last = ""
        for key in keys:
            if page_token and key <= page_token:
                continue
            _, sku, site, _, _ = _parts(key)
            if (skus and sku not in skus) or (sites and site not in sites):
                continue
            if len(levels) == page_size:
                return levels, last
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                continue
            if entry.value:
                levels.append(inventory_pb2.InventoryLevel.FromString(entry.value))
                last = key
        return levels, ""

    async def watch(
        self, tenant: str, *, skus: set[str], sites: set[str], include_snapshot: bool
    ) -> AsyncIterator[inventory_pb2.InventoryUpdate]:
        """Current levels first (when asked), then every change, until the caller stops iterating."""
        watcher = await self.kv.watch(subjects.inventory_tenant_filter(tenant))
        snapshot_done = False
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=30.0)
                except TimeoutError:
                    continue
                if entry is None:
                    snapshot_done = True
                    continue
                if not snapshot_done and not include_snapshot:
                    continue
                if not entry.value or entry.operation is not None:
                    continue
                _, sku, site, _, _ = _parts(entry.key)
                if (skus and sku not in skus) or (sites and site not in sites):
                    continue
                yield inventory_pb2.InventoryUpdate(
                    sequence=entry.revision or 0, level=inventory_pb2.InventoryLevel.FromString(entry.value)
                )
        finally:
            await watcher.stop()
