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
unnamed version and are skipped by a byte search, without decoding. At start the sweeper reads back
``lookback_seconds`` of the stream, so a restart of its process misses nothing younger than that.
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
from nats.js.errors import NotFoundError as JsNotFoundError
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


class OrphanSettings(BaseModel):
    """The ``delivery.orphans`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # A reservation this old and still unnamed is published here (well past a gateway's publish timeout).
    after_seconds: float = Field(default=20.0, gt=0)
    # How far back in the bucket's stream the sweeper starts (a restart of its process misses nothing younger).
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
        # KV key -> (version -> accepted_at) of its unnamed versions, as the latest record seen says.
        self._unnamed: dict[str, dict[int, float]] = {}
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
            config=ConsumerConfig(opt_start_seq=await self._first_sequence_since()),
            idle_heartbeat=5.0,
        )
        self._task = asyncio.get_running_loop().create_task(self._sweep_forever())

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

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _seen(self, msg: Msg) -> None:
        key = msg.subject[len(_KV_PREFIX) :]
        operation = (msg.headers or {}).get("KV-Operation")
        try:
            unnamed = {} if operation in ("DEL", "PURGE") else unnamed_versions(msg.data)
        except (ValueError, TypeError, AttributeError):
            log.warning("sync record %s is not a JSON object; not swept", key)
            unnamed = {}
        if unnamed:
            self._unnamed[key] = unnamed
        else:
            self._unnamed.pop(key, None)

    async def _sweep_forever(self) -> None:
        every = min(max(self.settings.after_seconds / 4, 0.2), 15.0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.sweep()
            except Exception:  # the next round tries again; NATS may be away
                log.exception("sweeping unpublished reservations failed; next round in %.1f s", every)

    async def sweep(self) -> int:
        """Publish every reservation unnamed for ``after_seconds``; the number published."""
        due = time.time() - self.settings.after_seconds
        published = 0
        for key, versions in list(self._unnamed.items()):
            if min(versions.values()) <= due:
                published += await self._complete(key, due)
        return published

    async def _complete(self, key: str, due: float) -> int:
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
            self._unnamed[key] = unnamed
        else:
            self._unnamed.pop(key, None)
        return published
