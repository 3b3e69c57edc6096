"""The worker's NATS sessions: which delivery messages an earlier session may have had in flight at the ERP.

The worker looks an ERP document up before creating it when an earlier attempt may have reached the ERP, and
learnt that from JetStream's delivery count alone. That count is consumer state, which nats-server persists
lazily: after a ``kill -9`` of the server (fsync always) unacknowledged messages come back as first deliveries,
at once, while the worker that held them may still be inside its create call. ``make chaos`` nats_restart posted
5 of 2,000 returns twice this way (issue 13). So after a reconnect (a new session):

* a message fetched in an earlier session is neither created from nor handed back (``Work.nak`` says why):
  the server delivers it again, and whoever gets it decides in a current session;
* a first delivery that was handed out before may have been attempted: it is looked up first, and not before
  an ERP call of the earlier session could still be running (the ERP deadline after the session began).

"Handed out before" is the target's *fetch mark* in ``rb_cursors``: every worker raises it (compare-and-set) to
the highest stream sequence it was handed before it works on a fetched batch, and each session reads it when
it begins. First deliveries come in stream order, so a server that kept its state never hands out one at or
below the mark: a clean restart of the server (an upgrade) costs the backlog nothing. The mark also covers a
process's first connection, which has no earlier session of its own: after a crash of the whole host (or of
``serve`` with its embedded nats-server) the server forgot its deliveries just the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.bus import subjects

__all__ = ["Sessions"]

log = logging.getLogger(__name__)


class Sessions:
    """Session numbers (the client's reconnect count) and each session's floor in the delivery stream.

    Args:
        js: the worker's JetStream context.
        settle_seconds: the longest an ERP call may run (the ERP deadline plus its margin).
    """

    def __init__(self, js: JetStreamContext, *, settle_seconds: float, target: str) -> None:
        self._js = js
        self._settle = settle_seconds
        self._marks: KeyValue | None = None
        self._mark_key = subjects.cursor_key(target, "fetched")
        # The highest mark this process knows is stored, and that entry's revision (None: read it first).
        self._marked = 0
        self._mark_revision: int | None = None
        # By session: the fetch mark when it began (without marks: the delivery stream's last sequence).
        self._floors: dict[int, int] = {}
        # When each session was first seen here (monotonic).
        self._seen: dict[int, float] = {}

    async def open(self) -> None:
        """Bind the fetch marks (``rb_cursors``); call before the first fetch."""
        try:
            self._marks = await self._js.key_value(subjects.CURSORS_BUCKET)
        except (NatsError, TimeoutError) as exc:
            # Every process ensures the bucket at start-up; without it, a first connection trusts delivery counts.
            log.warning("fetch marks unavailable (%s): a first delivery is trusted as never attempted", exc)
            self._floors[0] = 0

    def current(self) -> int:
        """This session's number: 0 on the process's first connection, +1 on each reconnect."""
        # The JetStream context's client; nats.py gives no public handle, and its stats are the public counter.
        nc = getattr(self._js, "_nc", None)
        stats = getattr(nc, "stats", None) or {}
        session = int(stats.get("reconnects", 0))
        self._seen.setdefault(session, time.monotonic())
        return session

    def is_current(self, session: int) -> bool:
        """False once the connection dropped or came back since ``session`` (a message fetched then is stale)."""
        nc = getattr(self._js, "_nc", None)
        return self.current() == session and bool(getattr(nc, "is_connected", True))

    def staleness(self, session: int) -> Callable[[], bool]:
        """``Work.stale`` for a message fetched in ``session``."""
        return lambda: not self.is_current(session)

    async def refresh(self) -> None:
        """Call before each fetch: reads a new session's floor (one KV read per session)."""
        session = self.current()
        if session in self._floors:
            return
        try:
            if self._marks is not None:
                floor = await self._load_mark()
            else:  # no marks: everything stored before the reconnect
                floor = int((await self._js.stream_info(subjects.DELIVER_STREAM)).state.last_seq or 0)
        except (NatsError, TimeoutError) as exc:
            log.warning("fetch mark unavailable (%s); looking documents up first meanwhile", exc)
            return
        self._floors[session] = floor

    async def mark_fetched(self, msgs: list[Msg]) -> bool:
        """Raise the fetch mark to the highest stream sequence of ``msgs``; False: not recorded (do not work on
        them: a crash now would leave a first delivery that was attempted).

        One KV round trip while this worker raised the mark last (the revision it wrote is the one to replace);
        a read first only after another worker raised it.
        """
        top = max(m.metadata.sequence.stream for m in msgs)
        if self._marks is None or top <= self._marked:
            return True
        try:
            for _ in range(10):  # other workers of the target raise it too
                if self._mark_revision is None:
                    await self._load_mark()
                    if self._marked >= top:
                        return True
                try:
                    if self._mark_revision is None:
                        revision = await self._marks.create(self._mark_key, str(top).encode())
                    else:
                        revision = await self._marks.update(
                            self._mark_key, str(top).encode(), last=self._mark_revision
                        )
                except KeyWrongLastSequenceError:
                    self._mark_revision = None  # another worker raised it: read it again
                    continue
                self._marked, self._mark_revision = top, revision
                return True
        except (NatsError, TimeoutError) as exc:
            log.warning("fetch mark not recorded (%s); the batch is left to redelivery", exc)
            return False
        log.warning("fetch mark contended ten times; the batch is left to redelivery")
        return False

    async def _load_mark(self) -> int:
        """Read the stored mark (0 when none) and remember it with its revision."""
        assert self._marks is not None
        try:
            entry = await self._marks.get(self._mark_key)
        except KeyNotFoundError:  # also a deleted key
            self._mark_revision = None
            return self._marked
        stored = int(entry.value or b"0")
        self._marked, self._mark_revision = max(self._marked, stored), entry.revision
        return stored

    async def maybe_attempted(self, msg: Msg) -> bool:
        """True when an earlier session may have attempted ``msg``; then first waits out that session's calls."""
        session = self.current()
        floor = self._floors.get(session)
        if floor is not None and msg.metadata.sequence.stream > floor:
            return False
        wait = self._seen[session] + self._settle - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # the earlier session's ERP calls end within their deadline
        return True
