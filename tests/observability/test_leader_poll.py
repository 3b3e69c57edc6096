"""A stream leader election the monitor did not hear (its own server died, it was reconnecting while the survivors
published the advisory) is found by comparing leaders, and alerts once like an advisory would: one alert for
every stream the lost node led, keyed by the cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nats.js.api import ClusterInfo, PeerInfo, StreamConfig, StreamInfo, StreamState

from helpers.alert_webhook import Webhook, alert_webhook
from helpers.eventually import assert_eventually
from returnbridge.observability.alerts import AlertConfig, Alerter
from returnbridge.observability.leader_advisories import StreamLeaderListener


class Streams:
    """What $JS.API.STREAM.LIST answers: each stream's current leader (None: a single server, no cluster)."""

    def __init__(self) -> None:
        self.leaders: dict[str, str | None] = {"RB_DELIVER": "n1", "RB_AUDIT": "n2", "LOCAL": None}

    async def streams_info(self) -> list[StreamInfo]:
        return [
            StreamInfo(
                config=StreamConfig(name=name),
                state=StreamState(messages=0, bytes=0, first_seq=0, last_seq=0, consumer_count=0),
                cluster=None
                if leader is None
                else ClusterInfo(
                    name="rb-east",
                    leader=leader,
                    replicas=[PeerInfo(name=p) for p in ("n1", "n2", "n3") if p != leader],
                ),
            )
            for name, leader in self.leaders.items()
        ]


class Client:
    def __init__(self, streams: Streams) -> None:
        self.streams = streams

    def jetstream(self) -> Streams:
        return self.streams


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with alert_webhook() as hook:
        yield hook


async def test_a_leader_change_without_its_advisory_alerts_once(webhook: Webhook) -> None:
    config = AlertConfig(webhook_url=webhook.url, publish_nats=False, realert_interval_s=0)
    alerter = Alerter(config, http=httpx.AsyncClient())
    streams = Streams()
    listener = StreamLeaderListener(Client(streams), alerter, gather_s=0.2)  # type: ignore[arg-type]
    await listener.check_leaders()  # the leaders as the monitor first sees them: nothing to say
    await listener.check_leaders()
    assert webhook.received == []

    # n1 died: the stream it led elects n3 and RB_AUDIT moves too; no advisory reached this process.
    streams.leaders["RB_DELIVER"] = "n3"
    await listener.check_leaders()
    streams.leaders["RB_AUDIT"] = "n3"
    await listener.check_leaders()  # the next poll: the same incident

    async def alerted() -> None:
        assert len(webhook.of("stream_leader_elected", "firing")) == 1

    await assert_eventually(alerted, timeout=30)
    await listener.stop()
    (alert,) = webhook.received
    assert alert["key"] == "rb-east"
    details: dict[str, Any] = alert["details"]
    assert (details["streams"], details["leaders"]) == ("RB_DELIVER,RB_AUDIT", "RB_DELIVER=n3,RB_AUDIT=n3")
    await alerter.aclose()
