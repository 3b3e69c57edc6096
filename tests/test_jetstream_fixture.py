"""The nats-server fixture is a real JetStream: publish with dedup, pull-consume, ack."""

from __future__ import annotations

from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig


async def test_publish_consume_round_trip(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name="T", subjects=["t.>"]))
    first = await js.publish("t.a", b"one", headers={"Nats-Msg-Id": "k1"})
    again = await js.publish("t.a", b"one", headers={"Nats-Msg-Id": "k1"})
    assert again.duplicate and again.seq == first.seq

    sub = await js.pull_subscribe("t.>", durable="worker")
    messages = await sub.fetch(1, timeout=5)
    assert [m.data for m in messages] == [b"one"]
    await messages[0].ack_sync()
    info = await js.consumer_info("T", "worker")
    assert info.num_ack_pending == 0 and info.num_pending == 0
