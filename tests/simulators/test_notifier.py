"""A simulator's change notifications: signed, sent in the background, retried, bounded, configurable.

The receiving end here is a small real HTTP server that checks signatures with the shared scheme and answers
what the test tells it to; the simulator is a real one changing its own stock.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from returnbridge.cli import _notifier_config, build_parser
from returnbridge.simulators import sap
from returnbridge.simulators.kit import RunningSimulator, SimulatorKit
from returnbridge.simulators.notifier import NotifierConfig
from returnbridge.webhook_signing import read_headers, signature_matches

SECRET = "0123456789abcdef0123456789abcdef"


@dataclass
class Inbox:
    """Answers each POST with the next status in ``answers`` (then 202) and keeps the verified bodies."""

    answers: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # When set, each POST waits for it to open before answering: a receiver that is slow on request.
    gate: asyncio.Event | None = None
    holding: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.read()
        if self.gate is not None:
            self.holding.set()
            await self.gate.wait()
        assert signature_matches(SECRET.encode(), read_headers(request.headers), body)
        status = self.answers.pop(0) if self.answers else 202
        if status == 202:
            self.bodies.append(json.loads(body))
            self.arrived.set()
        return web.json_response({}, status=status)


@dataclass
class Setup:
    kit: SimulatorKit
    sim_url: str
    inbox: Inbox
    inbox_url: str


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    inbox = Inbox()
    app = web.Application()
    app.add_routes([web.post("/hook", inbox.handle)])
    receiver = await RunningSimulator(app).start()
    sim_app, kit = sap.create_app()
    sim = await RunningSimulator(sim_app).start()
    try:
        yield Setup(kit, sim.url, inbox, receiver.url + "/hook")
    finally:
        await sim.stop()
        await receiver.stop()


def _config(setup: Setup, **changes: Any) -> NotifierConfig:
    values: dict[str, Any] = {"enabled": True, "url": setup.inbox_url, "key_id": "k-sap", "secret": SECRET}
    return NotifierConfig(**(values | changes))


async def test_a_stock_change_is_sent_as_a_signed_sap_business_event(setup: Setup) -> None:
    setup.kit.notifier.configure(_config(setup))
    setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(3))
    await setup.kit.notifier.idle()
    (event,) = setup.inbox.bodies
    assert event["specversion"] == "1.0"
    assert event["type"] == "sap.s4.beh.materialstock.v1.MaterialStock.Changed.v1"
    assert event["data"] == {"Material": "SKU-1001", "Plant": "DAL1", "StorageLocation": "0001"}
    assert event["id"] and event["time"].endswith("Z")


async def test_off_by_default_and_nothing_is_queued(setup: Setup) -> None:
    setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(3))
    assert setup.kit.notifier.stats.queued == 0
    assert setup.inbox.attempts == 0


async def test_5xx_and_connection_errors_are_retried_with_backoff(setup: Setup) -> None:
    setup.inbox.answers = [503, 500]
    setup.kit.notifier.configure(_config(setup, backoff_seconds=0.01))
    setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
    await setup.kit.notifier.idle()
    assert setup.inbox.attempts == 3 and len(setup.inbox.bodies) == 1
    assert setup.kit.notifier.stats.sent == 1


async def test_a_4xx_is_final_and_counted(setup: Setup) -> None:
    setup.inbox.answers = [401]
    setup.kit.notifier.configure(_config(setup))
    setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
    await setup.kit.notifier.idle()
    assert setup.inbox.attempts == 1
    assert setup.kit.notifier.stats.refused == 1 and "401" in setup.kit.notifier.stats.last_error


async def test_an_unreachable_receiver_gives_up_after_max_attempts_without_failing_the_erp(
    setup: Setup,
) -> None:
    setup.kit.notifier.configure(
        _config(
            setup, url="http://127.0.0.1:9/closed", max_attempts=2, backoff_seconds=0.01, timeout_seconds=1
        )
    )
    qty = setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))  # returns at once
    assert qty == setup.kit.state.stock[("SKU-1001", "DAL1", "0001")]
    await setup.kit.notifier.idle()
    assert setup.kit.notifier.stats.failed == 1


async def test_a_full_queue_drops_and_counts_instead_of_blocking(setup: Setup) -> None:
    setup.kit.notifier.configure(_config(setup, queue_size=2, coalesce=False))
    for _ in range(10):  # no await in between: the sender cannot drain the queue meanwhile
        setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
    stats = setup.kit.notifier.stats
    assert stats.queued == 2 and stats.dropped_queue_full == 8
    await setup.kit.notifier.idle()
    assert len(setup.inbox.bodies) == 2


async def test_changes_to_a_key_queued_behind_a_slow_receiver_merge_into_the_latest(setup: Setup) -> None:
    setup.inbox.gate = asyncio.Event()
    notifier, state = setup.kit.notifier, setup.kit.state
    notifier.configure(_config(setup, concurrency=1))
    a, b = ("SKU-1001", "DAL1", "0001"), ("SKU-1002", "DAL1", "0001")
    state.adjust_stock(*a, Decimal(1))
    await setup.inbox.holding.wait()  # the first notification is in the receiver, which does not answer
    state.adjust_stock(*a, Decimal(1))  # queued
    state.adjust_stock(*b, Decimal(1))  # another key: its own notification, after a's
    b_changed = time.time()
    while time.time() < b_changed + 0.002:  # the event times have millisecond resolution: a's are later
        pass
    for _ in range(20):
        state.adjust_stock(*a, Decimal(1))  # merged into a's queued one
    assert notifier.stats.queued == 3 and notifier.stats.coalesced == 20
    setup.inbox.gate.set()
    await notifier.idle()
    assert setup.inbox.attempts == 3 and notifier.stats.sent == 3
    materials = [(e["data"]["Material"], e["time"]) for e in setup.inbox.bodies]
    assert [m for m, _ in materials] == ["SKU-1001", "SKU-1001", "SKU-1002"]
    # a's second notification is the latest of the 21 changes it stands for, not the first: later than b's.
    assert materials[1][1] > materials[2][1]
    # A change after the merged one was taken is a new notification again.
    state.adjust_stock(*a, Decimal(1))
    await notifier.idle()
    assert setup.inbox.attempts == 4 and notifier.stats.coalesced == 20


async def test_without_coalescing_every_change_is_its_own_notification(setup: Setup) -> None:
    setup.inbox.gate = asyncio.Event()
    setup.kit.notifier.configure(_config(setup, concurrency=1, coalesce=False))
    for _ in range(5):
        setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
    setup.inbox.gate.set()
    await setup.kit.notifier.idle()
    assert setup.inbox.attempts == 5 and setup.kit.notifier.stats.coalesced == 0


async def test_control_route_configures_and_reports_without_the_secret(setup: Setup) -> None:
    async with aiohttp.ClientSession() as session:
        url = setup.sim_url + "/_sim/notifications"
        async with session.put(
            url, json={"enabled": True, "url": setup.inbox_url, "key_id": "k", "secret": SECRET}
        ) as r:
            assert r.status == 200
        async with session.put(url, json={"drop_rate": 2}) as r:
            assert r.status == 400 and "drop_rate" in (await r.json())["error"]
        async with session.put(url, json={"url": "ftp://x"}) as r:
            assert r.status == 400
        async with session.put(url, json=["not", "an", "object"]) as r:
            assert r.status == 400
        setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
        await setup.kit.notifier.idle()
        async with session.get(url) as r:
            shown = await r.json()
    assert shown["config"]["secret_set"] is True and SECRET not in json.dumps(shown)
    assert shown["stats"]["sent"] == 1


async def test_a_reset_keeps_notifying(setup: Setup) -> None:
    setup.kit.notifier.configure(_config(setup))
    setup.kit.reset()
    await setup.kit.notifier.idle()
    before = len(setup.inbox.bodies)
    setup.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal(1))
    await setup.kit.notifier.idle()
    assert len(setup.inbox.bodies) == before + 1


def test_simulate_notify_switches(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    config = _notifier_config(
        build_parser().parse_args(
            ["simulate", "--notify-url", "http://127.0.0.1:1/x", "--notify-secret-file", str(secret)]
        )
    )
    assert config.ready() and config.secret.get_secret_value() == SECRET
    assert _notifier_config(build_parser().parse_args(["simulate"])) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--notify-url", "http://127.0.0.1:1/x"], "needs --notify-secret-file"),
        (["--notify-secret-file", "s"], "needs --notify-url"),
        (["--notify-url", "http://127.0.0.1:1/x", "--notify-secret-file", "missing"], "cannot read"),
        (["--notify-url", "http://127.0.0.1:1/x", "--notify-secret-file", "short"], "at least 16 bytes"),
        (["--notify-url", "ftp://x", "--notify-secret-file", "s"], "--notify-url"),
    ],
)
def test_simulate_notify_switch_errors_name_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s").write_text(SECRET)
    (tmp_path / "short").write_text("tiny")
    with pytest.raises(SystemExit, match=message):
        _notifier_config(build_parser().parse_args(["simulate", *argv]))
