"""InventoryService: levels the poller stored, read and watched per caller tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from returnbridge.api.v1 import inventory_pb2, inventory_pb2_grpc
from returnbridge.errors import ReturnBridgeError
from returnbridge.gateway.context import current_principal
from returnbridge.services.errors import abort
from returnbridge.sync.inventory import InventoryStore
from returnbridge.tenant_ids import TenantIds, default_ids

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
        try:
            tenant = current_principal().tenant_id
            return await self._store.get(
                tenant, request.sku, request.location.site, request.location.sub_location, request.target
            )
        except ReturnBridgeError as exc:
            await abort(context, exc)

    async def ListInventory(
        self, request: inventory_pb2.ListInventoryRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListInventoryResponse:
        try:
            levels, token = await self._store.list(
                current_principal().tenant_id,
                skus=set(request.skus),
                sites=set(request.sites),
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return inventory_pb2.ListInventoryResponse(levels=levels, next_page_token=token)
        except ReturnBridgeError as exc:
            await abort(context, exc)

    async def WatchInventory(
        self, request: inventory_pb2.WatchInventoryRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inventory_pb2.InventoryUpdate]:
        try:
            tenant = current_principal().tenant_id
        except ReturnBridgeError as exc:
            await abort(context, exc)
        async for update in self._store.watch(
            tenant,
            skus=set(request.skus),
            sites=set(request.sites),
            include_snapshot=request.include_snapshot,
        ):
            # KV revisions count every tenant's changes: shown as this tenant's opaque ids.
            update.sequence = self._ids.encode(tenant, INVENTORY_REVISION, update.sequence)
            yield update
