"""Shared fixtures: a real nats-server with JetStream per test, on a free port and a temp store."""

from __future__ import annotations

import os

# Tests fork+exec nats-server and CLI processes while gRPC is live in this process; grpc's fork handlers are
# only safe when nothing uses gRPC, and can hang the parent otherwise. Fork+exec needs none (grpc's fork docs).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from hypothesis import settings
from nats.aio.client import Client as NatsClient

from helpers.nats_server import running_nats
from returnbridge.bus.embedded import EmbeddedNatsServer

# CI replays the same examples every run, so a red CI is a real regression that reproduces, never a new random
# draw; locally the default profile keeps exploring. Must be loaded before test modules build their settings.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    """A fresh nats-server (JetStream on) for one test; fsync off, since a test store is throwaway."""
    with running_nats(tmp_path / "nats", sync_always=False) as server:
        yield server


@pytest.fixture
async def nats_client(nats_server: EmbeddedNatsServer) -> AsyncIterator[NatsClient]:
    nc = await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        yield nc
    finally:
        await nc.drain()
