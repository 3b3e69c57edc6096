"""Every process of a deployment creates the streams and buckets at start-up, at the same moment under ``serve``."""

from __future__ import annotations

import asyncio

import nats

from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.streams import StreamsConfig, bucket_configs, ensure_streams, stream_configs


async def test_processes_creating_the_streams_at_once_all_start(nats_server: EmbeddedNatsServer) -> None:
    """nats-server counts the storage of a stream being created twice while two creates are in flight, and can
    refuse the second with 'insufficient storage resources' (10047): a start-up that lost that race must see the
    stream the other process created, not fail (a worker of ``serve`` did, and the whole start-up with it)."""
    clients = [
        await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=0) for _ in range(6)
    ]
    try:
        results = await asyncio.gather(
            *(ensure_streams(c.jetstream()) for c in clients), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        names = {s.name for s in stream_configs(StreamsConfig())} | {
            f"KV_{b.bucket}" for b in bucket_configs(StreamsConfig())
        }
        js = clients[0].jetstream()
        assert {info.config.name for info in await js.streams_info()} >= names
    finally:
        for client in clients:
            await client.close()
