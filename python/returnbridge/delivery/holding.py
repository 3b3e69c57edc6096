"""The messages of a batch a worker holds: each tells JetStream it is being worked on until it is finished.

A worker fetches up to two batches (400 messages on defaults) and works on ``concurrency`` (64) at a time, one
return's versions in order. With an ERP answering slowly, the last messages of a batch wait several ack waits
for a slot; without a sign of life JetStream hands them to another worker as well, which looks up and creates,
and this worker, whose batch read of the sync record is old by then, creates again (tests/delivery/
test_held_messages.py posted 2 of 6 twice). A beat around the ERP call alone started too late; this one covers
the call too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from returnbridge.delivery.work import Work

__all__ = ["Holding"]


class Holding:
    """Beats ``in_progress`` for every held message every ``interval`` seconds until it is released.

    A timer, not a task per message: a batch that ends within ``interval`` (nearly all) sends nothing. A stale
    message (fetched before a reconnect) gets no beat: it would keep alive the delivery another worker holds.
    """

    def __init__(self, works: Iterable[Work], interval: float) -> None:
        self._held = {id(work): work for work in works}
        self._interval = interval
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._beat)

    def release(self, work: Work) -> None:
        """``work`` is finished with (acked, nak'ed, terminated or dropped): no more beats for it."""
        self._held.pop(id(work), None)
        if not self._held:
            self.stop()

    def stop(self) -> None:
        self._held.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _beat(self) -> None:
        works = [w for w in self._held.values() if not w.stale()]
        if works:
            task = asyncio.get_running_loop().create_task(self._send(works))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        self._timer = asyncio.get_running_loop().call_later(self._interval, self._beat)

    @staticmethod
    async def _send(works: list[Work]) -> None:
        for work in works:
            with contextlib.suppress(Exception):  # a lost beat only risks a redelivery, which looks up first
                await work.msg.in_progress()
