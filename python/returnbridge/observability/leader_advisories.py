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
    """Raises one ``stream_leader_elected`` warning per round of elections in the cluster, and resolves it once no
    stream saw an election for ``settle_s`` seconds: an election is an event, and an incident left open for good
    would silence the next one.

    A node that dies led several streams (the delivery stream, the audit log, the KV buckets), and each elects on
    its own: one alert per stream was five pages for one lost node (``make chaos`` leader_loss). So elections
    heard within ``gather_s`` of the first are one alert naming every stream and its new leader, keyed by the
    cluster; later ones until the round settles join it quietly (they are logged). A round within the alerter's
    ``incident_hold_down_s`` after the last one's resolution re-opens it quietly (a flapping cluster).
    """

    def __init__(
        self,
        nc: NatsClient,
        alerter: Alerter,
        *,
        severity: str = "warning",
        settle_s: float = 60.0,
        gather_s: float = 2.0,
        poll_s: float = 5.0,
    ) -> None:
        self._nc = nc
        self._alerter = alerter
        self._severity = severity
        self._settle_s = settle_s
        self._gather_s = min(gather_s, settle_s)
        self._poll_s = poll_s
        self._sub: Subscription | None = None
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # The leader last seen per replicated stream, from advisories and from the poll.
        self._leaders: dict[str, str] = {}
        # The cluster's name from the poll (advisories do not carry it): the incident's key.
        self._cluster = "jetstream"
        # The open round: its key, its elections by stream, its timers and its alert.
        self._round_key: str | None = None
        self._round: dict[str, LeaderElected] = {}
        self._gathering: asyncio.TimerHandle | None = None
        self._settling: asyncio.TimerHandle | None = None
        self._firing: asyncio.Task[bool] | None = None

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
        for timer in (self._gathering, self._settling):
            if timer is not None:
                timer.cancel()
        if self._gathering is not None:
            self._raise()  # an election heard is reported, even when the process stops within the gathering
        self._gathering = self._settling = None
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
        """One poll: an election for every replicated stream whose leader changed since the last one known."""
        for info in await self._nc.jetstream().streams_info():
            cluster = info.cluster
            if cluster is None or not cluster.leader:
                continue
            if cluster.name:
                self._cluster = str(cluster.name)
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
        loop = asyncio.get_running_loop()
        if self._round_key is None:  # a new round (_settled emptied the last one)
            self._round_key = self._cluster
            self._gathering = loop.call_later(self._gather_s, self._raise)
        self._round[event.stream] = event
        if self._settling is not None:
            self._settling.cancel()
        self._settling = loop.call_later(self._settle_s, self._settled)

    def _raise(self) -> None:
        """The round's alert, once its first elections are gathered."""
        self._gathering = None
        assert self._round_key is not None
        events = list(self._round.values())
        leaders = ", ".join(f"{e.stream} -> {e.leader or 'unknown'}" for e in events)
        # Off the subscription's callback: a slow webhook must not hold up the next advisory.
        self._firing = asyncio.ensure_future(
            self._alerter.alert(
                kind="stream_leader_elected",
                key=self._round_key,
                severity=self._severity,
                summary=f"JetStream cluster {self._round_key}: {len(events)} stream(s) elected a new leader "
                f"({leaders})",
                details={
                    "streams": ",".join(e.stream for e in events),
                    "leaders": ",".join(f"{e.stream}={e.leader}" for e in events),
                    "timestamp": next((e.timestamp for e in events if e.timestamp), ""),
                },
            )
        )
        self._track(self._firing)

    def _settled(self) -> None:
        self._settling = None
        if self._gathering is not None:
            self._gathering.cancel()
            self._raise()
        key, firing = self._round_key, self._firing
        self._round_key, self._round, self._firing = None, {}, None
        assert key is not None
        self._track(asyncio.ensure_future(self._resolve(key, firing)))

    async def _resolve(self, key: str, firing: asyncio.Task[bool] | None) -> None:
        if firing is not None:  # the resolution must not overtake its own alert
            await asyncio.gather(firing, return_exceptions=True)
        await self._alerter.resolve(kind="stream_leader_elected", key=key)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
