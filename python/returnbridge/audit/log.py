"""Append-only, hash-chained audit log on a JetStream stream that denies deletes and purges."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from nats import errors as nats_errors
from nats.js import JetStreamContext
from nats.js import errors as js_errors
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from returnbridge.audit.entry import ENTRY_VERSION, GENESIS_HASH, AuditEntry, canonical_json, digest
from returnbridge.audit.redact import redact_mapping, redact_text
from returnbridge.bus import subjects
from returnbridge.bus.streams import refused_replicas
from returnbridge.domain.context import maybe_principal, request_id
from returnbridge.errors import ConfigError, ConflictError, FieldViolation, ValidationError

__all__ = [
    "AUDIT_DUPLICATE_WINDOW",
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT_PREFIX",
    "AuditLog",
    "AuditPage",
    "StoredEntry",
]

DEFAULT_STREAM: Final = subjects.AUDIT_STREAM
# A second prefix exists only so a copy of the log (tests, forensics) can live in another stream.
DEFAULT_SUBJECT_PREFIX: Final = subjects.AUDIT_ALL.removesuffix(".>")
# Tenant-less (system / cross-tenant admin) entries still need a subject token.
SYSTEM_TENANT_TOKEN: Final = "_system"
# How long JetStream remembers a record's dedup id: longer than a dead audit scribe's messages take to come back
# (their ack wait, 30 s, plus a restart), so its second write of an entry is dropped.
AUDIT_DUPLICATE_WINDOW: Final = 300.0
# The server's answers when another writer appended first: wrong last sequence, wrong last message id.
_LOST_RACE: Final = frozenset({10071, 10070})
# Entries chained and published in one pipeline; a lost race re-sends at most this many.
_MAX_PIPELINE: Final = 256
# How long a reader waits for the next message before treating the rest of a range as absent.
_READ_TIMEOUT: Final = 5.0
# Writer clocks may differ from the NATS server's by this much; time-range scans widen their bounds by it.
CLOCK_SKEW: Final = timedelta(minutes=15)
# Writers in several processes race for the tail; a loser backs off (jittered, growing to a cap) so the
# contenders spread out instead of colliding again at once. 200 tries at <= 50 ms spans ~10 s of contention.
_MAX_APPEND_ATTEMPTS: Final = 200
_RACE_BACKOFF_BASE: Final = 0.001
_RACE_BACKOFF_CAP: Final = 0.05
_ACTION_RE: Final = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One raw stream message: its stream sequence, subject and bytes (parsed or not)."""

    seq: int
    subject: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a query; ``next_page_token`` is empty on the last page."""

    entries: list[AuditEntry]
    next_page_token: str


@dataclass(slots=True)
class _Append:
    """One queued record: everything but its place in the chain (sequence, time, predecessor)."""

    subject: str
    fields: dict[str, Any]
    future: asyncio.Future[int]
    # Nats-Msg-Id; None: the entry's hash (unique per entry, so only a re-sent identical entry is dropped).
    msg_id: str | None = None
    attempts: int = 0


def _seal(body: dict[str, Any]) -> tuple[str, bytes]:
    """Hash and stored bytes of an entry given as a plain dict of every field but ``hash``.

    Exactly ``AuditEntry(**body).sealed()``'s hash and ``to_json()`` bytes (pinned by a test), without the
    dataclass's recursive ``asdict`` copies, which cost more than the rest of an append.
    """
    entry_hash = hashlib.sha256(canonical_json(body)).hexdigest()
    return entry_hash, canonical_json({**body, "hash": entry_hash})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    """Writer and reader of the audit chain; one instance per process is enough, several processes may write."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._js = js
        self.stream = stream
        self.subject_prefix = subject_prefix
        self._clock = clock
        self._tail: tuple[int, str] | None = None
        self._queue: list[_Append] = []
        self._writer: asyncio.Task[None] | None = None
        # Entries published per round trip; 1 on a replicated stream (see _ensure_stream).
        self._pipeline = _MAX_PIPELINE

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        *,
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        clock: Callable[[], datetime] = _utc_now,
        replicas: int = 1,
    ) -> AuditLog:
        """Create the stream if needed (deny_delete, deny_purge, file storage) and return a log bound to it.

        ``replicas`` (``delivery.streams.replicas``) is applied to a new stream and raised on an existing one,
        so on a cluster the audit log survives losing a server like the pipeline's streams do.

        Raises:
            ConfigError: the stream exists but allows deletes or purges, or does not carry our subjects.
        """
        log = cls(js, stream=stream, subject_prefix=subject_prefix, clock=clock)
        await log._ensure_stream(replicas)
        return log

    async def _ensure_stream(self, replicas: int) -> None:
        # On a replicated stream the server checks Nats-Expected-Last-Msg-Id only when it applies an entry,
        # not when its leader takes it: a pipelined entry whose predecessor lost a race then fails on every
        # replica as a "critical write error" and the stream stops answering (10008), which took the whole
        # audit log down under two gateways and two workers on a 3-node cluster (tests/chaos). One entry per
        # round trip needs only Nats-Expected-Last-Sequence, which the leader serialises correctly.
        self._pipeline = 1 if replicas > 1 else _MAX_PIPELINE
        wanted = f"{self.subject_prefix}.>"
        try:
            info = await self._js.stream_info(self.stream)
        except js_errors.NotFoundError:
            with refused_replicas(replicas, self.stream):
                await self._js.add_stream(
                    StreamConfig(
                        name=self.stream,
                        description="returnbridge audit log (append-only, hash-chained)",
                        subjects=[wanted],
                        retention=RetentionPolicy.LIMITS,
                        discard=DiscardPolicy.NEW,
                        storage=StorageType.FILE,
                        deny_delete=True,
                        deny_purge=True,
                        allow_rollup_hdrs=False,
                        num_replicas=replicas,
                        duplicate_window=AUDIT_DUPLICATE_WINDOW,
                    )
                )
            return
        config = info.config
        if (config.num_replicas or 1) > 1:
            self._pipeline = 1
        if not (config.deny_delete and config.deny_purge):
            raise ConfigError(f"stream {self.stream!r} must be configured with deny_delete and deny_purge")
        if wanted not in (config.subjects or []):
            raise ConfigError(f"stream {self.stream!r} does not carry subject {wanted!r}")
        if (config.num_replicas or 1) < replicas or (config.duplicate_window or 0) < AUDIT_DUPLICATE_WINDOW:
            config.num_replicas = max(config.num_replicas or 1, replicas)
            config.duplicate_window = AUDIT_DUPLICATE_WINDOW
            with refused_replicas(replicas, self.stream):
                await self._js.update_stream(config)

    def subject_for(self, tenant_id: str) -> str:
        tenant = tenant_id or SYSTEM_TENANT_TOKEN
        if self.subject_prefix == DEFAULT_SUBJECT_PREFIX:
            return subjects.audit(tenant)
        return f"{self.subject_prefix}.{subjects.token(tenant, 'tenant')}"

    async def record(
        self,
        *,
        action: str,
        object_type: str,
        object_id: str,
        tenant_id: str,
        actor: str | None = None,
        before: bytes | None = None,
        after: bytes | None = None,
        details: Mapping[str, str] | None = None,
        auth_method: str | None = None,
        request: str | None = None,
        dedup_id: str | None = None,
    ) -> int:
        """Append one entry and return its stream sequence.

        ``actor`` defaults to the authenticated principal of the call (or ``system``), ``auth_method`` to its
        method and ``request`` to the call's request id (a writer recording another process's call passes all
        three). Snapshots are stored only as SHA-256 digests; details are redacted before they are hashed or
        stored. ``dedup_id`` names the fact recorded: a second record with the same id within the stream's
        duplicate window (``AUDIT_DUPLICATE_WINDOW``) is dropped by JetStream and returns the first one's sequence
        (a writer that died between its append and its own acknowledgement writes the entry again).

        Raises:
            ValidationError: a malformed action, object type, object id or tenant.
            ConflictError: the chain tail kept moving under us (pathological contention).
        """
        violations: list[FieldViolation] = []
        if not _ACTION_RE.match(action):
            violations.append(
                FieldViolation("action", "lower-case dotted name such as 'return.submitted' required")
            )
        if not _ACTION_RE.match(object_type):
            violations.append(
                FieldViolation("object_type", "lower-case name such as 'return_order' required")
            )
        if not object_id:
            violations.append(FieldViolation("object_id", "required"))
        if tenant_id and not _TOKEN_RE.match(tenant_id):
            violations.append(FieldViolation("tenant_id", "letters, digits, '_' and '-' only"))
        if violations:
            raise ValidationError("invalid audit record", violations)
        principal = maybe_principal()
        if actor is None:
            actor = principal.name if principal is not None else "system"
        pending = _Append(
            subject=self.subject_for(tenant_id),
            fields={
                "tenant_id": tenant_id,
                "actor": redact_text(actor),
                "auth_method": auth_method or (principal.auth_method if principal is not None else "system"),
                # Captured here: the writer task runs outside the caller's context.
                "request_id": request if request is not None else request_id(),
                "action": action,
                "object_type": object_type,
                "object_id": redact_text(object_id),
                "before_sha256": digest(before),
                "after_sha256": digest(after),
                "details": redact_mapping(details),
            },
            future=asyncio.get_running_loop().create_future(),
            msg_id=dedup_id,
        )
        self._queue.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name=f"audit-writer-{self.stream}")
        return await pending.future

    async def _write_queued(self) -> None:
        """Append everything queued, a pipelined batch at a time, until the queue is empty."""
        while self._queue:
            # Callers cancelled before their entry was sealed are dropped, as a cancelled publish would be.
            batch = [p for p in self._queue[: self._pipeline] if not p.future.done()]
            del self._queue[: self._pipeline]
            try:
                await self._append_batch(batch)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, never swallowed
                self._tail = None
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)

    async def _append_batch(self, batch: list[_Append]) -> None:
        """Chain the batch onto the tail and publish it in one pipeline (one round trip, not one per entry).

        Every publish carries the predecessor's sequence (``Nats-Expected-Last-Sequence``) and, inside the
        pipeline, its message id (``Nats-Expected-Last-Msg-Id``; each entry's id is its hash). If another writer
        gets in, the server refuses our entry at that point and every later one of the pipeline (their
        predecessor is not the stream's last message), so a chain never forks; the refused ones are re-chained
        on the new tail and retried.
        """
        pending = batch
        while pending:
            if self._tail is None:
                self._tail = await self._load_tail()
            last_seq, last_hash = self._tail
            last_msg_id = ""
            # An entry with a dedup id ends the pipeline. JetStream answers a duplicate before it checks the
            # expected last sequence: when another writer stored the original as the very last entry, a successor
            # would find both the sequence and the message id it expects and be stored chained to a copy that
            # never was (tests/audit/test_dedup.py). What follows waits for the answer and is chained on it.
            cut = next((i + 1 for i, item in enumerate(pending) if item.msg_id is not None), len(pending))
            sending, later = pending[:cut], pending[cut:]
            chained: list[tuple[_Append, str, bytes, dict[str, str]]] = []
            for item in sending:
                entry_hash, data = _seal(
                    {
                        **item.fields,
                        "seq": last_seq + 1,
                        "ts": self._clock().astimezone(UTC).isoformat(timespec="microseconds"),
                        "prev_hash": last_hash,
                        "v": ENTRY_VERSION,
                    }
                )
                msg_id = item.msg_id or entry_hash
                headers = {"Nats-Expected-Last-Sequence": str(last_seq), "Nats-Msg-Id": msg_id}
                if chained:
                    # The server compares with the predecessor's Nats-Msg-Id, which is not always its hash.
                    headers["Nats-Expected-Last-Msg-Id"] = last_msg_id
                chained.append((item, entry_hash, data, headers))
                last_seq, last_hash, last_msg_id = last_seq + 1, entry_hash, msg_id
            # Tasks start in creation order, so the publishes leave on the connection in chain order.
            results = await asyncio.gather(
                *(
                    self._js.publish(item.subject, data, stream=self.stream, headers=headers)
                    for item, _hash, data, headers in chained
                ),
                return_exceptions=True,
            )
            retry: list[_Append] = []
            for (item, entry_hash, _data, _headers), result in zip(chained, results, strict=True):
                if isinstance(result, BaseException):
                    self._tail = None
                    if isinstance(result, js_errors.APIError) and result.err_code in _LOST_RACE:
                        item.attempts += 1
                        if item.attempts < _MAX_APPEND_ATTEMPTS:
                            retry.append(item)
                            continue
                        result = ConflictError(
                            f"audit append to {self.stream!r} lost the race {_MAX_APPEND_ATTEMPTS} times"
                        )
                    if not item.future.done():
                        item.future.set_exception(result)
                    continue
                if result.duplicate:
                    # Already in the log (its dedup id was seen): this sealed entry was not stored, so the
                    # tail is not ours; later entries of the pipeline fail their expected sequence and retry.
                    self._tail = None
                elif self._tail is not None:
                    self._tail = (int(result.seq), entry_hash)
                if not item.future.done():
                    item.future.set_result(int(result.seq))
            pending = retry + later
            if retry:
                rounds = max(item.attempts for item in retry)
                await asyncio.sleep(random.uniform(0, min(_RACE_BACKOFF_CAP, _RACE_BACKOFF_BASE * 2**rounds)))

    async def _load_tail(self) -> tuple[int, str]:
        info = await self._js.stream_info(self.stream)
        last_seq = int(info.state.last_seq or 0)
        if last_seq == 0:
            return 0, GENESIS_HASH
        raw = await self._js.get_msg(self.stream, seq=last_seq)
        data = raw.data or b""
        try:
            return last_seq, AuditEntry.from_json(data).hash
        except ValueError:
            # A foreign message at the tail: chain onto its bytes; verification reports it anyway.
            return last_seq, hashlib.sha256(data).hexdigest()

    async def last_sequence(self) -> int:
        info = await self._js.stream_info(self.stream)
        return int(info.state.last_seq or 0)

    async def raw_entries(self, start_seq: int = 1, end_seq: int | None = None) -> AsyncIterator[StoredEntry]:
        """Every stored message from ``start_seq`` to ``end_seq`` (default: the current tail), in order.

        Streams through an ordered consumer (one round trip per batch, not per entry). A sequence the stream no
        longer holds is yielded with empty subject and data, so a walker sees the gap.
        """
        info = await self._js.stream_info(self.stream)
        first = max(start_seq, 1)
        last = int(info.state.last_seq or 0) if end_seq is None else end_seq
        if last < first:
            return
        sub = await self._js.subscribe(
            f"{self.subject_prefix}.>",
            stream=self.stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first),
        )
        expected = first
        try:
            while expected <= last:
                try:
                    msg = await sub.next_msg(timeout=_READ_TIMEOUT)
                except nats_errors.TimeoutError:
                    # Nothing more arrives: the rest of the range is gone (or the stream is unreachable).
                    break
                seq = msg.metadata.sequence.stream
                while expected < min(seq, last + 1):
                    yield StoredEntry(seq=expected, subject="", data=b"")
                    expected += 1
                if seq > last:
                    break
                yield StoredEntry(seq=seq, subject=msg.subject, data=msg.data)
                expected = seq + 1
        finally:
            await sub.unsubscribe()
        while expected <= last:
            yield StoredEntry(seq=expected, subject="", data=b"")
            expected += 1

    async def _first_seq_stored_at(self, moment: datetime) -> int:
        """Lowest sequence the server stored at or after ``moment`` (binary search over server timestamps)."""
        info = await self._js.stream_info(self.stream)
        low, high = int(info.state.first_seq or 1), int(info.state.last_seq or 0) + 1
        while low < high:
            middle = (low + high) // 2
            try:
                raw = await self._js.get_msg(self.stream, seq=middle)
            except js_errors.NotFoundError:
                # A hole cannot be ordered; fall back to scanning from the low end.
                return low
            if raw.time is not None and raw.time < moment:
                low = middle + 1
            else:
                high = middle
        return low

    async def query(
        self,
        *,
        tenant_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str = "",
        object_type: str = "",
        object_id: str = "",
        page_size: int = 50,
        page_token: str = "",
    ) -> AuditPage:
        """Entries of one tenant, oldest first, filtered by time range [since, until), action and object.

        The range applies to the entries' own timestamps; the scan is bounded with the server's storage time,
        which assumes writer clocks within ``CLOCK_SKEW`` of the NATS server.

        Raises:
            ValidationError: bad page size or page token, or a naive datetime.
        """
        violations: list[FieldViolation] = []
        if not 1 <= page_size <= 1000:
            violations.append(FieldViolation("page_size", "must be between 1 and 1000"))
        if page_token and not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 20):
            violations.append(FieldViolation("page_token", "malformed page token"))
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                violations.append(FieldViolation(name, "timestamp must carry a time zone"))
        if tenant_id and not _TOKEN_RE.match(tenant_id):
            violations.append(FieldViolation("tenant_id", "letters, digits, '_' and '-' only"))
        if violations:
            raise ValidationError("invalid audit query", violations)
        subject = self.subject_for(tenant_id)
        if page_token:
            seq = int(page_token)
        elif since is not None:
            seq = await self._first_seq_stored_at(since - CLOCK_SKEW)
        else:
            seq = 1
        found: list[AuditEntry] = []
        while True:
            try:
                raw = await self._js.get_msg(self.stream, seq=seq, subject=subject, next=True)
            except js_errors.NotFoundError:
                return AuditPage(found, "")
            seq = int(raw.seq or seq) + 1
            if until is not None and raw.time is not None and raw.time > until + CLOCK_SKEW:
                # Stored (server clock) well after the range: nothing later can fall inside it.
                return AuditPage(found, "")
            try:
                entry = AuditEntry.from_json(raw.data or b"")
            except ValueError:
                continue
            if entry.tenant_id != tenant_id:
                continue
            moment = entry.timestamp
            if (since is not None and moment < since) or (until is not None and moment >= until):
                continue
            if (action and entry.action != action) or (object_type and entry.object_type != object_type):
                continue
            if object_id and entry.object_id != object_id:
                continue
            found.append(entry)
            if len(found) == page_size:
                return AuditPage(found, str(seq))
