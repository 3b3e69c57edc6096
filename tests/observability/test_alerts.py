"""Alerter against a real loopback webhook (aiohttp) and a real NATS subscriber."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from helpers.alert_webhook import Webhook, alert_webhook
from helpers.eventually import assert_eventually
from returnbridge.observability.alerts import AlertConfig, Alerter

CUSTOMER_EMAIL = "jane.doe@example.com"


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with alert_webhook() as hook:
        yield hook


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def nats_alerts(nats_client: NatsClient) -> AsyncIterator[list[Msg]]:
    seen: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        seen.append(msg)

    sub = await nats_client.subscribe("rb.alerts.>", cb=on_msg)
    await nats_client.flush()
    try:
        yield seen
    finally:
        await sub.unsubscribe()


async def _alerter(config: AlertConfig, nc: NatsClient | None, clock: FakeClock) -> Alerter:
    return Alerter(config, nc=nc, http=httpx.AsyncClient(), clock=clock)


async def test_alert_goes_to_webhook_and_nats_once_until_resolved(
    webhook: Webhook, nats_client: NatsClient, nats_alerts: list[Msg], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RB_TEST_WEBHOOK_TOKEN", "hook-secret-value-123")
    clock = FakeClock()
    config = AlertConfig(webhook_url=webhook.url, webhook_token_env="RB_TEST_WEBHOOK_TOKEN")
    alerter = await _alerter(config, nats_client, clock)
    try:
        sent = await alerter.alert(
            kind="dead_letter",
            key="netsuite:tenant-a",
            severity="critical",
            summary=f"RMA-1 dead-lettered (customer {CUSTOMER_EMAIL})",
            details={
                "rma_number": "RMA-1",
                "customer_email": CUSTOMER_EMAIL,
                "note": f"mail {CUSTOMER_EMAIL}",
            },
        )
        assert sent is True
        assert len(webhook.received) == 1
        body = webhook.received[0]
        assert body["status"] == "firing" and body["kind"] == "dead_letter" and body["severity"] == "critical"
        assert body["details"] == {
            "rma_number": "RMA-1",
            "customer_email": "[REDACTED]",
            "note": "mail [REDACTED]",
        }
        assert webhook.headers[0]["Authorization"] == "Bearer hook-secret-value-123"

        async def nats_got_one() -> None:
            assert [m.subject for m in nats_alerts] == ["rb.alerts.critical"]

        await assert_eventually(nats_got_one)
        assert CUSTOMER_EMAIL not in json.dumps(webhook.received) + nats_alerts[0].data.decode()

        # Same open incident: not repeated.
        clock.now += 60
        assert (
            await alerter.alert(kind="dead_letter", key="netsuite:tenant-a", severity="critical", summary="x")
            is False
        )
        assert len(webhook.received) == 1
        assert alerter.open_incidents() == [("dead_letter", "netsuite:tenant-a")]

        await alerter.resolve(kind="dead_letter", key="netsuite:tenant-a")
        assert webhook.received[-1]["status"] == "resolved"
        assert alerter.open_incidents() == []
        # Resolving an incident that never alerted sends nothing.
        await alerter.resolve(kind="dead_letter", key="never-opened")
        assert len(webhook.received) == 2

        assert await alerter.alert(
            kind="dead_letter", key="netsuite:tenant-a", severity="critical", summary="again"
        )
        assert len(webhook.received) == 3

        async def nats_got_all() -> None:
            assert len(nats_alerts) == 3

        await assert_eventually(nats_got_all)
    finally:
        await alerter.aclose()


async def test_realert_interval_repeats_an_open_incident(webhook: Webhook) -> None:
    clock = FakeClock()
    alerter = await _alerter(AlertConfig(webhook_url=webhook.url, realert_interval_s=600), None, clock)
    try:
        assert await alerter.alert(kind="erp_auth", key="sap", severity="critical", summary="401 from SAP")
        clock.now += 599
        assert not await alerter.alert(
            kind="erp_auth", key="sap", severity="critical", summary="401 from SAP"
        )
        clock.now += 2
        assert await alerter.alert(kind="erp_auth", key="sap", severity="critical", summary="401 from SAP")
        assert len(webhook.received) == 2
    finally:
        await alerter.aclose()


async def test_global_rate_limit_drops_alerts_over_budget(webhook: Webhook) -> None:
    clock = FakeClock()
    alerter = await _alerter(AlertConfig(webhook_url=webhook.url, max_alerts_per_minute=2), None, clock)
    try:
        results = [
            await alerter.alert(kind="dead_letter", key=f"k{i}", severity="warning", summary="dl")
            for i in range(3)
        ]
        assert results == [True, True, False]
        assert alerter.open_incidents() == [("dead_letter", "k0"), ("dead_letter", "k1")]
        clock.now += 30  # one token refills at 2/minute
        assert await alerter.alert(kind="dead_letter", key="k2", severity="warning", summary="dl")
        assert len(webhook.received) == 3
    finally:
        await alerter.aclose()


async def test_erp_unreachable_alerts_only_after_threshold(webhook: Webhook) -> None:
    clock = FakeClock()
    alerter = await _alerter(AlertConfig(webhook_url=webhook.url, erp_unreachable_after_s=300), None, clock)
    try:
        assert not await alerter.alert(
            kind="erp_unreachable", key="oracle", severity="warning", summary="down"
        )
        clock.now += 299
        assert not await alerter.alert(
            kind="erp_unreachable", key="oracle", severity="warning", summary="down"
        )
        clock.now += 2
        assert await alerter.alert(kind="erp_unreachable", key="oracle", severity="warning", summary="down")
        await alerter.resolve(kind="erp_unreachable", key="oracle")
        # Recovery resets the clock: a new outage must last the threshold again.
        assert not await alerter.alert(
            kind="erp_unreachable", key="oracle", severity="warning", summary="down"
        )
        assert [b["status"] for b in webhook.received] == ["firing", "resolved"]
    finally:
        await alerter.aclose()


async def test_backlog_threshold_fires_and_resolves(webhook: Webhook) -> None:
    clock = FakeClock()
    config = AlertConfig(webhook_url=webhook.url, backlog_threshold=100, backlog_for_s=300)
    alerter = await _alerter(config, None, clock)
    try:
        assert not await alerter.check_backlog(key="RB_DELIVER/netsuite", depth=100)
        assert not await alerter.check_backlog(key="RB_DELIVER/netsuite", depth=101)
        clock.now += 300
        assert await alerter.check_backlog(key="RB_DELIVER/netsuite", depth=101)
        assert not await alerter.check_backlog(key="RB_DELIVER/netsuite", depth=500)
        assert not await alerter.check_backlog(key="RB_DELIVER/netsuite", depth=3)
        assert [(b["kind"], b["status"]) for b in webhook.received] == [
            ("backlog", "firing"),
            ("backlog", "resolved"),
        ]
        assert webhook.received[0]["details"] == {"depth": "101", "threshold": "100", "for_s": "300"}
    finally:
        await alerter.aclose()


async def test_a_backlog_that_drains_within_backlog_for_s_pages_nobody(webhook: Webhook) -> None:
    clock = FakeClock()
    config = AlertConfig(webhook_url=webhook.url, backlog_threshold=100, backlog_for_s=300)
    alerter = await _alerter(config, None, clock)
    try:
        for _ in range(6):  # a peak: above the threshold for 299 s, checked every minute
            assert not await alerter.check_backlog(key="RB_DELIVER/sap", depth=5000)
            clock.now += 59.8
        assert not await alerter.check_backlog(key="RB_DELIVER/sap", depth=40)
        # Above again: the clock starts over, it is a new backlog.
        assert not await alerter.check_backlog(key="RB_DELIVER/sap", depth=101)
        clock.now += 299
        assert not await alerter.check_backlog(key="RB_DELIVER/sap", depth=101)
        assert webhook.received == []
        assert alerter.open_incidents() == []
    finally:
        await alerter.aclose()


@pytest.mark.parametrize(
    "cause",
    [
        {"kind": "stream_leader_elected", "key": "rb-cluster"},
        {"kind": "nats_disconnected", "key": "nats"},
        {"kind": "erp_unreachable", "key": "sap"},  # failing, not yet paged: its own alert is not due
    ],
)
async def test_a_backlog_while_its_cause_is_open_is_that_incident_not_a_second_page(
    webhook: Webhook, cause: dict[str, str]
) -> None:
    clock = FakeClock()
    config = AlertConfig(
        webhook_url=webhook.url, backlog_threshold=100, backlog_for_s=300, erp_unreachable_after_s=3600
    )
    alerter = await _alerter(config, None, clock)
    try:
        await alerter.alert(**cause, severity="warning", summary="the cause")
        causes_paged = len(webhook.received)
        for _ in range(10):  # the cause lasts 10 minutes; the backlog it leaves stands all along
            assert not await alerter.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=5000)
            clock.now += 60
        await alerter.resolve(kind=cause["kind"], key=cause["key"])
        # Recovering: the backlog pages only if it outlives its cause by backlog_for_s.
        assert not await alerter.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=4000)
        clock.now += 299
        assert not await alerter.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=3000)
        assert [b["kind"] for b in webhook.received if b["status"] == "firing"].count("backlog") == 0
        clock.now += 2
        assert await alerter.check_backlog(key="RB_DELIVER/rb-audit-submitted", depth=3000)
        firing = [b["kind"] for b in webhook.received if b["status"] == "firing"]
        assert firing == [cause["kind"]] * causes_paged + ["backlog"]
    finally:
        await alerter.aclose()


async def test_failed_webhook_still_publishes_to_nats(
    webhook: Webhook, nats_client: NatsClient, nats_alerts: list[Msg]
) -> None:
    webhook.fail_with = 500
    alerter = await _alerter(AlertConfig(webhook_url=webhook.url), nats_client, FakeClock())
    try:
        assert await alerter.alert(
            kind="erp_auth", key="netsuite", severity="warning", summary="token refused"
        )

        async def delivered() -> None:
            assert [m.subject for m in nats_alerts] == ["rb.alerts.warning"]

        await assert_eventually(delivered)
    finally:
        await alerter.aclose()


async def test_all_sinks_failing_leaves_incident_open_for_retry(webhook: Webhook) -> None:
    webhook.fail_with = 503
    alerter = await _alerter(AlertConfig(webhook_url=webhook.url), None, FakeClock())
    try:
        assert not await alerter.alert(kind="dead_letter", key="k", severity="critical", summary="dl")
        assert alerter.open_incidents() == []
        webhook.fail_with = 0
        assert await alerter.alert(kind="dead_letter", key="k", severity="critical", summary="dl")
    finally:
        await alerter.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "disk_full", "key": "k", "severity": "critical"}, "unknown alert kind"),
        ({"kind": "backlog", "key": "k", "severity": "page"}, "unknown alert severity"),
        ({"kind": "backlog", "key": "", "severity": "info"}, "key must not be empty"),
    ],
)
async def test_bad_alert_input_is_refused(kwargs: dict[str, str], message: str) -> None:
    alerter = Alerter(AlertConfig(), clock=FakeClock())
    with pytest.raises(ValueError, match=message):
        await alerter.alert(summary="s", **kwargs)


async def test_slow_webhook_neither_duplicates_nor_blocks_other_alerts() -> None:
    gate = asyncio.Event()
    hook_entered = asyncio.Event()
    received: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        received.append(f"{body['kind']}:{body['key']}:{body['status']}")
        if body["key"] == "slow":
            hook_entered.set()
            await gate.wait()
        return httpx.Response(204)

    alerter = Alerter(
        AlertConfig(webhook_url="http://127.0.0.1:9/alerts", publish_nats=False),
        http=httpx.AsyncClient(transport=httpx.MockTransport(slow)),
        clock=FakeClock(),
    )
    try:
        first = asyncio.ensure_future(
            alerter.alert(kind="dead_letter", key="slow", severity="critical", summary="a")
        )
        await hook_entered.wait()
        # While the first delivery hangs: the same incident is deduplicated, another goes straight through.
        assert not await alerter.alert(kind="dead_letter", key="slow", severity="critical", summary="a")
        assert await alerter.alert(kind="erp_auth", key="fast", severity="warning", summary="b")
        gate.set()
        assert await first
        assert received == ["dead_letter:slow:firing", "erp_auth:fast:firing"]
    finally:
        await alerter.aclose()
