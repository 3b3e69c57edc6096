"""The served app's own alerts: ``nats_disconnected`` when its NATS link drops (and resolved when it is back), and
the supervisor's ``process_restarted`` for a child that exited, posted to a real loopback webhook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpers.alert_webhook import Webhook, alert_webhook
from helpers.app import local_settings, running
from helpers.eventually import assert_eventually
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.config import Settings, load_settings
from returnbridge.supervisor import Supervisor, _Child


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    async with alert_webhook() as hook:
        yield hook


def _monitor_settings(tmp_path: Path, nats_url: str, webhook: Webhook, **alerts: object) -> Settings:
    """A monitoring process only (no gateway, workers or polling) alerting to ``webhook``."""
    return local_settings(
        tmp_path / "data",
        nats_url,
        nats={"url": nats_url, "durability_check": "skip"},
        metrics={"enabled": False},
        simulators={"enabled": False},
        process={"workers": [], "gateway": False, "sync": False, "monitor": True},
        alerts={"webhook_url": webhook.url, "publish_nats": False, **alerts},
    )


async def test_lost_nats_connection_alerts_once_and_resolves(
    tmp_path: Path, nats_server: EmbeddedNatsServer, webhook: Webhook
) -> None:
    settings = _monitor_settings(tmp_path, nats_server.url, webhook)
    async with running(settings):
        nats_server.stop()

        async def fired() -> None:
            assert [(a["kind"], a["status"]) for a in webhook.received] == [("nats_disconnected", "firing")]

        await assert_eventually(fired, timeout=30)
        nats_server.start()

        async def resolved() -> None:
            assert [(a["kind"], a["status"]) for a in webhook.received] == [
                ("nats_disconnected", "firing"),
                ("nats_disconnected", "resolved"),
            ]

        await assert_eventually(resolved, timeout=60)


async def test_a_link_back_within_the_grace_pages_nobody(
    tmp_path: Path, nats_server: EmbeddedNatsServer, webhook: Webhook
) -> None:
    # As a client whose cluster node died fails over to another: the link drops and is back at once.
    settings = _monitor_settings(tmp_path, nats_server.url, webhook, nats_disconnected_after_s=30)
    async with running(settings) as app:
        assert app.nc is not None
        nats_server.stop()

        async def dropped() -> None:
            assert app.nc is not None and not app.nc.is_connected

        await assert_eventually(dropped, timeout=30)
        nats_server.start()

        async def back() -> None:
            assert app.nc is not None and app.nc.is_connected

        await assert_eventually(back, timeout=60)
        await asyncio.sleep(1.0)  # time for a firing to reach the webhook, had it been sent
        assert webhook.received == []


async def test_supervisor_alerts_a_restarted_child_once_per_crash_loop(
    tmp_path: Path, webhook: Webhook
) -> None:
    settings = load_settings(
        None, env={}, overrides={"data_dir": str(tmp_path), "alerts": {"webhook_url": webhook.url}}
    )
    supervisor = Supervisor(settings)
    child = _Child("worker-0", "worker", settings, backoff=1.0)
    supervisor._alert_restart(child, -9, 100.0)
    supervisor._alert_restart(child, -9, 102.0)  # crashes again within the re-alert interval: quiet
    assert child.alerted_at == 100.0

    async def alerted() -> None:
        assert len(webhook.received) == 1

    await assert_eventually(alerted, timeout=30)
    (alert,) = webhook.received
    assert (alert["kind"], alert["key"], alert["severity"]) == ("process_restarted", "worker-0", "warning")
    assert alert["details"] == {"process": "worker-0", "role": "worker", "exit_code": "-9", "restarts": "0"}
    supervisor._alert_restart(child, 1, 100.0 + settings.alerts.realert_interval_s)
    await assert_eventually(lambda: _count(webhook, 2), timeout=30)


async def _count(webhook: Webhook, n: int) -> None:
    assert len(webhook.received) == n
