"""Alerts on JetStream stream leader elections (``$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.<stream>``).

One process subscribes (the one with ``process.monitor``): the advisory is a plain NATS message every subscriber
receives, so more subscribers would only raise the same incident again (the shared incident records de-duplicate
it anyway). An advisory is not stored: when the monitor's own server is the one that died, it is reconnecting
while the survivors elect and publish, and misses it. So the listener also compares each replicated stream's
leader (``$JS.API.STREAM.LIST``) with the last one it knew, every ``poll_s``, and raises the same alert for an
election it did not hear of.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from returnbridge.bus import subjects
from returnbridge.observability.alerts import Alerter

__all__ = ["LeaderElected", "StreamLeaderListener", "parse_leader_elected"]

log = logging.getLogger(__name__)

_TYPE = "io.nats.jetstream.advisory.v1.stream_leader_elected"


@dataclass(frozen=True, slots=True)
class LeaderElected:
    stream: str
    leader: str
    replicas: tuple[str, ...]
    timestamp: str


def parse_leader_elected(data: bytes) -> LeaderElected | None:
    """The advisory's stream, new leader and replicas; None for anything else (logged, never raised)."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("type") != _TYPE or not body.get("stream"):
        return None
    replicas = body.get("replicas") or []
    names = tuple(str(r.get("name", "")) for r in replicas if isinstance(r, dict))
    return LeaderElected(
        str(body["stream"]), str(body.get("leader", "")), names, str(body.get("timestamp", ""))
    )


class StreamLeaderListener:
    """Raises a ``stream_leader_elected`` warning per stream whose leader changed (de-duplicated per stream), and
    resolves it once the stream saw no further election for ``settle_s`` seconds: an election is an event, and an
    incident left open for good would silence the next one. Elections of a stream within the alerter's
    ``incident_hold_down_s`` after that resolution re-open it quietly (a flapping cluster)."""

    def __init__(
        self,
        nc: NatsClient,
        alerter: Alerter,
        *,
        severity: str = "warning",
        settle_s: float = 60.0,
        poll_s: float = 5.0,
    ) -> None:
        self._nc = nc
        self._alerter = alerter
        self._severity = severity
        self._settle_s = settle_s
        self._poll_s = poll_s
        self._sub: Subscription | None = None
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._settling: dict[str, asyncio.TimerHandle] = {}
        # The leader last seen per replicated stream, from advisories and from the poll.
        self._leaders: dict[str, str] = {}

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(subjects.STREAM_LEADER_ELECTED_ALL, cb=self._on_message)
        self._poller = asyncio.create_task(self._poll(), name="rb-stream-leaders")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for timer in self._settling.values():
            timer.cancel()
        self._settling.clear()
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            try:
                await self.check_leaders()
            except (NatsError, TimeoutError) as exc:  # during an election the API may not answer: next round
                log.info("stream leaders not readable: %s", exc)
            await asyncio.sleep(self._poll_s)

    async def check_leaders(self) -> None:
        """One poll: alert for every replicated stream whose leader changed since the last one known."""
        for info in await self._nc.jetstream().streams_info():
            cluster = info.cluster
            if cluster is None or not cluster.leader:
                continue
            stream, leader = str(info.config.name), str(cluster.leader)
            known = self._leaders.get(stream)
            self._leaders[stream] = leader
            if known is not None and known != leader:
                replicas = tuple(str(r.name) for r in cluster.replicas or [])
                self._elected(LeaderElected(stream, leader, replicas, ""), heard="stream info")

    async def _on_message(self, msg: Msg) -> None:
        event = parse_leader_elected(msg.data)
        if event is None:
            log.warning("unreadable stream leader advisory on %s", msg.subject)
            return
        if event.leader:
            self._leaders[event.stream] = event.leader
        self._elected(event, heard="advisory")

    def _elected(self, event: LeaderElected, *, heard: str) -> None:
        log.warning("stream %s elected a new leader: %s (%s)", event.stream, event.leader or "?", heard)
        # Off the subscription's callback: a slow webhook must not hold up the next advisory.
        task = asyncio.ensure_future(
            self._alerter.alert(
                kind="stream_leader_elected",
                key=event.stream,
                severity=self._severity,
                summary=f"JetStream stream {event.stream} elected a new leader ({event.leader or 'unknown'})",
                details={
                    "stream": event.stream,
                    "leader": event.leader,
                    "replicas": ",".join(event.replicas),
                    "timestamp": event.timestamp,
                },
            )
        )
        self._track(task)
        previous = self._settling.pop(event.stream, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._settling[event.stream] = loop.call_later(self._settle_s, self._settled, event.stream)

    def _settled(self, stream: str) -> None:
        self._settling.pop(stream, None)
        self._track(asyncio.ensure_future(self._alerter.resolve(kind="stream_leader_elected", key=stream)))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
