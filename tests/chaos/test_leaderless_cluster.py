"""A real 3-node cluster left without quorum: what its streams and KV answer is classified UNAVAILABLE (issue 13).

The stream leader and one follower are killed; the survivor cannot elect a leader alone, so nothing serves the
stream's subjects. A publish (a SubmitReturn's PubAck request, a KV create) then fails with nats.py's
``NoStreamResponseError``, which the leader-loss chaos run answered INTERNAL before ``bus/link.py`` listed it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from helpers.eventually import assert_eventually
from load.stack import NatsNode
from returnbridge.bus.link import as_bus_unavailable


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[NatsNode]]:
    cluster = [NatsNode(f"n{i + 1}", tmp_path / f"n{i + 1}") for i in range(3)]
    for node in cluster:
        node.configure(cluster, sync_always=False)
    try:
        for node in cluster:
            assert node.proc is not None
            node.proc.start()
        for node in cluster:
            assert node.proc is not None
            await node.proc.wait_ready()
        yield cluster
    finally:
        for node in cluster:
            if node.proc is not None:
                node.proc.stop()


@pytest.mark.timeout(180)
async def test_a_stream_and_bucket_without_quorum_answer_bus_unavailable(nodes: list[NatsNode]) -> None:
    nc = await nats.connect(servers=[n.url for n in nodes], connect_timeout=5)
    try:
        js = nc.jetstream(timeout=2)

        async def created() -> None:
            # The meta leader is elected some time after the nodes are ready.
            try:
                await js.add_stream(StreamConfig(name="ELECT", subjects=["elect.>"], num_replicas=3))
                await js.create_key_value(bucket="elect", history=1, replicas=3)
            except (nats.js.errors.APIError, nats.errors.TimeoutError) as exc:
                raise AssertionError(f"cluster not ready: {exc}") from exc

        await assert_eventually(created, timeout=90, interval=0.2)

        async def leaders() -> set[str]:
            found = set()
            for stream in ("ELECT", "KV_elect"):
                info = await js.stream_info(stream)
                assert info.cluster is not None and info.cluster.leader, stream
                found.add(info.cluster.leader)
            return found

        await assert_eventually(leaders, timeout=60, interval=0.2)
        await js.publish("elect.one", b"before")
        kv = await js.key_value("elect")
        await kv.create("before", b"1")
    finally:
        await nc.close()

    # Keep a node that leads neither asset when there is one; its two peers go, so no quorum remains anywhere.
    held = await _leaders_by_name(nodes)
    survivor = next((n for n in nodes if n.name not in held), nodes[0])
    for node in nodes:
        if node is not survivor and node.proc is not None:
            node.proc.kill9()

    nc = await nats.connect(survivor.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=2)
        seen: list[BaseException] = []

        async def refused(subject: str) -> None:
            try:
                await js.publish(subject, b"during")
            except nats.errors.Error as exc:
                seen.append(exc)
                assert isinstance(exc, nats.js.errors.NoStreamResponseError), repr(exc)
                return
            raise AssertionError(f"{subject}: a stream without quorum accepted a write")

        # Until the survivor notices its routes are gone the request may time out instead; then no responders.
        await assert_eventually(lambda: refused("elect.two"), timeout=60, interval=0.2)
        # What KeyValue.put/create send: the bucket's stream is just as leaderless.
        await assert_eventually(lambda: refused("$KV.elect.during"), timeout=60, interval=0.2)
        assert seen and all(as_bus_unavailable(exc) is not None for exc in seen), seen
    finally:
        await nc.close()


async def _leaders_by_name(nodes: list[NatsNode]) -> set[str]:
    nc = await nats.connect(servers=[n.url for n in nodes], connect_timeout=5)
    try:
        js = nc.jetstream(timeout=2)
        return {
            str(info.cluster.leader)
            for info in [await js.stream_info(s) for s in ("ELECT", "KV_elect")]
            if info.cluster is not None and info.cluster.leader
        }
    finally:
        await nc.close()
