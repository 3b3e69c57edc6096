"""Last line of defence: dead-letter whatever still reaches JetStream's MaxDeliver, from the server's advisory.

Workers give up long before MaxDeliver on their own budgets; this catches what they could not (a bug, a worker
version without the budget, a DLQ that was down when they tried). Every worker process listens; the DLQ copy is
deduplicated by stream sequence, so several listeners store it once.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError as JsNotFoundError

from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.headers import H_STEPS
from returnbridge.delivery.outcome import mark_dead_lettered
from returnbridge.delivery.ports import AlerterLike
from returnbridge.domain.steps import decode_steps
from returnbridge.observability.metrics import count_processing
from returnbridge.sync.status import SyncStateStore

__all__ = ["MaxDeliveriesListener"]

log = logging.getLogger(__name__)


class MaxDeliveriesListener:
    """Subscribes to ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.RB_DELIVER.*`` and dead-letters each message."""

    def __init__(
        self,
        nc: NatsClient,
        dead_letters: DeadLetterStore,
        status: SyncStateStore,
        *,
        alerter: AlerterLike | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._dlq = dead_letters
        self._status = status
        self._alerter = alerter
        self._audit = audit
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(subjects.max_deliveries_advisory(), cb=self._on_message)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_message(self, msg: Msg) -> None:
        try:
            await self.handle(json.loads(msg.data))
        except Exception:
            log.exception("max-deliveries advisory not handled: %s", msg.data[:500])

    async def handle(self, advisory: dict[str, Any]) -> int | None:
        """Dead-letter the message an advisory names; returns the DLQ id (None: it was settled meanwhile)."""
        stream = str(advisory["stream"])
        consumer = str(advisory.get("consumer", ""))
        sequence = int(advisory["stream_seq"])
        deliveries = int(advisory.get("deliveries", 0))
        try:
            raw = await self._js.get_msg(stream, seq=sequence)
        except JsNotFoundError:
            return None  # acked or terminated (a worker's own dead letter) in the meantime
        headers = dict(raw.headers or {})
        subject = raw.subject or ""
        target, tenant = subjects.subject_target(subject), subjects.subject_tenant(subject)
        steps = decode_steps(headers[H_STEPS]) if H_STEPS in headers else []
        order = returns_pb2.ReturnOrder.FromString(raw.data or b"")
        reason = f"JetStream gave up after {deliveries} deliveries on consumer {consumer}"
        dead_letter_id = await self._dlq.put(
            target=target,
            tenant=tenant,
            payload=raw.data or b"",
            headers=headers,
            step=steps[0].step if steps else "",
            document_type=steps[0].document_type if steps else "",
            reason=reason,
            error=None,
            attempts=deliveries,
            source_sequence=sequence,
        )
        # The work queue keeps an unacknowledged message after MaxDeliver; the DLQ copy now owns it.
        with contextlib.suppress(JsNotFoundError):
            await self._js.delete_msg(stream, sequence)
        count_processing("dead_lettered")
        if self._alerter is not None:
            await self._alerter.alert(
                kind="dead_letter",
                key=f"{tenant}:{order.return_id}:{order.version}:max_deliver",
                severity="critical",
                summary=f"return {order.return_id} v{order.version} reached MaxDeliver and was dead-lettered",
                details={
                    "dead_letter_id": str(dead_letter_id),
                    "target": target,
                    "stream_seq": str(sequence),
                },
            )
        try:
            await mark_dead_lettered(
                self._status,
                self._audit,
                tenant=tenant,
                return_id=order.return_id,
                version=int(order.version),
                steps=steps,
                dead_letter_id=dead_letter_id,
                reason=reason,
            )
        except Exception:
            log.exception("dead letter %s stored, but its sync state or audit entry was not", dead_letter_id)
        return dead_letter_id
