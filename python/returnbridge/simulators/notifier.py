"""Sends a signed notification for every change in a simulator's change feed, as an ERP-side hook would.

Sending never blocks or fails the ERP operation that made the change: ``notify`` only puts the event on a
bounded queue (a full queue drops it, counted); ``concurrency`` tasks post them (1: strictly in change
order), retrying connection errors and 5xx with backoff. A change to a (kind, key) that already has a
notification queued and not yet taken by a sender replaces that one's body with the latest state instead of
queueing another (``coalesced`` in the stats), so a backlog behind a slow receiver stays one notification
per changed key instead of growing with every change: a notification is only a hint, the receiver's poll
reads the feed itself, so nothing is lost. A 4xx is final (the receiver refused it, or already
has it: 409). For tests the notifier can drop, duplicate or reorder a share of the events, seeded so a run
repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from returnbridge.simulators.notify_shapes import build_payload
from returnbridge.webhook_signing import sign

__all__ = ["ChangeNotifier", "NotifierConfig", "NotifierStats"]


class NotifierConfig(BaseModel):
    """Where and how a simulator sends its change notifications (``PUT /_sim/notifications``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    url: str = ""
    key_id: str = ""
    secret: SecretStr = SecretStr("")
    drop_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    reorder_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    seed: int | None = None
    queue_size: int = Field(default=10_000, ge=1, le=1_000_000)
    # Posts in flight at once, as Event Mesh or an iPaaS delivers; 1 keeps strict change order.
    concurrency: int = Field(default=8, ge=1, le=64)
    # Merge queued, unsent notifications for the same (kind, key) into the latest one.
    coalesce: bool = True
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_seconds: float = Field(default=0.2, gt=0, le=60)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value

    def ready(self) -> bool:
        return self.enabled and bool(self.url and self.key_id and self.secret.get_secret_value())

    def public(self) -> dict[str, Any]:
        """The settings without the secret, for ``GET /_sim/notifications``."""
        return self.model_dump(mode="json", exclude={"secret"}) | {
            "secret_set": bool(self.secret.get_secret_value())
        }


@dataclass
class NotifierStats:
    queued: int = 0
    sent: int = 0
    duplicate_acks: int = 0  # 409: the receiver already had it
    refused: int = 0  # other 4xx
    failed: int = 0  # gave up after max_attempts
    dropped_queue_full: int = 0
    coalesced: int = 0  # changes merged into a notification already queued for the same (kind, key)
    dropped_by_test: int = 0
    duplicated_by_test: int = 0
    reordered_by_test: int = 0
    last_error: str = ""
    # Change -> first POST, the time a notification waited behind others (a backlog shows here first).
    queue_wait_max_seconds: float = 0.0
    queue_wait_total_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    body: bytes
    queued_at: float = field(default_factory=time.monotonic)
    attempt: int = 0
    # (kind, key) while the item may still be merged into; None once a sender took it (or for a test copy).
    merge_key: tuple[str, str] | None = None
    created: bool = False


@dataclass
class ChangeNotifier:
    """One per simulator kit; ``notify`` is the change feed's listener."""

    simulator: str
    config: NotifierConfig = field(default_factory=NotifierConfig)
    stats: NotifierStats = field(default_factory=NotifierStats)
    _queue: asyncio.Queue[_Pending] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _unsent: dict[tuple[str, str], _Pending] = field(default_factory=dict)
    _random: random.Random = field(default_factory=random.Random)

    def configure(self, config: NotifierConfig) -> None:
        """Apply new settings; events already queued go out under them."""
        self.config = config
        self._random = random.Random(config.seed)

    def notify(self, seq: int, kind: str, key: str) -> None:
        """Queue the notification of one change; returns at once and never raises into the ERP operation."""
        created = key not in self._seen
        self._seen.add(key)
        if not self.config.ready():
            return
        waiting = self._unsent.get((kind, key)) if self.config.coalesce else None
        # A merged notification still says "created" if any change it stands for created the key.
        created = created or (waiting is not None and waiting.created)
        payload = build_payload(self.simulator, kind, key, time.time(), created=created)
        if payload is None:
            return
        body = json.dumps(payload, separators=(",", ":")).encode()
        if waiting is not None:  # still queued, not yet taken by a sender: it now carries the latest change
            waiting.body, waiting.created = body, created
            self.stats.coalesced += 1
            return
        if self._random.random() < self.config.drop_rate:
            self.stats.dropped_by_test += 1
            return
        copies = 2 if self._random.random() < self.config.duplicate_rate else 1
        self.stats.duplicated_by_test += copies - 1
        queue = self._ensure_running()
        if queue is None:
            return
        for copy in range(copies):
            item = _Pending(body, created=created)
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self.stats.dropped_queue_full += 1
                return
            self.stats.queued += 1
            if copy == 0 and self.config.coalesce:
                item.merge_key = (kind, key)
                self._unsent[(kind, key)] = item

    def _taken(self, item: _Pending) -> _Pending:
        """A sender took ``item`` off the queue: later changes to its key queue a new notification."""
        if item.merge_key is not None:
            if self._unsent.get(item.merge_key) is item:
                del self._unsent[item.merge_key]
            item.merge_key = None
        return item

    def _ensure_running(self) -> asyncio.Queue[_Pending] | None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a change made outside the event loop (seeding at import): nothing to send
            return None
        if self._queue is None:  # sized once, at the first event
            self._queue = asyncio.Queue(self.config.queue_size)
        self._tasks = [t for t in self._tasks if not t.done()]
        while len(self._tasks) < self.config.concurrency:
            self._tasks.append(asyncio.create_task(self._run(self._queue), name=f"{self.simulator}-notifier"))
        return self._queue

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until everything queued was sent or given up (tests and benchmarks)."""
        if self._queue is not None:
            await asyncio.wait_for(self._queue.join(), timeout)

    async def aclose(self, *_: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._queue = None
        self._unsent.clear()

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        held: _Pending | None = None
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    item = self._taken(await asyncio.wait_for(queue.get(), 0.5 if held is not None else None))
                except TimeoutError:  # nothing came after the held event: send it anyway
                    assert held is not None
                    await self._deliver(session, held)
                    queue.task_done()
                    held = None
                    continue
                if held is None and self._random.random() < self.config.reorder_rate:
                    held = item
                    self.stats.reordered_by_test += 1
                    continue
                await self._deliver(session, item)
                queue.task_done()
                if held is not None:
                    await self._deliver(session, held)
                    queue.task_done()
                    held = None

    async def _deliver(self, session: aiohttp.ClientSession, item: _Pending) -> None:
        config = self.config
        if item.attempt == 0:
            waited = time.monotonic() - item.queued_at
            self.stats.queue_wait_total_seconds += waited
            self.stats.queue_wait_max_seconds = max(self.stats.queue_wait_max_seconds, waited)
        while True:
            item.attempt += 1
            secret = config.secret.get_secret_value().encode()
            headers = sign(secret, config.key_id, item.body, int(time.time()))
            headers["Content-Type"] = "application/json"
            try:
                async with session.post(
                    config.url,
                    data=item.body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=config.timeout_seconds),
                ) as response:
                    status = response.status
                    text = (await response.text())[:200]
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
            if 200 <= status < 300:
                self.stats.sent += 1
                return
            if status == 409:
                self.stats.duplicate_acks += 1
                return
            self.stats.last_error = f"{status} {text}".strip()
            if 400 <= status < 500:
                self.stats.refused += 1
                return
            if item.attempt >= config.max_attempts:
                self.stats.failed += 1
                return
            await asyncio.sleep(config.backoff_seconds * 2 ** (item.attempt - 1))
