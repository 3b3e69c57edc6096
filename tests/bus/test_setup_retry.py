"""Start-up waits out a JetStream that is only unavailable (a cluster electing leaders), and fails on the rest."""

from __future__ import annotations

from typing import Any

import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient

from returnbridge.app import _set_up_bus
from returnbridge.bus.id_key import KEYS_BUCKET
from returnbridge.bus.streams import StreamsConfig


class _Electing:
    """The real JetStream context, except that its first ``stream_info`` calls meet what nats.py raises while a
    just-created stream of a cluster has no leader yet (no responders behind the subject)."""

    def __init__(self, js: Any, failures: int, error: Exception) -> None:
        self._js, self.failures, self._error = js, failures, error

    async def stream_info(self, name: str) -> Any:
        if self.failures:
            self.failures -= 1
            raise self._error
        return await self._js.stream_info(name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._js, name)


async def test_start_up_retries_while_the_streams_have_no_leader(nats_client: NatsClient) -> None:
    js = _Electing(nats_client.jetstream(), 3, nats.js.errors.NoStreamResponseError())
    buckets, ids = await _set_up_bus(js, StreamsConfig())  # type: ignore[arg-type]
    assert js.failures == 0 and "rb_sync_state" in buckets
    # The id key was created once and is what every later process reads.
    entry = await (await nats_client.jetstream().key_value(KEYS_BUCKET)).get("opaque-ids")
    assert entry.value and ids is not None


async def test_start_up_fails_at_once_on_an_error_that_is_not_unavailability(nats_client: NatsClient) -> None:
    refused = nats.js.errors.BadRequestError(code=400, err_code=10052, description="invalid stream config")
    js = _Electing(nats_client.jetstream(), 1, refused)
    with pytest.raises(nats.js.errors.BadRequestError):
        await _set_up_bus(js, StreamsConfig())  # type: ignore[arg-type]
