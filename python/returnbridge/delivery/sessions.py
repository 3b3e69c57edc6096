"""The worker's NATS sessions: which delivery messages an earlier session may have had in flight at the ERP.

The worker looks an ERP document up before creating it when an earlier attempt may have reached the ERP, and
learnt that from JetStream's delivery count alone. That count is consumer state, which nats-server persists
lazily: after a ``kill -9`` of the server (fsync always) unacknowledged messages come back as first deliveries,
at once, while the worker that held them may still be inside its create call. ``make chaos`` nats_restart posted
5 of 2,000 returns twice this way (issue 13). So after a reconnect (a new session):

* a message fetched in an earlier session is neither created from nor handed back (``Work.nak`` says why):
  the server delivers it again, and whoever gets it decides in a current session;
* a message stored before the session began may have been attempted: it is looked up first, and not before an
  ERP call of the earlier session could still be running (the ERP deadline after the session began).

The first connection of a process trusts the delivery count as before (a server that kept its state redelivers
only after the ack wait, longer than any ERP call), so a normal start costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from returnbridge.bus import subjects

__all__ = ["Sessions"]

log = logging.getLogger(__name__)


class Sessions:
    """Session numbers (the client's reconnect count) and each session's floor in the delivery stream.

    Args:
        js: the worker's JetStream context.
        settle_seconds: the longest an ERP call may run (the ERP deadline plus its margin).
    """

    def __init__(self, js: JetStreamContext, *, settle_seconds: float) -> None:
        self._js = js
        self._settle = settle_seconds
        # The delivery stream's last sequence when a session began, by session; session 0 needs none.
        self._floors: dict[int, int] = {0: 0}
        # When each session was first seen here (monotonic).
        self._seen: dict[int, float] = {}

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
        """Call before each fetch: reads a new session's floor (one stream info request per session)."""
        session = self.current()
        if session in self._floors:
            return
        try:
            info = await self._js.stream_info(subjects.DELIVER_STREAM)
        except (NatsError, TimeoutError) as exc:
            log.warning("delivery stream info unavailable (%s); looking documents up first meanwhile", exc)
            return
        self._floors[session] = int(info.state.last_seq or 0)

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
