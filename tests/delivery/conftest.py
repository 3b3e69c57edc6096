"""Fixtures for pipeline tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from delivery.pipeline_harness import Pipeline
from helpers.nats_server import running_nats
from returnbridge.bus.embedded import EmbeddedNatsServer


@pytest.fixture
async def pipeline(nats_client: NatsClient) -> AsyncIterator[Pipeline]:
    pipe = await Pipeline.create(nats_client)
    try:
        yield pipe
    finally:
        await pipe.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNatsServer]:
    """A nats-server as served (fsync on every write) that a test may kill and start again on the same store."""
    with running_nats(tmp_path / "nats", sync_always=True) as nats_server:
        yield nats_server
