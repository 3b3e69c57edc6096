"""Dead-letter stream RB_DLQ: store, list, inspect, replay and discard, always scoped to one tenant."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError as JsNotFoundError

from returnbridge.api.v1 import admin_pb2, common_pb2, returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.publisher import Publisher
from returnbridge.delivery.headers import H_IDEMPOTENCY, H_REPLAY_OF
from returnbridge.errors import ConflictError, NotFoundError, ValidationError
from returnbridge.sync.status import SyncStateStore, error_dict

H_REASON = "Rb-Dlq-Reason"
H_STEP = "Rb-Dlq-Step"
H_DOCUMENT_TYPE = "Rb-Dlq-Document-Type"
H_ERROR = "Rb-Dlq-Error"
H_ATTEMPTS = "Rb-Dlq-Attempts"
H_SOURCE_SEQ = "Rb-Dlq-Source-Seq"
H_AT = "Rb-Dlq-At"

_STATES = {
    "PENDING": admin_pb2.DEAD_LETTER_STATE_PENDING,
    "REPLAYED": admin_pb2.DEAD_LETTER_STATE_REPLAYED,
    "DISCARDED": admin_pb2.DEAD_LETTER_STATE_DISCARDED,
}
_FORWARDED = ("Rb-Steps", "Rb-Idempotency-Key", "Rb-Rule", "Rb-Lane", "Rb-Erp", "Rb-Accepted-At")


class DeadLetterStore:
    """Args:
    js: JetStream context.
    publisher: publishes dead letters and replays.
    status: sync state (dead-letter states live in the return's record).
    """

    def __init__(self, js: JetStreamContext, publisher: Publisher, status: SyncStateStore) -> None:
        self._js = js
        self._publisher = publisher
        self._status = status

    async def put(
        self,
        *,
        target: str,
        tenant: str,
        payload: bytes,
        headers: dict[str, str],
        step: str,
        document_type: str,
        reason: str,
        error: common_pb2.ErpError | None,
        attempts: int,
        source_sequence: int,
    ) -> int:
        """Copy a failed delivery into RB_DLQ (deduplicated per source message, step and attempt); returns its id."""
        hdrs = {name: headers[name] for name in _FORWARDED if name in headers}
        hdrs.update(
            {
                H_REASON: reason[:2000],
                H_STEP: step,
                H_DOCUMENT_TYPE: document_type,
                H_ERROR: json.dumps(error_dict(error)),
                H_ATTEMPTS: str(attempts),
                H_SOURCE_SEQ: str(source_sequence),
                H_AT: repr(time.time()),
            }
        )
        ack = await self._publisher.publish_dead_letter(
            target, tenant, payload, msg_id=f"dlq:{source_sequence}:{step}:{attempts}", headers=hdrs
        )
        return int(ack.seq)

    async def count(self) -> int:
        info = await self._js.stream_info(subjects.DLQ_STREAM)
        return int(info.state.messages)

    async def _raw(self, tenant: str, dead_letter_id: int) -> Any:
        if dead_letter_id <= 0:
            raise ValidationError("dead letter id must be > 0")
        try:
            msg = await self._js.get_msg(subjects.DLQ_STREAM, seq=dead_letter_id)
        except JsNotFoundError:
            raise NotFoundError(f"dead letter {dead_letter_id} not found") from None
        # Same answer for other tenants' entries as for missing ones: ids must not leak across tenants.
        if not msg.subject or subjects.subject_tenant(msg.subject) != tenant:
            raise NotFoundError(f"dead letter {dead_letter_id} not found")
        return msg

    async def _decode(
        self, msg: Any, seq: int, states: dict[str, dict[str, str]] | None = None
    ) -> admin_pb2.DeadLetter:
        headers = msg.headers or {}
        order = returns_pb2.ReturnOrder.FromString(msg.data or b"")
        tenant = subjects.subject_tenant(msg.subject)
        state = "PENDING"
        if states is not None and order.return_id in states:
            dead_letters = states[order.return_id]
        else:
            record = await self._status.get(tenant, order.return_id)
            dead_letters = record["dead_letters"] if record else {}
            if states is not None:
                states[order.return_id] = dead_letters
        state = dead_letters.get(str(seq), state)
        at = Timestamp()
        at.FromNanoseconds(int(float(headers.get(H_AT, "0")) * 1e9))
        letter = admin_pb2.DeadLetter(
            id=seq,
            tenant_id=tenant,
            return_id=order.return_id,
            version=order.version,
            step=headers.get(H_STEP, ""),
            erp=int(headers.get("Rb-Erp", "0")),  # type: ignore[arg-type]
            target=subjects.subject_target(msg.subject),
            document_type=headers.get(H_DOCUMENT_TYPE, ""),
            reason=headers.get(H_REASON, ""),
            attempts=int(headers.get(H_ATTEMPTS, "0")),
            dead_lettered_at=at,
            payload_digest=hashlib.sha256(msg.data or b"").hexdigest(),
            state=_STATES.get(state, admin_pb2.DEAD_LETTER_STATE_PENDING),
            payload=msg.data or b"",
        )
        error = json.loads(headers.get(H_ERROR, "null") or "null")
        if error:
            letter.error.CopyFrom(common_pb2.ErpError(**error))
        return letter

    async def get(self, tenant: str, dead_letter_id: int) -> admin_pb2.DeadLetter:
        return await self._decode(await self._raw(tenant, dead_letter_id), dead_letter_id)

    async def list(
        self,
        tenant: str,
        *,
        erp: int = 0,
        return_id: str = "",
        include_resolved: bool = False,
        page_size: int = 50,
        page_token: str = "",
    ) -> tuple[list[admin_pb2.DeadLetter], str]:
        """Oldest first; the page token is the last id returned."""
        if page_size < 0 or page_size > 1000:
            raise ValidationError("page_size must be between 0 and 1000")
        page_size = page_size or 50
        if page_token and not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 20):
            raise ValidationError("malformed page_token")
        start = int(page_token or 0) + 1
        info = await self._js.stream_info(subjects.DLQ_STREAM)
        if info.state.messages == 0 or start > info.state.last_seq:
            return [], ""
        sub = await self._js.subscribe(
            subjects.dlq_tenant_filter(tenant),
            stream=subjects.DLQ_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=max(start, info.state.first_seq)),
        )
        letters: list[admin_pb2.DeadLetter] = []
        states: dict[str, dict[str, str]] = {}
        last = 0
        more = False
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except TimeoutError:
                    break
                last = msg.metadata.sequence.stream
                pending = msg.metadata.num_pending
                letter = await self._decode(msg, last, states)
                if (
                    (not erp or letter.erp == erp)
                    and (not return_id or letter.return_id == return_id)
                    and (include_resolved or letter.state == admin_pb2.DEAD_LETTER_STATE_PENDING)
                ):
                    letters.append(letter)
                if pending == 0:
                    break
                if len(letters) >= page_size:
                    more = True
                    break
        finally:
            await sub.unsubscribe()
        return letters, (str(last) if more else "")

    async def replay(self, tenant: str, dead_letter_id: int) -> tuple[admin_pb2.DeadLetter, int]:
        """Re-publish a pending dead letter for delivery; the worker will look the document up before creating."""
        msg = await self._raw(tenant, dead_letter_id)
        letter = await self._decode(msg, dead_letter_id)
        if letter.state != admin_pb2.DEAD_LETTER_STATE_PENDING:
            raise ConflictError(
                f"dead letter {dead_letter_id} is already {admin_pb2.DeadLetterState.Name(letter.state)}"
            )
        await self._status.transition(
            tenant,
            letter.return_id,
            letter.version,
            letter.step,
            "ACCEPTED",
            only_from=frozenset({"DEAD_LETTERED"}),
        )
        headers = {name: (msg.headers or {})[name] for name in _FORWARDED if name in (msg.headers or {})}
        headers[H_REPLAY_OF] = str(dead_letter_id)
        key = headers.get(H_IDEMPOTENCY, f"{tenant}:{letter.return_id}:{letter.version}")
        ack = await self._publisher.publish_delivery(
            letter.target, tenant, msg.data, msg_id=f"{key}:replay:{dead_letter_id}", headers=headers
        )
        await self._status.set_dead_letter_state(tenant, letter.return_id, dead_letter_id, "REPLAYED")
        letter.state = admin_pb2.DEAD_LETTER_STATE_REPLAYED
        return letter, int(ack.seq)

    async def discard(self, tenant: str, dead_letter_id: int) -> admin_pb2.DeadLetter:
        """Give up on a dead letter; the return's later versions stop waiting for it."""
        msg = await self._raw(tenant, dead_letter_id)
        letter = await self._decode(msg, dead_letter_id)
        if letter.state != admin_pb2.DEAD_LETTER_STATE_PENDING:
            raise ConflictError(
                f"dead letter {dead_letter_id} is already {admin_pb2.DeadLetterState.Name(letter.state)}"
            )
        await self._status.transition(
            tenant,
            letter.return_id,
            letter.version,
            letter.step,
            "DISCARDED",
            only_from=frozenset({"DEAD_LETTERED"}),
        )
        await self._status.set_dead_letter_state(tenant, letter.return_id, dead_letter_id, "DISCARDED")
        letter.state = admin_pb2.DEAD_LETTER_STATE_DISCARDED
        return letter
