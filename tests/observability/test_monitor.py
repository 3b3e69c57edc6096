"""QueueMonitor against a real JetStream: gauges follow pending work, backlog alerts fire and resolve."""

from __future__ import annotations

import json

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from prometheus_client import REGISTRY

from helpers.eventually import assert_eventually
from returnbridge.observability.alerts import AlertConfig, Alerter
from returnbridge.observability.monitor import MonitorConfig, QueueMonitor


async def test_gauges_and_backlog_alerts(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name="RB_DELIVER", subjects=["rb.deliver.>"]))
    await js.add_stream(StreamConfig(name="RB_DLQ", subjects=["rb.dlq.>"]))
    await js.add_consumer(
        "RB_DELIVER",
        ConsumerConfig(
            durable_name="rb-deliver-netsuite",
            filter_subject="rb.deliver.netsuite.*",
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    for index in range(5):
        await js.publish("rb.deliver.netsuite.acme", f"work {index}".encode())
    await js.publish("rb.dlq.netsuite.acme", b"dead")

    alerts: list[dict[str, object]] = []

    async def on_alert(msg: Msg) -> None:
        alerts.append(json.loads(msg.data))

    await nats_client.subscribe("rb.alerts.>", cb=on_alert)
    alerter = Alerter(AlertConfig(backlog_threshold=3, backlog_for_s=0), nc=nats_client)
    monitor = QueueMonitor(js, MonitorConfig(interval_s=0.05), alerter=alerter)

    assert await monitor.poll_once() == {"RB_DELIVER/rb-deliver-netsuite": 5, "RB_DLQ": 1}
    labels = {"stream": "RB_DELIVER", "consumer": "rb-deliver-netsuite"}
    assert REGISTRY.get_sample_value("rb_queue_depth", labels) == 5
    assert REGISTRY.get_sample_value("rb_dlq_size") == 1

    sub = await js.pull_subscribe_bind("rb-deliver-netsuite", "RB_DELIVER")
    for msg in await sub.fetch(5, timeout=5):
        await msg.ack_sync()

    monitor.start()
    try:

        async def drained_and_resolved() -> None:
            assert REGISTRY.get_sample_value("rb_queue_depth", labels) == 0
            assert [(a["kind"], a["key"], a["status"]) for a in alerts] == [
                ("backlog", "RB_DELIVER/rb-deliver-netsuite", "firing"),
                ("backlog", "RB_DELIVER/rb-deliver-netsuite", "resolved"),
            ]

        await assert_eventually(drained_and_resolved)
    finally:
        await monitor.stop()


async def test_missing_streams_are_skipped(nats_client: NatsClient) -> None:
    monitor = QueueMonitor(nats_client.jetstream())
    assert await monitor.poll_once() == {}
