"""Inbound dead letters: ERP records refused after translation, on their own stream RB_INBOUND_DLQ.

Each message holds the ERP record as read (so a replay after a mapping or reference data fix translates it
again) with headers naming the target, tenant, kind, mapping and why it was refused. Pending until replayed
or discarded (a mark in ``rb_sync_state``); always listed per tenant.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as JsNotFoundError
from nats.js.kv import KeyValue

from returnbridge.bus import subjects
from returnbridge.bus.kv import dumps, get_json
from returnbridge.errors import ConflictError, NotFoundError

H_TARGET = "Rb-Inbound-Target"
H_TENANT = "Rb-Inbound-Tenant"
H_ERP = "Rb-Inbound-Erp"
H_KIND = "Rb-Inbound-Kind"
H_MAPPING = "Rb-Inbound-Mapping"
H_REASON = "Rb-Inbound-Reason"
H_PROBLEMS = "Rb-Inbound-Problems"
H_AT = "Rb-Inbound-At"


class AlerterLike(Protocol):
    """``observability.alerts.Alerter`` as the poller uses it (wired in ``app.py``)."""

    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool: ...


@dataclass(frozen=True, slots=True)
class InboundDeadLetter:
    id: int
    target: str
    tenant: str
    erp: str
    kind: str
    mapping: str
    reason: str
    problems: tuple[str, ...]
    at: float
    record: bytes
    state: str = "PENDING"

    def as_dict(self, *, with_record: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "target": self.target,
            "tenant": self.tenant,
            "erp": self.erp,
            "kind": self.kind,
            "mapping": self.mapping,
            "reason": self.reason,
            "problems": list(self.problems),
            "at": self.at,
            "state": self.state,
        }
        if with_record:
            out["record"] = self.record.decode("utf-8", "replace")
        return out


class InboundDeadLetters:
    """Args: js: JetStream; marks: the ``rb_sync_state`` bucket (replayed / discarded marks)."""

    def __init__(self, js: JetStreamContext, marks: KeyValue) -> None:
        self._js = js
        self._marks = marks

    async def put(
        self,
        *,
        target: str,
        tenant: str,
        erp: str,
        kind: str,
        mapping: str,
        reason: str,
        problems: list[str],
        record: bytes,
        cursor: str,
        index: int,
    ) -> int:
        """Store one refused record; the same record at the same cursor position is stored once."""
        headers = {
            H_TARGET: target,
            H_TENANT: tenant,
            H_ERP: erp,
            H_KIND: kind,
            H_MAPPING: mapping,
            H_REASON: reason,
            H_PROBLEMS: json.dumps([p[:300] for p in problems[:20]]),
            H_AT: repr(time.time()),
            # A re-read of the same page (a restart before the cursor was saved) is not a second dead letter.
            "Nats-Msg-Id": f"inbound:{target}:{kind}:{hashlib.sha256(cursor.encode()).hexdigest()[:24]}:{index}",
        }
        ack = await self._js.publish(
            subjects.inbound_dlq(target, tenant), record, headers=headers, stream=subjects.INBOUND_DLQ_STREAM
        )
        return int(ack.seq)

    async def get(self, tenant: str, dead_letter_id: int) -> InboundDeadLetter:
        try:
            msg = await self._js.get_msg(subjects.INBOUND_DLQ_STREAM, dead_letter_id)
        except JsNotFoundError:
            raise NotFoundError(f"inbound dead letter {dead_letter_id} not found") from None
        headers = msg.headers or {}
        if headers.get(H_TENANT) != tenant:
            raise NotFoundError(f"inbound dead letter {dead_letter_id} not found")
        return await self._letter(dead_letter_id, headers, msg.data or b"")

    async def list(
        self, tenant: str, *, include_resolved: bool = False, limit: int = 1000
    ) -> list[InboundDeadLetter]:
        """The tenant's inbound dead letters, oldest first."""
        out: list[InboundDeadLetter] = []
        try:
            sub = await self._js.subscribe(
                subjects.inbound_dlq_tenant_filter(tenant),
                stream=subjects.INBOUND_DLQ_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
        except JsNotFoundError:
            return out
        try:
            while len(out) < limit:
                pending = sub.pending_msgs
                try:
                    msg = await sub.next_msg(timeout=0.5 if pending == 0 else 5.0)
                except TimeoutError:
                    break
                letter = await self._letter(msg.metadata.sequence.stream, msg.headers or {}, msg.data or b"")
                if include_resolved or letter.state == "PENDING":
                    out.append(letter)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        return out

    async def mark(self, tenant: str, dead_letter_id: int, state: str) -> InboundDeadLetter:
        """REPLAYED or DISCARDED; a resolved dead letter cannot be resolved again."""
        letter = await self.get(tenant, dead_letter_id)
        if letter.state != "PENDING":
            raise ConflictError(f"inbound dead letter {dead_letter_id} is already {letter.state.lower()}")
        await self._marks.put(
            subjects.inbound_dlq_state_key(dead_letter_id), dumps({"state": state, "at": time.time()})
        )
        return await self.get(tenant, dead_letter_id)

    async def _letter(self, seq: int, headers: dict[str, str], data: bytes) -> InboundDeadLetter:
        mark, _ = await get_json(self._marks, subjects.inbound_dlq_state_key(seq))
        return InboundDeadLetter(
            id=seq,
            target=headers.get(H_TARGET, ""),
            tenant=headers.get(H_TENANT, ""),
            erp=headers.get(H_ERP, ""),
            kind=headers.get(H_KIND, ""),
            mapping=headers.get(H_MAPPING, ""),
            reason=headers.get(H_REASON, ""),
            problems=tuple(json.loads(headers.get(H_PROBLEMS, "[]"))),
            at=float(headers.get(H_AT, "0") or 0),
            record=data,
            state=str(mark["state"]) if mark else "PENDING",
        )
