"""On embedded defaults serve gives each polled simulator a key for the tenant its target is polled for."""

from __future__ import annotations

from pathlib import Path

from helpers.app import running
from helpers.settings import served_settings
from returnbridge.bus.embedded import EmbeddedNatsServer


async def test_keys_follow_the_configured_sync_targets(
    tmp_path: Path, nats_server: EmbeddedNatsServer
) -> None:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        console={"enabled": False},
        sync={"interval_seconds": 3600, "targets": [{"target": "netsuite", "tenant": "acme"}]},
    )
    async with running(settings) as app:
        assert app.endpoints.inbound and app.simulators is not None
        notifiers = {name: kit.notifier.config for name, kit in app.simulators.kits.items()}
        assert notifiers["netsuite"].ready() and notifiers["netsuite"].key_id == "sim-netsuite"
        assert not notifiers["sap"].ready() and not notifiers["oracle"].ready()  # not polled: nothing to wake


async def test_no_receiver_when_disabled(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        console={"enabled": False},
        inbound={"enabled": False},
    )
    async with running(settings) as app:
        assert app.endpoints.inbound == ""
        assert app.simulators is not None
        assert not any(kit.notifier.config.ready() for kit in app.simulators.kits.values())
