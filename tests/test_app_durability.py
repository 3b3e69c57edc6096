"""An external nats-server's fsync setting is checked at start-up: refused or warned about when off."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from returnbridge.app import App
from returnbridge.bus.embedded import find_nats_server, free_port
from returnbridge.config import load_settings
from returnbridge.errors import ConfigError


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _External:
    def __init__(self, url: str, monitor_url: str) -> None:
        self.url, self.monitor_url = url, monitor_url


def _start(tmp_path: Path, *, sync_always: bool) -> Iterator[_External]:
    port, monitor = free_port(), free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f'listen: "127.0.0.1:{port}"\nhttp: "127.0.0.1:{monitor}"\n'
        f'jetstream {{ store_dir: "{tmp_path / "store"}"{", sync_interval: always" if sync_always else ""} }}\n'
    )
    proc = subprocess.Popen(
        [find_nats_server(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port("127.0.0.1", port)
        wait_for_port("127.0.0.1", monitor)
        yield _External(f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{monitor}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def lax_server(tmp_path: Path) -> Iterator[_External]:
    yield from _start(tmp_path, sync_always=False)


@pytest.fixture
def strict_server(tmp_path: Path) -> Iterator[_External]:
    yield from _start(tmp_path, sync_always=True)


def _app(tmp_path: Path, server: _External, **nats: object) -> App:
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            "nats": {"url": server.url, **nats},
            "grpc": {"port": 0},
            "metrics": {"enabled": False},
            "simulators": {"enabled": False},
            "process": {"gateway": False, "workers": [], "sync": False},
        },
    )
    return App(settings)


async def test_refuses_a_server_that_does_not_fsync_every_write(
    tmp_path: Path, lax_server: _External
) -> None:
    app = _app(tmp_path, lax_server, durability_check="refuse", monitor_url=lax_server.monitor_url)
    with pytest.raises(ConfigError) as info:
        await app.start()
    assert "sync_always off" in str(info.value) and "every 120 s" in str(info.value)
    assert app.nc is None or app.nc.is_closed  # start-up unwound


async def test_warns_by_default_and_starts(
    tmp_path: Path, lax_server: _External, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(tmp_path, lax_server, monitor_url=lax_server.monitor_url)
    with caplog.at_level(logging.WARNING, logger="returnbridge.app"):
        await app.start()
    try:
        assert "acknowledged submissions can be lost in a power cut" in caplog.text
    finally:
        await app.stop()


async def test_accepts_a_server_with_sync_always(tmp_path: Path, strict_server: _External) -> None:
    app = _app(tmp_path, strict_server, durability_check="refuse", monitor_url=strict_server.monitor_url)
    await app.start()
    await app.stop()


async def test_refuses_when_the_setting_cannot_be_read(tmp_path: Path, strict_server: _External) -> None:
    # No monitor URL and no system-account credentials: nothing tells us, so "refuse" refuses.
    app = _app(tmp_path, strict_server, durability_check="refuse")
    with pytest.raises(ConfigError) as info:
        await app.start()
    assert "cannot tell whether JetStream fsyncs every write" in str(info.value)
