"""``keys_matching`` lists exactly the live keys a pattern matches, also under load (it returned [] before)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from returnbridge.bus import subjects
from returnbridge.bus.kv import keys_matching, values_matching
from returnbridge.bus.streams import ensure_streams

PullSubscription = JetStreamContext.PullSubscription


async def test_keys_matching_is_complete_under_concurrent_listing_and_writes(nats_client: NatsClient) -> None:
    kv = (await ensure_streams(nats_client.jetstream()))[subjects.INVENTORY_BUCKET]
    expected = {f"acme.k{i}" for i in range(300)}
    for start in range(0, 300, 50):
        await asyncio.gather(*(kv.put(f"acme.k{i}", b"1") for i in range(start, start + 50)))
    await kv.put("other.k1", b"1")
    stop = asyncio.Event()

    async def writer(prefix: str) -> None:
        n = 0
        while not stop.is_set():
            # Traffic on the bucket: other keys, and new revisions of the listed keys (history 1 drops the old one).
            await kv.put(f"{prefix}{n % 300 if prefix == 'acme.k' else n % 20}", b"x")
            n += 1

    writers = [asyncio.create_task(writer(p)) for p in ("other.w", "other.w", "acme.k", "acme.k")]
    try:
        for _ in range(3):
            results = await asyncio.gather(*(keys_matching(kv, "acme.*") for _ in range(40)))
            for result in results:
                assert set(result) == expected and len(result) == len(expected)
    finally:
        stop.set()
        await asyncio.gather(*writers)


async def test_keys_matching_leaves_out_deleted_and_purged_keys(nats_client: NatsClient) -> None:
    kv = (await ensure_streams(nats_client.jetstream()))[subjects.INVENTORY_BUCKET]
    for key in ("t.a", "t.b", "t.c", "u.a"):
        await kv.put(key, b"1")
    await kv.delete("t.b")
    await kv.purge("t.c")
    assert await keys_matching(kv, "t.*") == ["t.a"]
    assert await keys_matching(kv, "t.>") == ["t.a"]
    await kv.delete("t.a")
    assert await keys_matching(kv, "t.*") == []
    assert await keys_matching(kv, "nobody.*") == []
    await kv.put("t.b", b"2")
    assert await keys_matching(kv, "t.*") == ["t.b"]


async def test_values_matching_reads_each_live_value_once(nats_client: NatsClient) -> None:
    kv = (await ensure_streams(nats_client.jetstream()))[subjects.SYNC_STATE_BUCKET]
    for i in range(120):
        await kv.put(f"acme.r{i}", b"v1")
        await kv.put(f"acme.r{i}", f"v2-{i}".encode())  # history 5: only the latest counts
    await kv.delete("acme.r7")
    results = await asyncio.gather(*(values_matching(kv, ">") for _ in range(20)))
    expected = {f"acme.r{i}": f"v2-{i}".encode() for i in range(120) if i != 7}
    assert all(result == expected for result in results)


async def test_a_listing_whose_consumer_is_lost_starts_over(
    nats_client: NatsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The listing's consumer is R1: in a cluster its node can go (the leader-loss chaos run's checker got a 503
    # from the fetch). Here the real server loses it between two batches; the listing must still be complete.
    kv = (await ensure_streams(nats_client.jetstream()))[subjects.SYNC_STATE_BUCKET]
    expected = {f"lost.r{i}": f"v{i}".encode() for i in range(700)}  # two batches
    for start in range(0, 700, 100):
        await asyncio.gather(*(kv.put(k, v) for k, v in list(expected.items())[start : start + 100]))
    fetch, lost = PullSubscription.fetch, []

    async def fetch_losing_the_consumer_once(self: PullSubscription, *args: Any, **kwargs: Any) -> Any:
        messages = await fetch(self, *args, **kwargs)
        if not lost:
            lost.append(self._consumer)
            await nats_client.jetstream().delete_consumer(self._stream, self._consumer)
        return messages

    monkeypatch.setattr(PullSubscription, "fetch", fetch_losing_the_consumer_once)
    assert await values_matching(kv, "lost.>", timeout=30) == expected
    assert lost
