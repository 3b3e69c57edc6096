"""JetStream replicas (``delivery.streams.replicas``): refused with a clear error where they cannot hold."""

from __future__ import annotations

import nats
import pytest

from returnbridge.audit.log import AuditLog
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.streams import StreamsConfig, ensure_streams
from returnbridge.config import load_settings
from returnbridge.errors import ConfigError


def test_more_than_one_replica_on_the_embedded_server_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={}, overrides={"delivery": {"streams": {"replicas": 3}}})
    message = str(info.value)
    assert "delivery.streams.replicas" in message and "embedded nats-server is one server" in message
    assert "command line" in message  # where the value came from


def test_replicas_with_an_external_cluster_are_left_to_the_server() -> None:
    settings = load_settings(
        None,
        env={},
        overrides={"nats": {"url": "nats://127.0.0.1:4222"}, "delivery": {"streams": {"replicas": 3}}},
    )
    assert settings.delivery.streams.replicas == 3


async def test_a_single_server_refusing_r3_names_the_setting(nats_server: EmbeddedNatsServer) -> None:
    nc = await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        with pytest.raises(ConfigError) as info:
            await ensure_streams(nc.jetstream(), StreamsConfig(replicas=3))
        assert "delivery.streams.replicas: 3 replicas of RB_DELIVER cannot be placed" in str(info.value)
        with pytest.raises(ConfigError) as audit:
            await AuditLog.open(nc.jetstream(), replicas=3)
        assert "delivery.streams.replicas" in str(audit.value)
    finally:
        await nc.close()
