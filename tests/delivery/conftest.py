"""Fixtures for pipeline tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient

from delivery.pipeline_harness import Pipeline


@pytest.fixture
async def pipeline(nats_client: NatsClient) -> AsyncIterator[Pipeline]:
    pipe = await Pipeline.create(nats_client)
    try:
        yield pipe
    finally:
        await pipe.close()
