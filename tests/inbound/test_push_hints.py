"""Pushes are hints: duplicated, reordered or lost notifications change nothing twice and lose nothing.

The poller reads the ERP's own feed from its cursor whatever a notification says, so a duplicate wakes a
poll that finds nothing new (or is refused as a duplicate), a late one likewise, and a lost one is caught by
the next scheduled poll. A restart of the service mid-feed resumes from the stored cursors.
"""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from pathlib import Path

import aiohttp
import nats
import pytest
from aiohttp import web

from helpers.eventually import assert_eventually
from inbound.stack import ERP_OF, TARGETS, TENANT, InventoryWatch, Stack, push_count, stack
from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.kv import keys_matching
from returnbridge.simulators.kit import RunningSimulator


def _values(watch: InventoryWatch, like: inventory_pb2.InventoryLevel) -> list[Decimal]:
    """The levels announced for ``like``'s location and target (another ERP may stock the same SKU there)."""
    return [
        Decimal(level.on_hand)
        for level in watch.levels
        if level.location == like.location and level.target == like.target
    ]


@pytest.mark.parametrize("sim", ["sap", "netsuite", "oracle"])
async def test_duplicated_and_reordered_notifications_change_nothing_twice(
    sim: str, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    async with stack(tmp_path, nats_server.url, interval=3600, push=True) as running:
        # Each change its own notification (no coalescing), each sent twice.
        await running.configure_notifier(sim, duplicate_rate=1.0, reorder_rate=0.5, seed=7, coalesce=False)
        key = running.stock_key(sim)
        watch = InventoryWatch(running, key[0])
        try:
            # Every location is seeded alike: a level no other location has tells which one this key is.
            anchor = await running.adjust(sim, key, Decimal(1000))
            first = await watch.wait_for(lambda level: Decimal(level.on_hand) == anchor)
            for _ in range(5):
                await running.adjust(sim, key, Decimal(1))
            notifier = running.sims.kits[sim].notifier
            await notifier.idle(timeout=30)
            # A barrier: the feed polls one at a time, so once this change is visible every poll the earlier
            # notifications woke has finished.
            barrier = await running.adjust(sim, key, Decimal(100))
            await watch.wait_for(lambda level: Decimal(level.on_hand) == barrier)
            values = _values(watch, first)
            assert len(values) == len(set(values)), values  # no level announced twice
            assert values == sorted(values)  # and never an older level after a newer one
            assert notifier.stats.duplicated_by_test >= 5
            assert notifier.stats.duplicate_acks >= 5  # the receiver recognised each copy
            assert notifier.stats.refused == 0 and notifier.stats.failed == 0
        finally:
            await watch.close()


class SlowDoor:
    """A real HTTP hop in front of the receiver that holds every notification until ``gate`` opens."""

    def __init__(self, target_url: str) -> None:
        self.target_url = target_url
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()
        self.posts = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.posts += 1
        body = await request.read()
        self.holding.set()
        await self.gate.wait()
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.target_url, data=body, headers=dict(request.headers)) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type="application/json"
            )


async def test_a_backlog_behind_a_slow_receiver_merges_and_the_last_state_arrives(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    # No scheduled poll in the test's lifetime: whatever reaches the watcher came by push.
    async with stack(tmp_path, nats_server.url, interval=3600, push=True) as running:
        assert running.app is not None
        door = SlowDoor(running.app.endpoints.inbound)
        app = web.Application()
        app.add_routes([web.post("/hook", door.handle)])
        proxy = await RunningSimulator(app).start()
        key = running.stock_key("sap")
        watch = InventoryWatch(running, key[0])
        try:
            await running.configure_notifier("sap", url=proxy.url + "/hook", concurrency=1)
            notifier = running.sims.kits["sap"].notifier
            anchor = await running.adjust("sap", key, Decimal(1000))
            await door.holding.wait()  # the first notification is held at the door
            for _ in range(30):
                last = await running.adjust("sap", key, Decimal(1))
            assert notifier.stats.coalesced == 29  # one notification queued for the 30 changes
            door.gate.set()
            await watch.wait_for(lambda level: Decimal(level.on_hand) == last)
            await notifier.idle(timeout=30)
            assert door.posts == 2 and notifier.stats.sent == 2
            assert notifier.stats.refused == 0 and notifier.stats.failed == 0
            assert last == anchor + 30
        finally:
            await watch.close()
            await proxy.stop()


async def test_a_lost_notification_is_caught_by_the_next_poll(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    async with stack(tmp_path, nats_server.url, interval=0.5, push=True) as running:
        await running.configure_notifier("netsuite", drop_rate=1.0)
        key = running.stock_key("netsuite")
        watch = InventoryWatch(running, key[0])
        try:
            await watch.wait_for(lambda level: Decimal(level.on_hand) == running.on_hand("netsuite", key))
            pushed = push_count(ERP_OF["netsuite"])
            after = await running.adjust("netsuite", key, Decimal(9))
            await watch.wait_for(lambda level: Decimal(level.on_hand) == after)
            assert running.sims.kits["netsuite"].notifier.stats.dropped_by_test >= 1
            assert push_count(ERP_OF["netsuite"]) == pushed
        finally:
            await watch.close()


async def _inventory_events(nats_url: str) -> dict[str, list[bytes]]:
    """Every rb.inventory event ever published for the tenant, by inventory key, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(
            subjects.inventory(TENANT), stream=subjects.EVENTS_STREAM, ordered_consumer=True
        )
        pending = (await sub.consumer_info()).num_pending
        by_key: dict[str, list[bytes]] = {}
        for _ in range(pending):
            msg = await sub.next_msg(timeout=10)
            level = inventory_pb2.InventoryLevel.FromString(msg.data)
            by_key.setdefault(
                subjects.inventory_key(
                    TENANT, level.sku, level.location.site, level.location.sub_location, level.target
                ),
                [],
            ).append(msg.data)
        await sub.unsubscribe()
        return by_key
    finally:
        await nc.close()


async def _stored_on_hand(running: Stack, sim: str, key: tuple[str, str, str]) -> None:
    """The ERP's current level of ``key`` is what the RMS side stores (some location of its SKU and target)."""
    assert running.app is not None and running.app.nc is not None
    kv = await running.app.nc.jetstream().key_value(subjects.INVENTORY_BUCKET)
    want = running.on_hand(sim, key)
    for name in await keys_matching(kv, ">"):
        level = inventory_pb2.InventoryLevel.FromString((await kv.get(name)).value or b"")
        if level.sku == key[0] and level.target == TARGETS[sim] and Decimal(level.on_hand) == want:
            return
    raise AssertionError(f"{sim} {key}: the ERP's {want} is not stored")


async def test_a_restart_mid_feed_loses_and_duplicates_nothing(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    async with stack(tmp_path, nats_server.url, interval=0.5, push=True) as running:
        keys = {sim: running.stock_key(sim) for sim in TARGETS}

        async def burst(n: int) -> None:
            for i in range(n):
                for sim, key in keys.items():
                    await running.adjust(sim, key, Decimal(1 + i % 3))

        await burst(5)
        await running.stop_app()  # mid-feed: pushes now fail, changes keep coming
        await burst(5)
        await running.start_app()
        await burst(5)
        for sim, key in keys.items():
            await assert_eventually(lambda sim=sim, key=key: _stored_on_hand(running, sim, key), timeout=30)
        events = await _inventory_events(nats_server.url)
        for key_name, history in events.items():
            # Each announced level differs from the one before it: nothing was published twice.
            assert all(a != b for a, b in itertools.pairwise(history)), key_name
