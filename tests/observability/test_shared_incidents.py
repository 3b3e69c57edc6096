"""One notification per incident across processes: Alerters sharing rb_incidents on a real nats-server, a real
loopback webhook; the NATS-lost degradation, the stream leader advisory and the supervisor's restart alert."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from helpers.alert_webhook import Webhook, alert_webhook
from helpers.eventually import assert_eventually
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.kv import keys_matching
from returnbridge.bus.streams import StreamsConfig, bucket_configs
from returnbridge.observability.alerts import AlertConfig, Alerter, post_webhook
from returnbridge.observability.leader_advisories import StreamLeaderListener, parse_leader_elected


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with alert_webhook() as hook:
        yield hook


class WallClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _bucket(nc: NatsClient, ttl: float = 3600.0) -> KeyValue:
    (config,) = [
        b
        for b in bucket_configs(StreamsConfig(incidents_ttl_seconds=ttl))
        if b.bucket == subjects.INCIDENTS_BUCKET
    ]
    return await nc.jetstream().create_key_value(config)


def _config(url: str, **update: object) -> AlertConfig:
    return AlertConfig(webhook_url=url, publish_nats=False, realert_interval_s=0, **update)  # type: ignore[arg-type]


async def _pair(
    nc: NatsClient, kv: KeyValue, config: AlertConfig, wall: WallClock
) -> tuple[Alerter, Alerter]:
    # Two Alerters as two worker processes would hold them: separate local state, the same bucket.
    return (
        Alerter(config, nc=nc, http=httpx.AsyncClient(), incidents=kv, wall=wall),
        Alerter(config, nc=nc, http=httpx.AsyncClient(), incidents=kv, wall=wall),
    )


OUTAGE = {"kind": "dead_letter", "key": "sap", "severity": "critical", "summary": "SAP returns dead-lettered"}


async def test_two_processes_notify_and_resolve_an_incident_once(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    kv = await _bucket(nats_client)
    first, second = await _pair(nats_client, kv, _config(webhook.url), WallClock())
    results = await asyncio.gather(first.alert(**OUTAGE), second.alert(**OUTAGE))
    assert sorted(results) == [False, True]
    assert await first.alert(**OUTAGE) is False
    assert len(webhook.of("dead_letter", "firing")) == 1
    # Both see it open; both resolve; one resolution goes out.
    assert first.open_incidents() == second.open_incidents() == [("dead_letter", "sap")]
    await asyncio.gather(
        first.resolve(kind="dead_letter", key="sap"), second.resolve(kind="dead_letter", key="sap")
    )
    assert len(webhook.of("dead_letter", "resolved")) == 1
    assert len(webhook.received) == 2
    await first.aclose()
    await second.aclose()


async def test_a_flapping_incident_within_the_hold_down_does_not_notify_again(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    kv = await _bucket(nats_client)
    wall = WallClock()
    first, second = await _pair(nats_client, kv, _config(webhook.url, incident_hold_down_s=60), wall)
    assert await first.alert(**OUTAGE) is True
    await first.resolve(kind="dead_letter", key="sap")
    for _ in range(3):  # flaps, from either process, within the hold-down
        wall.now += 5
        assert await second.alert(**OUTAGE) is False
        await second.resolve(kind="dead_letter", key="sap")
    assert [a["status"] for a in webhook.received] == ["firing", "resolved"]
    # Past the hold-down after its last resolution: a new incident, notified.
    wall.now += 61
    assert await first.alert(**OUTAGE) is True
    assert [a["status"] for a in webhook.received] == ["firing", "resolved", "firing"]
    await first.aclose()
    await second.aclose()


async def test_a_quiet_re_open_that_outlasts_the_hold_down_notifies_once(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    """A blip resolved, then an outage minutes later: quiet at first (it may be flapping), but once it has stayed
    open for the hold-down it is a sustained fault and pages, once, with its resolution. Before, it waited for the
    re-alert interval (an hour by default; never with 0), so a real outage stayed silent."""
    kv = await _bucket(nats_client)
    wall = WallClock()
    clock = MonotonicClock()
    config = _config(webhook.url, incident_hold_down_s=60)
    first, second = (
        Alerter(config, nc=nats_client, http=httpx.AsyncClient(), incidents=kv, wall=wall, clock=clock)
        for _ in range(2)
    )
    assert await first.alert(**OUTAGE) is True
    await first.resolve(kind="dead_letter", key="sap")
    wall.now += 30
    clock.now += 30
    assert await second.alert(**OUTAGE) is False  # re-opened within the hold-down: quiet
    for _ in range(5):  # still failing, from both processes, within the hold-down of the re-open
        wall.now += 10
        clock.now += 10
        assert await first.alert(**OUTAGE) is False
        assert await second.alert(**OUTAGE) is False
    assert [a["status"] for a in webhook.received] == ["firing", "resolved"]
    wall.now += 11  # 61 s open since the re-open
    clock.now += 11
    results = await asyncio.gather(first.alert(**OUTAGE), second.alert(**OUTAGE))
    assert sorted(results) == [False, True]
    wall.now += 10
    clock.now += 10
    assert await first.alert(**OUTAGE) is False and await second.alert(**OUTAGE) is False
    await asyncio.gather(
        first.resolve(kind="dead_letter", key="sap"), second.resolve(kind="dead_letter", key="sap")
    )
    assert [a["status"] for a in webhook.received] == ["firing", "resolved", "firing", "resolved"]
    await first.aclose()
    await second.aclose()


async def test_an_incident_left_open_by_a_crashed_process_expires(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    kv = await _bucket(nats_client, ttl=1.0)
    crashed, survivor = await _pair(nats_client, kv, _config(webhook.url), WallClock())
    assert await crashed.alert(**OUTAGE) is True
    await crashed.aclose()  # gone without resolving
    fresh = Alerter(_config(webhook.url), nc=nats_client, http=httpx.AsyncClient(), incidents=kv)
    assert await fresh.alert(**OUTAGE) is False  # still open: the record holds

    async def expired() -> None:
        # Not kv.keys(): nats.py's watcher can report no keys before the values arrive (nats.py #842).
        keys = await keys_matching(kv, ">")
        assert not keys, f"incident records still held: {keys}"

    await assert_eventually(expired, timeout=30)
    assert await survivor.alert(**OUTAGE) is True
    assert len(webhook.of("dead_letter", "firing")) == 2
    await survivor.aclose()
    await fresh.aclose()


class MonotonicClock(WallClock):
    def __init__(self) -> None:
        self.now = 1000.0


async def test_a_backlog_in_one_process_is_explained_by_an_election_another_process_paged(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    kv = await _bucket(nats_client)
    clock = MonotonicClock()
    config = _config(webhook.url, backlog_threshold=100, backlog_for_s=60)
    monitor = Alerter(config, nc=nats_client, http=httpx.AsyncClient(), incidents=kv)
    # A worker process: it heard of no election itself, only the shared record tells it.
    worker = Alerter(config, nc=nats_client, http=httpx.AsyncClient(), incidents=kv, clock=clock)
    election = {
        "kind": "stream_leader_elected",
        "key": "rb-cluster",
        "severity": "warning",
        "summary": "elected",
    }
    assert await monitor.alert(**election) is True
    for _ in range(5):  # the audit scribe's consumer falls behind while the streams elect
        assert await worker.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=2500) is False
        clock.now += 30
    await monitor.resolve(kind="stream_leader_elected", key="rb-cluster")
    assert await worker.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=2000) is False
    clock.now += 59
    assert await worker.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=1500) is False
    assert webhook.of("backlog", "firing") == []
    # Outliving the election by backlog_for_s: no longer its symptom, a page of its own.
    clock.now += 2
    assert await worker.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=1500) is True
    assert [(a["kind"], a["status"]) for a in webhook.received] == [
        ("stream_leader_elected", "firing"),
        ("stream_leader_elected", "resolved"),
        ("backlog", "firing"),
    ]
    await monitor.aclose()
    await worker.aclose()


async def test_nats_lost_alert_degrades_to_local_dedup(
    nats_server: EmbeddedNatsServer, webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    import nats

    nc = await nats.connect(
        nats_server.url, connect_timeout=5, allow_reconnect=True, max_reconnect_attempts=-1
    )
    kv = await _bucket(nc)
    alerter = Alerter(_config(webhook.url), nc=nc, http=httpx.AsyncClient(), incidents=kv)
    nats_server.stop()

    async def disconnected() -> None:
        assert not nc.is_connected

    await assert_eventually(disconnected, timeout=30)
    lost = {
        "kind": "nats_disconnected",
        "key": "nats",
        "severity": "critical",
        "summary": "NATS connection lost",
    }
    with caplog.at_level(logging.WARNING, logger="returnbridge.observability.alerts"):
        assert await alerter.alert(**lost) is True
        assert await alerter.alert(**lost) is False  # de-duplicated in this process
    assert any("in this process only" in r.getMessage() for r in caplog.records)
    await alerter.resolve(kind="nats_disconnected", key="nats")
    assert [(a["kind"], a["status"]) for a in webhook.received] == [
        ("nats_disconnected", "firing"),
        ("nats_disconnected", "resolved"),
    ]
    await alerter.aclose()
    await nc.close()


LEADER_ELECTED = {
    "type": "io.nats.jetstream.advisory.v1.stream_leader_elected",
    "id": "S7R4Fj6ZfIAzlbKmNLQeJb",
    "timestamp": "2026-12-06T11:40:02.123456789Z",
    "stream": "RB_DELIVER",
    "leader": "n2",
    "replicas": [
        {"name": "n1", "current": True, "active": 812345, "lag": 0},
        {"name": "n3", "current": False, "active": 1912345, "lag": 12},
    ],
    "domain": "",
}


def test_leader_advisory_parsed() -> None:
    event = parse_leader_elected(json.dumps(LEADER_ELECTED).encode())
    assert event is not None
    assert (event.stream, event.leader, event.replicas) == ("RB_DELIVER", "n2", ("n1", "n3"))
    assert parse_leader_elected(b"not json") is None
    assert parse_leader_elected(json.dumps({**LEADER_ELECTED, "type": "other"}).encode()) is None


async def test_leader_elections_of_one_lost_node_raise_one_warning(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    """A node that dies led several streams; each elects on its own, and the operator gets one page naming all."""
    alerter = Alerter(_config(webhook.url), nc=nats_client, http=httpx.AsyncClient())
    listener = StreamLeaderListener(nats_client, alerter, gather_s=0.5)
    await listener.start()
    for stream, leader in (
        ("RB_DELIVER", "n2"),
        ("RB_DELIVER", "n1"),
        ("RB_AUDIT", "n3"),
        ("KV_rb_sync", "n2"),
    ):
        advisory = {**LEADER_ELECTED, "stream": stream, "leader": leader}
        await nats_client.publish(
            f"$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.{stream}", json.dumps(advisory).encode()
        )
    await nats_client.flush()

    async def alerted() -> None:
        assert len(webhook.of("stream_leader_elected", "firing")) == 1

    await assert_eventually(alerted, timeout=30)
    await listener.stop()  # waits for pending alerts: nothing else was in flight
    (alert,) = webhook.received
    assert alert["key"] == "jetstream" and alert["severity"] == "warning"  # a single server: no cluster name
    assert alert["details"] == {
        "streams": "RB_DELIVER,RB_AUDIT,KV_rb_sync",
        "leaders": "RB_DELIVER=n1,RB_AUDIT=n3,KV_rb_sync=n2",
        "timestamp": LEADER_ELECTED["timestamp"],
    }
    assert "3 stream(s) elected a new leader" in alert["summary"]
    await alerter.aclose()


async def test_leader_election_incident_resolves_once_the_stream_settles(
    nats_client: NatsClient, webhook: Webhook
) -> None:
    alerter = Alerter(_config(webhook.url), nc=nats_client, http=httpx.AsyncClient())
    listener = StreamLeaderListener(nats_client, alerter, settle_s=0.2)
    await listener.start()
    await nats_client.publish(
        "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.RB_DELIVER", json.dumps(LEADER_ELECTED).encode()
    )

    async def settled() -> None:
        assert [a["status"] for a in webhook.of_kind("stream_leader_elected")] == ["firing", "resolved"]

    await assert_eventually(settled, timeout=30)
    assert alerter.open_incidents() == []
    await listener.stop()
    await alerter.aclose()


async def test_supervisor_restart_alert_posts_to_the_webhook(webhook: Webhook) -> None:
    sent = await asyncio.to_thread(
        post_webhook,
        _config(webhook.url),
        kind="process_restarted",
        key="worker-1",
        severity="warning",
        summary="worker-1 exited unexpectedly (code -9)",
        details={"exit_code": "-9"},
    )
    assert sent is True
    (alert,) = webhook.received
    assert (alert["kind"], alert["key"], alert["status"]) == ("process_restarted", "worker-1", "firing")
    assert (
        post_webhook(AlertConfig(), kind="process_restarted", key="x", severity="warning", summary="s")
        is False
    )
