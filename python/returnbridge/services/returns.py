"""ReturnsService: submit (single and bulk), sync status, and the resumable sync-event stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError as JsNotFoundError

from returnbridge.api.v1 import common_pb2, returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.bus import subjects
from returnbridge.bus.consumer import ordered_config
from returnbridge.domain.context import current_principal
from returnbridge.domain.tenant_ids import TenantIds, default_ids
from returnbridge.errors import FieldViolation, NotFoundError, ValidationError
from returnbridge.services.errors import RefusedItem, item_error, item_result
from returnbridge.services.intake import Intake
from returnbridge.sync.status import SyncStateStore, to_proto

# Kinds of opaque ids (tenant_ids): sync events and the delivery messages a submission stored.
EVENT_SEQUENCE = "event_sequence"
DELIVERY_SEQUENCE = "delivery_sequence"


class ReturnsServicer(returns_pb2_grpc.ReturnsServiceServicer):
    """Needs an authenticated principal in context (the gateway's auth interceptor sets it).

    Args:
        intake: the submit path.
        status: sync state store.
        js: JetStream context for the event stream watch.
        bulk_in_flight: submissions of one bulk stream processed concurrently.
        ids: per-tenant opaque ids for the stream sequences a caller sees (never raw shared-stream positions).
    """

    def __init__(
        self,
        intake: Intake,
        status: SyncStateStore,
        js: JetStreamContext,
        *,
        bulk_in_flight: int = 1000,
        ids: TenantIds | None = None,
    ) -> None:
        self._ids = ids or default_ids()
        self._intake = intake
        self._status = status
        self._js = js
        self._bulk_in_flight = bulk_in_flight

    async def SubmitReturn(
        self, request: returns_pb2.SubmitReturnRequest, context: grpc.aio.ServicerContext
    ) -> returns_pb2.SubmitReturnResponse:
        return self._hide_sequence(await self._intake.submit(request))

    def _hide_sequence(self, response: returns_pb2.SubmitReturnResponse) -> returns_pb2.SubmitReturnResponse:
        response.stream_sequence = self._ids.encode(
            response.tenant_id, DELIVERY_SEQUENCE, response.stream_sequence
        )
        return response

    async def SubmitReturns(
        self,
        request_iterator: AsyncIterator[returns_pb2.SubmitReturnRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[returns_pb2.SubmitReturnResult]:
        """Keeps up to ``bulk_in_flight`` submissions going; results stream back as each completes.

        Events of one return are submitted in stream order, one after the other (the lifecycle admits a
        return's versions in order only); different returns go concurrently. An item the gateway refused
        (``RefusedItem``: over a bound, or undecodable) is answered at once with its error, and the stream goes on.
        """
        results: asyncio.Queue[returns_pb2.SubmitReturnResult | None] = asyncio.Queue()
        slots = asyncio.Semaphore(self._bulk_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        # Per return: the task of its latest event in this stream.
        latest: dict[str, asyncio.Task[None]] = {}

        async def one(request: returns_pb2.SubmitReturnRequest, before: asyncio.Task[None] | None) -> None:
            result = returns_pb2.SubmitReturnResult(
                client_reference=request.client_reference,
                return_id=request.return_order.return_id,
                version=request.return_order.version,
            )
            try:
                if before is not None:
                    await asyncio.wait([before])
                outcome = await item_result(self._intake.submit(request))
            finally:
                slots.release()
                if latest.get(request.return_order.return_id) is asyncio.current_task():
                    del latest[request.return_order.return_id]
            if isinstance(outcome, common_pb2.ItemError):
                result.error.CopyFrom(outcome)
            else:
                result.accepted.CopyFrom(self._hide_sequence(outcome))
            await results.put(result)

        async def feed() -> None:
            try:
                async for request in request_iterator:
                    if isinstance(request, RefusedItem):
                        await results.put(_refused_result(request))
                        continue
                    await slots.acquire()
                    return_id = request.return_order.return_id
                    task = asyncio.create_task(one(request, latest.get(return_id)))
                    latest[return_id] = task
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                while tasks:
                    await asyncio.gather(*list(tasks))
            finally:
                await results.put(None)

        feeder = asyncio.create_task(feed())
        try:
            while (result := await results.get()) is not None:
                yield result
            await feeder
        finally:
            feeder.cancel()
            for task in list(tasks):
                task.cancel()

    async def GetReturnStatus(
        self, request: returns_pb2.GetReturnStatusRequest, context: grpc.aio.ServicerContext
    ) -> sync_pb2.ReturnSyncStatus:
        if bool(request.return_id) == bool(request.rma_number):
            raise ValidationError(
                "name the return by return_id or by rma_number",
                [FieldViolation("return_id", "exactly one of return_id and rma_number is required")],
            )
        tenant = current_principal().tenant_id
        return_id = request.return_id or await self._status.find_by_rma(tenant, request.rma_number)
        record = await self._status.get(tenant, return_id) if return_id else None
        if record is None or record["tenant_id"] != tenant:
            what = f"return {request.return_id!r}" if request.return_id else f"RMA {request.rma_number!r}"
            raise NotFoundError(f"{what} not found")
        return to_proto(record)

    async def WatchSyncEvents(
        self, request: returns_pb2.WatchSyncEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sync_pb2.SyncEvent]:
        """Ordered ephemeral consumer on ``rb.status.<caller tenant>``; events carry their stream sequence."""
        tenant = current_principal().tenant_id
        subject = subjects.status(tenant)
        after = self._ids.decode(tenant, EVENT_SEQUENCE, request.after_sequence)
        if after is None:
            raise ValidationError(
                "after_sequence is not a sequence this stream handed out",
                [FieldViolation("after_sequence", "pass a SyncEvent.sequence you received, or 0")],
            )
        policy, config = ordered_config(after, request.from_beginning)
        return_ids = set(request.return_ids)
        erps = set(request.erps)
        states = set(request.states)
        try:
            sub = await self._js.subscribe(
                subject,
                stream=subjects.EVENTS_STREAM,
                ordered_consumer=True,
                deliver_policy=policy,
                config=config,
                idle_heartbeat=2.0,
            )
        except JsNotFoundError:
            raise NotFoundError("event stream not available") from None
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=30.0)
                except TimeoutError:
                    continue
                event = sync_pb2.SyncEvent.FromString(msg.data)
                if return_ids and event.return_id not in return_ids:
                    continue
                if erps and event.erp not in erps:
                    continue
                if states and event.state not in states:
                    continue
                event.sequence = self._ids.encode(tenant, EVENT_SEQUENCE, msg.metadata.sequence.stream)
                yield event
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def _refused_result(refused: RefusedItem) -> returns_pb2.SubmitReturnResult:
    """The result of an item refused at the edge: its error, and the item's references unless they are what was
    refused (a violation never echoes the value)."""
    result = returns_pb2.SubmitReturnResult()
    result.error.CopyFrom(item_error(refused.error))
    request = refused.request
    if isinstance(request, returns_pb2.SubmitReturnRequest):
        fields = [v.field for v in refused.error.violations]
        if "client_reference" not in fields:
            result.client_reference = request.client_reference
        if not any(f == "return_order" or f.startswith(("return_order.", "return_order[")) for f in fields):
            result.return_id = request.return_order.return_id
            result.version = request.return_order.version
    return result
