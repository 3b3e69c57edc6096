"""The audit scribe: writes ``return.submitted`` from each accepted submission's stream message, then acks it.

The stored delivery message is the authority for an acceptance (ACCEPTED is answered after its PubAck), so the
entry is written from it, off the submit path: a gateway killed between the PubAck and anything else cannot leave
an accepted event without its entry, and a burst costs one pipelined audit append per batch instead of one
awaited append per call racing the workers for the chain's tail. A message is acked only once its entry landed;
a scribe that dies in between has the message redelivered, and its second append carries the same JetStream
message id (from the idempotency key), so the audit stream drops it: one entry, never none, never two.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.consumer import SUBMITTED_AUDIT_CONSUMER, ensure_submitted_audit_consumer
from returnbridge.delivery.headers import (
    H_ACTOR,
    H_AUTH_METHOD,
    H_IDEMPOTENCY,
    H_REPLAY_OF,
    H_REQUEST_ID,
    H_RULE,
)

__all__ = ["SubmittedAuditor", "submission_fields", "submitted_dedup_id"]

log = logging.getLogger(__name__)

_BATCH = 256
_RETRY_DELAY_SECONDS = 1.0


def submission_fields(subject: str, headers: Mapping[str, str]) -> dict[str, str] | None:
    """Tenant, object id, target, rule and key of a submission message; None for anything else (a replay)."""
    key = headers.get(H_IDEMPOTENCY, "")
    if not key or H_REPLAY_OF in headers:
        return None
    # "<tenant>:<return_id>:<version>:<event>"; a return id may itself hold ':'.
    tenant, _, rest = key.partition(":")
    return_id, version, _event = rest.rsplit(":", 2)
    # rb.deliver.<target>.<tenant>
    target = subject.split(".")[2]
    return {
        "tenant": tenant,
        "object_id": f"{return_id}:{version}",
        "target": target,
        "rule": headers.get(H_RULE, ""),
        "key": key,
    }


def submitted_dedup_id(key: str) -> str:
    """The audit append's message id for one accepted event (its idempotency key), header-safe whatever the key."""
    return "return.submitted:" + hashlib.sha256(key.encode()).hexdigest()


class SubmittedAuditor:
    """One durable consumer shared by every process running it (any number, each takes a share)."""

    def __init__(self, js: JetStreamContext, audit: AuditLog) -> None:
        self._js = js
        self._audit = audit
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await ensure_submitted_audit_consumer(self._js)
        sub = await self._js.pull_subscribe_bind(
            consumer=SUBMITTED_AUDIT_CONSUMER, stream=subjects.DELIVER_STREAM
        )
        self._task = asyncio.create_task(self._run(sub), name="audit-submitted")

    async def stop(self) -> None:
        """Stop fetching; the batch in hand is finished (its entries written and acked)."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    msgs = await sub.fetch(_BATCH, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except NatsError as exc:
                    log.warning("audit scribe: fetch failed (%s); retrying", exc)
                    await asyncio.sleep(_RETRY_DELAY_SECONDS)
                    continue
                await self.write(msgs)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def write(self, msgs: list[Msg]) -> None:
        """Append the batch's entries (one pipeline) and ack each message whose entry landed."""
        results = await asyncio.gather(*(self._record(m) for m in msgs), return_exceptions=True)
        for msg, result in zip(msgs, results, strict=True):
            try:
                if isinstance(result, BaseException):
                    log.warning(
                        "audit scribe: entry for seq %s not written: %r", msg.metadata.sequence.stream, result
                    )
                    await msg.nak(delay=_RETRY_DELAY_SECONDS)
                else:
                    await msg.ack()
            except NatsError as exc:  # redelivered after ack_wait; the entry is then written again
                log.warning("audit scribe: ack failed: %s", exc)

    async def _record(self, msg: Msg) -> None:
        headers = msg.headers or {}
        fields = submission_fields(msg.subject, headers)
        if fields is None:
            return
        await self._audit.record(
            action="return.submitted",
            object_type="return",
            object_id=fields["object_id"],
            tenant_id=fields["tenant"],
            actor=headers.get(H_ACTOR) or "system",
            auth_method=headers.get(H_AUTH_METHOD) or "system",
            request=headers.get(H_REQUEST_ID, ""),
            after=msg.data,
            details={
                "target": fields["target"],
                "rule": fields["rule"],
                "idempotency_key": fields["key"],
                "stream_sequence": str(msg.metadata.sequence.stream),
            },
            dedup_id=submitted_dedup_id(fields["key"]),
        )
