"""The deployment-wide key of the per-tenant opaque ids, kept in JetStream so every process shares it."""

from __future__ import annotations

import secrets
from typing import Final

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError

from returnbridge.domain.tenant_ids import TenantIds

__all__ = ["KEYS_BUCKET", "load_tenant_ids"]

KEYS_BUCKET: Final = "rb_keys"
_ID_KEY: Final = "opaque-ids"


async def load_tenant_ids(js: JetStreamContext, *, replicas: int = 1) -> TenantIds:
    """The shared codec: its key is created once (first writer wins) and read by every later process."""
    try:
        kv = await js.key_value(KEYS_BUCKET)
    except BucketNotFoundError:
        kv = await js.create_key_value(
            KeyValueConfig(bucket=KEYS_BUCKET, history=1, storage=StorageType.FILE, replicas=replicas)
        )
    try:
        await kv.create(_ID_KEY, secrets.token_bytes(32))
    except KeyWrongLastSequenceError:
        pass  # another process created it first; read theirs
    entry = await kv.get(_ID_KEY)
    return TenantIds(bytes(entry.value or b""))
