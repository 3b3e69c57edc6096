"""Reservations nobody published: a version the admission reserved whose gateway stopped before its publish.

The submit path reserves a version in the return's sync record (``stream_sequence`` 0) and then publishes its
message. A gateway killed between the two, or a publish that failed while NATS was away, leaves the version
reserved: GetReturnStatus says ACCEPTED, a later version of the return waits for it, and only a retry of the same
call would publish it. A client that gave up after its UNAVAILABLE never sends that retry.

The reservation carries its message (``pending``: headers and payload, dropped once the message is named), so this
sweeper publishes it: it follows the ``rb_sync_state`` bucket's stream, keeps the records that hold an unnamed
version, and once a reservation is ``after_seconds`` old and still unnamed, publishes its message with the same
``Nats-Msg-Id`` and names it (``SyncStateStore.confirm``, first writer wins). Both are safe however often they run:
within JetStream's duplicate window the publish answers with the stored message; past it a second copy is stored,
the version names one, and the worker acks the other without delivering it. A gateway still on its way to the
publish, or a message waiting in a long backlog, is therefore never harmed by a sweep.

Cost: one ordered consumer on the bucket's stream in one process (``process.monitor``). Most records carry no
unnamed version and are skipped by a byte search, without decoding. After each round the sweeper writes its mark to
``rb_cursors`` (the stream sequence of the oldest record it still watches, or the next one to read): a restart
resumes there, so a sweeper stopped for any length of time misses nothing. Without a mark (its first start) it
reads back ``lookback_seconds`` of the stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import time

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError
from nats.js.errors import NotFoundError as JsNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.bus import subjects
from returnbridge.bus.publisher import Publisher
from returnbridge.delivery.headers import H_IDEMPOTENCY
from returnbridge.observability.metrics import count_reservation_published
from returnbridge.sync.status import SyncStateStore, is_reserved

__all__ = ["OrphanSettings", "OrphanSweeper", "unnamed_versions"]

log = logging.getLogger(__name__)

_KV_PREFIX = f"$KV.{subjects.SYNC_STATE_BUCKET}."
_STREAM = f"KV_{subjects.SYNC_STATE_BUCKET}"
# How an unnamed version looks in a stored record (kv.dumps writes compact JSON): most records are skipped by it.
_UNNAMED = b'"stream_sequence":0'
# Where the sweeper resumes (rb_cursors): one sweeper per deployment writes it (the ``process.monitor`` process).
_MARK_KEY = subjects.cursor_key("orphans", "watched")


class OrphanSettings(BaseModel):
    """The ``delivery.orphans`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # A reservation this old and still unnamed is published here (well past a gateway's publish timeout).
    after_seconds: float = Field(default=20.0, gt=0)
    # How far back in the bucket's stream a sweeper with no mark in rb_cursors starts (its first start).
    lookback_seconds: float = Field(default=900.0, gt=0)


def unnamed_versions(data: bytes) -> dict[int, float]:
    """Version -> accepted_at of each version a stored sync record reserved and has not named yet."""
    if _UNNAMED not in data:
        return {}
    record = orjson.loads(data)
    return {
        int(version): float(entry.get("accepted_at") or 0.0)
        for version, entry in record.get("versions", {}).items()
        if is_reserved(entry)
    }


class OrphanSweeper:
    """Publishes the message of every reservation left unnamed for ``after_seconds`` (see the module doc)."""

    def __init__(
        self,
        js: JetStreamContext,
        publisher: Publisher,
        status: SyncStateStore,
        settings: OrphanSettings | None = None,
    ) -> None:
        self._js = js
        self._publisher = publisher
        self._status = status
        self.settings = settings or OrphanSettings()
        # KV key -> (stream sequence of the latest record seen, version -> accepted_at of its unnamed versions).
        self._unnamed: dict[str, tuple[int, dict[int, float]]] = {}
        # The last stream sequence read, and the mark last written to rb_cursors (a restart resumes there).
        self._position = 0
        self._marked = 0
        self._marks: KeyValue | None = None
        self._sub: JetStreamContext.PushSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    async def start(self) -> None:
        # By sequence, not by start time: nats-py recreates an ordered consumer (after a server restart) from the
        # next sequence but keeps the config's start time, which the server refuses, and the sweeper would stop.
        self._sub = await self._js.subscribe(
            _KV_PREFIX + ">",
            stream=_STREAM,
            cb=self._seen,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=await self._resume_from()),
            idle_heartbeat=5.0,
        )
        self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _resume_from(self) -> int:
        """The mark the last sweeper left in rb_cursors; without one, ``lookback_seconds`` back."""
        try:
            self._marks = await self._js.key_value(subjects.CURSORS_BUCKET)
            self._marked = int((await self._marks.get(_MARK_KEY)).value or b"0")
        except KeyNotFoundError:  # (a subclass of the next) no mark yet: this sweeper's first start
            pass
        except JsNotFoundError:  # no bucket (every process ensures it at start-up): read back, mark nothing
            log.warning("no %s bucket: the reservation sweeper keeps no mark", subjects.CURSORS_BUCKET)
        if self._marked:
            return self._marked
        return await self._first_sequence_since()

    async def _save_mark(self) -> None:
        """Record where a restart must resume: the oldest record still watched, else the next one to read."""
        if self._marks is None or not self._position:
            return
        mark = min((seq for seq, _ in self._unnamed.values()), default=self._position + 1)
        if mark > self._marked:
            await self._marks.put(_MARK_KEY, str(mark).encode())
            self._marked = mark

    async def _first_sequence_since(self) -> int:
        """The first sequence of the bucket's stream stored ``lookback_seconds`` ago or later (a binary search on
        the stored times: a few dozen reads however long the stream)."""
        lookback = datetime.timedelta(seconds=self.settings.lookback_seconds)
        since = datetime.datetime.now(datetime.UTC) - lookback
        state = (await self._js.stream_info(_STREAM)).state
        low, high = max(state.first_seq, 1), state.last_seq + 1
        while low < high:
            middle = (low + high) // 2
            try:
                # The message at ``middle``, or the next one kept (history and deletes leave gaps).
                msg = await self._js.get_msg(_STREAM, seq=middle, subject=_KV_PREFIX + ">", next=True)
            except JsNotFoundError:
                high = middle
                continue
            if msg.time is not None and msg.time < since:
                low = int(msg.seq or middle) + 1
            else:
                high = middle
        return low

    @property
    def watching(self) -> int:
        """How many returns hold a reservation this sweeper watches (not yet due, or not yet published)."""
        return len(self._unnamed)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
        # Best effort: the last round's mark is a safe place to resume too.
        with contextlib.suppress(Exception):
            await self._save_mark()

    async def _seen(self, msg: Msg) -> None:
        key = msg.subject[len(_KV_PREFIX) :]
        seq = msg.metadata.sequence.stream
        operation = (msg.headers or {}).get("KV-Operation")
        try:
            unnamed = {} if operation in ("DEL", "PURGE") else unnamed_versions(msg.data)
        except (ValueError, TypeError, AttributeError):
            log.warning("sync record %s is not a JSON object; not swept", key)
            unnamed = {}
        if unnamed:
            self._unnamed[key] = (seq, unnamed)
        else:
            self._unnamed.pop(key, None)
        self._position = seq

    async def _sweep_forever(self) -> None:
        every = min(max(self.settings.after_seconds / 4, 0.2), 15.0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
                await self._save_mark()
            except Exception:  # the next round tries again; NATS may be away
                log.exception("sweeping unpublished reservations failed; next round in %.1f s", every)

    async def sweep(self) -> int:
        """Publish every reservation unnamed for ``after_seconds``; the number published."""
        due = time.time() - self.settings.after_seconds
        published = 0
        for key, (seq, versions) in list(self._unnamed.items()):
            if min(versions.values()) <= due:
                published += await self._complete(key, seq, due)
        return published

    async def _complete(self, key: str, seq: int, due: float) -> int:
        tenant, return_id = (subjects.kv_untoken(part) for part in key.split(".", 1))
        # The record as it is now: a worker or a retry may have named the version since the stream said otherwise.
        record = await self._status.get(tenant, return_id)
        unnamed: dict[int, float] = {}
        published = 0
        for version, entry in sorted((record or {}).get("versions", {}).items(), key=lambda kv: int(kv[0])):
            if not is_reserved(entry):
                continue
            accepted_at = float(entry.get("accepted_at") or 0.0)
            if accepted_at > due:
                unnamed[int(version)] = accepted_at  # not due yet
                continue
            pending = entry.get("pending")
            if not pending:
                # Reserved by a release that did not keep the message: only a retry of the call can publish it.
                log.warning(
                    "return %s v%s is reserved without its message; a retry publishes it", return_id, version
                )
                continue
            headers = dict(pending["headers"])
            ack = await self._publisher.publish_delivery(
                entry["target"],
                tenant,
                base64.b64decode(pending["payload"]),
                msg_id=headers[H_IDEMPOTENCY],
                headers=headers,
            )
            _, _, named = await self._status.confirm(tenant, return_id, int(version), ack.seq)
            published += 1
            self.published += 1
            count_reservation_published()
            log.warning(
                "return %s v%s was reserved %.0f s ago and never published (its gateway stopped or NATS was "
                "away): published as message %s%s",
                return_id,
                version,
                time.time() - accepted_at,
                named,
                " (JetStream already held it)" if ack.duplicate else "",
            )
        # What is left to watch for this return, as the record says now (the stream brings later changes).
        if unnamed:
            self._unnamed[key] = (seq, unnamed)
        else:
            self._unnamed.pop(key, None)
        return published
