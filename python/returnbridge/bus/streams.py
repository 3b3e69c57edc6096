"""JetStream streams and KV buckets of the pipeline, created idempotently at startup."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, model_validator

from returnbridge.bus import subjects
from returnbridge.errors import ConfigError

_DAY = 24 * 3600.0


class StreamLimits(BaseModel):
    """Explicit limits of one stream; with ``discard: new`` a full stream refuses publishes instead of losing data."""

    model_config = ConfigDict(extra="forbid")

    max_bytes: int = Field(default=1 << 30, gt=0)
    max_msgs: int = Field(default=5_000_000, gt=0)
    max_age_seconds: float = Field(default=7 * _DAY, gt=0)
    max_msg_size: int = Field(default=4 << 20, gt=0)


class StreamsConfig(BaseModel):
    """The ``streams`` config section: replicas, duplicate window and per-stream/bucket limits."""

    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(default=1, ge=1, le=5)
    # Nats-Msg-Id dedup window; beyond it the rb_idempotency bucket answers duplicates.
    duplicate_window_seconds: float = Field(default=120.0, gt=0)
    deliver: StreamLimits = StreamLimits()
    events: StreamLimits = StreamLimits(max_age_seconds=3 * _DAY)
    dlq: StreamLimits = StreamLimits(max_age_seconds=30 * _DAY, max_msgs=1_000_000)
    # Refused inbound ERP records (each at most 64 KiB): small, so it fits beside the others in one store.
    inbound_dlq: StreamLimits = StreamLimits(
        max_bytes=256 << 20, max_age_seconds=30 * _DAY, max_msgs=100_000, max_msg_size=1 << 20
    )
    idempotency_ttl_seconds: float = Field(default=30 * _DAY, gt=0)
    # An incident record nobody rewrote for this long expires: a crashed process cannot hold one open forever.
    incidents_ttl_seconds: float = Field(default=3600.0, gt=0)
    kv_max_bytes: int = Field(default=1 << 30, gt=0)

    @model_validator(mode="after")
    def _window(self) -> StreamsConfig:
        for name in ("deliver", "events", "dlq", "inbound_dlq"):
            limits: StreamLimits = getattr(self, name)
            if limits.max_age_seconds < self.duplicate_window_seconds:
                raise ValueError(f"streams.{name}.max_age_seconds must be >= duplicate_window_seconds")
        return self


def _stream(name: str, subject_list: list[str], limits: StreamLimits, config: StreamsConfig) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subject_list,
        # Limits retention, not work-queue: replay and parked-message recovery read messages by sequence.
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_bytes=limits.max_bytes,
        max_msgs=limits.max_msgs,
        max_age=limits.max_age_seconds,
        max_msg_size=limits.max_msg_size,
        num_replicas=config.replicas,
        duplicate_window=config.duplicate_window_seconds,
        allow_direct=True,
    )


def stream_configs(config: StreamsConfig) -> list[StreamConfig]:
    return [
        _stream(subjects.DELIVER_STREAM, [subjects.DELIVER_ALL], config.deliver, config),
        _stream(
            subjects.EVENTS_STREAM,
            [subjects.STATUS_ALL, subjects.INVENTORY_ALL, subjects.DOCSTATUS_ALL],
            config.events,
            config,
        ),
        _stream(subjects.DLQ_STREAM, [subjects.DLQ_ALL], config.dlq, config),
        _stream(subjects.INBOUND_DLQ_STREAM, [subjects.INBOUND_DLQ_ALL], config.inbound_dlq, config),
    ]


def bucket_configs(config: StreamsConfig) -> list[KeyValueConfig]:
    def bucket(
        name: str, history: int, ttl: float | None = None, max_bytes: int | None = None
    ) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=name,
            history=history,
            ttl=ttl,
            storage=StorageType.FILE,
            replicas=config.replicas,
            max_bytes=max_bytes or config.kv_max_bytes,
        )

    return [
        bucket(subjects.IDEMPOTENCY_BUCKET, 1, config.idempotency_ttl_seconds),
        bucket(subjects.SYNC_STATE_BUCKET, 5),
        bucket(subjects.INVENTORY_BUCKET, 1),
        bucket(subjects.CURSORS_BUCKET, 5),
        # ~150 bytes a return: 128 MiB holds the RMA numbers of ~800k returns within the idempotency window.
        bucket(
            subjects.RMA_INDEX_BUCKET, 1, config.idempotency_ttl_seconds, min(config.kv_max_bytes, 128 << 20)
        ),
        # No TTL: a claim lasts while its return is open. Released claims leave nothing (purge_revision), so
        # ~150 bytes a live claim: 128 MiB holds ~800k serials on open returns.
        bucket(subjects.SERIALS_BUCKET, 1, None, min(config.kv_max_bytes, 128 << 20)),
        # Kept twice the longest replay window: a timestamp is accepted that far on either side of now.
        bucket(subjects.INBOUND_SEEN_BUCKET, 1, 1200.0, min(config.kv_max_bytes, 64 << 20)),
        # One small record per alert incident (kind, key); a few KiB in practice.
        bucket(subjects.INCIDENTS_BUCKET, 1, config.incidents_ttl_seconds, min(config.kv_max_bytes, 8 << 20)),
    ]


async def ensure_streams(js: JetStreamContext, config: StreamsConfig | None = None) -> dict[str, KeyValue]:
    """Create or update the pipeline's streams and KV buckets; safe to call from every process at startup.

    Returns:
        The KV buckets by name.
    """
    config = config or StreamsConfig()
    for stream in stream_configs(config):
        name = stream.name or ""
        try:
            await js.stream_info(name)
        except NotFoundError:
            try:
                with refused_replicas(config.replicas, name):
                    await js.add_stream(stream)
            except APIError:
                if not await _created_meanwhile(js, name):
                    raise
        else:
            with refused_replicas(config.replicas, name):
                await js.update_stream(stream)
    buckets: dict[str, KeyValue] = {}
    for bucket in bucket_configs(config):
        try:
            buckets[bucket.bucket] = await js.key_value(bucket.bucket)
        except BucketNotFoundError:
            try:
                with refused_replicas(config.replicas, bucket.bucket):
                    buckets[bucket.bucket] = await js.create_key_value(bucket)
            except APIError:
                if not await _created_meanwhile(js, f"KV_{bucket.bucket}"):
                    raise
                buckets[bucket.bucket] = await js.key_value(bucket.bucket)
    return buckets


async def _created_meanwhile(js: JetStreamContext, stream: str) -> bool:
    """Whether another process created ``stream`` while our create was in flight.

    Every process of a deployment runs this at start-up, under ``serve`` at the same moment. nats-server counts a
    stream's storage reservation twice while two creates of it are in flight and refuses one of them
    ("insufficient storage resources", 10047), although the other succeeds: the loser uses that stream.
    """
    try:
        await js.stream_info(stream)
    except NotFoundError:
        return False
    return True


# JetStream's answers when a replica count cannot be placed: not clustered (10074), not enough servers
# (10023 insufficient resources, 10005 no suitable peers).
_REPLICA_ERRORS = frozenset({10074, 10023, 10005})


@contextlib.contextmanager
def refused_replicas(replicas: int, name: str) -> Iterator[None]:
    """Turn the server's refusal of ``replicas`` into a ConfigError naming the setting, not an opaque APIError."""
    try:
        yield
    except APIError as exc:
        if replicas > 1 and exc.err_code in _REPLICA_ERRORS:
            raise ConfigError(
                f"delivery.streams.replicas: {replicas} replicas of {name} cannot be placed on this NATS "
                f"deployment ({exc.description}, code {exc.err_code}); use 1 on a single server, or at most the "
                "number of JetStream servers in the cluster"
            ) from None
        raise
