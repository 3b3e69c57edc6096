"""InventoryService: levels the poller stored, read and watched per caller tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from returnbridge.api.v1 import inventory_pb2, inventory_pb2_grpc
from returnbridge.domain.context import current_principal
from returnbridge.domain.tenant_ids import TenantIds, default_ids
from returnbridge.sync.inventory import InventoryStore

#: Kind of opaque id (tenant_ids) for inventory update sequences.
INVENTORY_REVISION = "inventory_revision"


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    """Args: store: the inventory store over ``rb_inventory``; ids: per-tenant opaque ids."""

    def __init__(self, store: InventoryStore, *, ids: TenantIds | None = None) -> None:
        self._store = store
        self._ids = ids or default_ids()

    async def GetInventory(
        self, request: inventory_pb2.GetInventoryRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.InventoryLevel:
        tenant = current_principal().tenant_id
        return await self._store.get(
            tenant, request.sku, request.location.site, request.location.sub_location, request.target
        )

    async def ListInventory(
        self, request: inventory_pb2.ListInventoryRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListInventoryResponse:
        levels, token = await self._store.list(
            current_principal().tenant_id,
            skus=set(request.skus),
            sites=set(request.sites),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return inventory_pb2.ListInventoryResponse(levels=levels, next_page_token=token)

    async def WatchInventory(
        self, request: inventory_pb2.WatchInventoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inventory_pb2.InventoryUpdate]:
        tenant = current_principal().tenant_id
        async for update in self._store.watch(
            tenant,
            skus=set(request.skus),
            sites=set(request.sites),
            include_snapshot=request.include_snapshot,
        ):
            # KV revisions count every tenant's changes: shown as this tenant's opaque ids.
            update.sequence = self._ids.encode(tenant, INVENTORY_REVISION, update.sequence)
            yield update
