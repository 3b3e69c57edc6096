"""NATS JetStream plumbing: subject names, streams and buckets, publishing, consuming, KV records, embedded server."""

from returnbridge.bus import subjects
from returnbridge.bus.consumer import ConsumerSettings, delivery_subscription, ordered_config
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.kv import (
    ContendedKeyError,
    JsonRecord,
    dumps,
    get_json,
    keys_matching,
    modify_json,
    modify_json_versioned,
)
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import StreamLimits, StreamsConfig, ensure_streams

__all__ = [
    "ConsumerSettings",
    "ContendedKeyError",
    "EmbeddedNatsServer",
    "JsonRecord",
    "Publisher",
    "StreamLimits",
    "StreamsConfig",
    "delivery_subscription",
    "dumps",
    "ensure_streams",
    "get_json",
    "keys_matching",
    "modify_json",
    "modify_json_versioned",
    "ordered_config",
    "subjects",
]
