"""Typed helpers over the v1 stubs: submit, status, watch, and submit-and-watch until every document settles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any, Final

import grpc

from returnbridge.api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    returns_pb2,
    returns_pb2_grpc,
    sync_pb2,
    translation_pb2_grpc,
)
from returnbridge.client.channel import open_channel

__all__ = ["FINAL_STATES", "ReturnBridgeClient"]

#: A document in one of these states will not change again without an operator (replay) or a new version.
FINAL_STATES: Final = frozenset(
    {sync_pb2.SYNC_STATE_DELIVERED, sync_pb2.SYNC_STATE_DEAD_LETTERED, sync_pb2.SYNC_STATE_DISCARDED}
)


class ReturnBridgeClient:
    """One channel and the four service stubs; ``async with ReturnBridgeClient.connect(...)`` closes it.

    The raw stubs stay available (``returns``, ``inventory``, ``translation``, ``admin``) for anything the
    helpers do not cover.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.returns = returns_pb2_grpc.ReturnsServiceStub(channel)
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        self.translation = translation_pb2_grpc.TranslationServiceStub(channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)

    @classmethod
    def connect(cls, target: str, *, token: str | None = None, **options: Any) -> ReturnBridgeClient:
        """Open a channel with :func:`returnbridge.client.open_channel` (same keyword options)."""
        return cls(open_channel(target, token=token, **options))

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> ReturnBridgeClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ returns
    async def submit(
        self, order: returns_pb2.ReturnOrder, *, client_reference: str = ""
    ) -> returns_pb2.SubmitReturnResponse:
        """Submit one return event; ACCEPTED or DUPLICATE (a resubmission is safe: idempotency key)."""
        request = returns_pb2.SubmitReturnRequest(return_order=order, client_reference=client_reference)
        response: returns_pb2.SubmitReturnResponse = await self.returns.SubmitReturn(request)
        return response

    async def status(self, return_id: str) -> sync_pb2.ReturnSyncStatus:
        """Sync status of one return of the caller's tenant (NOT_FOUND for an unknown or foreign return)."""
        status: sync_pb2.ReturnSyncStatus = await self.returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id=return_id)
        )
        return status

    async def status_by_rma(self, rma_number: str) -> sync_pb2.ReturnSyncStatus:
        """Sync status of the caller's return with this RMA number (NOT_FOUND when there is none)."""
        status: sync_pb2.ReturnSyncStatus = await self.returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(rma_number=rma_number)
        )
        return status

    async def watch(
        self,
        return_ids: Iterable[str] = (),
        *,
        from_beginning: bool = False,
        after_sequence: int = 0,
    ) -> AsyncIterator[sync_pb2.SyncEvent]:
        """Sync events of the caller's tenant, optionally only some returns; runs until the caller stops."""
        request = returns_pb2.WatchSyncEventsRequest(
            return_ids=list(return_ids), from_beginning=from_beginning, after_sequence=after_sequence
        )
        call = self.returns.WatchSyncEvents(request)
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()

    async def submit_and_watch(
        self, order: returns_pb2.ReturnOrder, *, client_reference: str = ""
    ) -> AsyncIterator[sync_pb2.SyncEvent | returns_pb2.SubmitReturnResponse]:
        """Submit, yield the acceptance, then the version's sync events until every document is final.

        Final means delivered, dead-lettered or discarded. Events are replayed from the retained stream, so
        none is missed between the acceptance and the start of the watch.
        """
        accepted = await self.submit(order, client_reference=client_reference)
        yield accepted
        version = accepted.version
        snapshot = await self.status(accepted.return_id)
        latest = {d.step: d.state for d in snapshot.documents if d.version == version}
        if not latest:
            return  # an event that creates no ERP document
        # Replayed from the start even when the snapshot is already final, so the caller always sees the
        # documents' final events (ids, attempts), however fast the ERP was.
        async for event in self.watch([accepted.return_id], from_beginning=True):
            if event.version != version:
                continue
            latest[event.step] = event.state
            yield event
            if all(state in FINAL_STATES for state in latest.values()):
                return

    # ------------------------------------------------------------------ reads used by the console and the CLI
    async def dead_letters(
        self, *, erp: int = 0, return_id: str = "", include_resolved: bool = False, page_size: int = 100
    ) -> list[admin_pb2.DeadLetter]:
        """Every dead letter matching the filters (all pages)."""
        found: list[admin_pb2.DeadLetter] = []
        token = ""
        while True:
            page: admin_pb2.ListDeadLettersResponse = await self.admin.ListDeadLetters(
                admin_pb2.ListDeadLettersRequest(
                    erp=erp,  # type: ignore[arg-type]
                    return_id=return_id,
                    include_resolved=include_resolved,
                    page_size=page_size,
                    page_token=token,
                )
            )
            found.extend(page.dead_letters)
            token = page.next_page_token
            if not token:
                return found

    async def inventory_levels(
        self, *, skus: Iterable[str] = (), sites: Iterable[str] = (), page_size: int = 500
    ) -> list[inventory_pb2.InventoryLevel]:
        """Every stored inventory level of the caller's tenant matching the filters (all pages)."""
        found: list[inventory_pb2.InventoryLevel] = []
        token = ""
        while True:
            page: inventory_pb2.ListInventoryResponse = await self.inventory.ListInventory(
                inventory_pb2.ListInventoryRequest(
                    skus=list(skus), sites=list(sites), page_size=page_size, page_token=token
                )
            )
            found.extend(page.levels)
            token = page.next_page_token
            if not token:
                return found

    async def audit_entries(self, object_id: str, *, page_size: int = 200) -> list[admin_pb2.AuditEntry]:
        """Audit entries about one object (``<return>:<version>`` or a dead-letter id), oldest first."""
        found: list[admin_pb2.AuditEntry] = []
        token = ""
        while True:
            page: admin_pb2.QueryAuditResponse = await self.admin.QueryAudit(
                admin_pb2.QueryAuditRequest(object_id=object_id, page_size=page_size, page_token=token)
            )
            found.extend(page.entries)
            token = page.next_page_token
            if not token:
                return found
