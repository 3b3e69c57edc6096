"""Small helpers over JetStream KV: JSON records with optimistic-concurrency read-modify-write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.errors import ReturnBridgeError

JsonRecord = dict[str, Any]


class ContendedKeyError(ReturnBridgeError):
    """Too many concurrent writers on one key; the caller retries the whole operation later."""


def dumps(record: JsonRecord) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


async def get_json(kv: KeyValue, key: str) -> tuple[JsonRecord | None, int]:
    """The record and its revision; ``(None, 0)`` when the key does not exist (or was deleted)."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None, 0
    if entry.value is None:
        return None, 0
    return json.loads(entry.value), int(entry.revision or 0)


async def modify_json(
    kv: KeyValue,
    key: str,
    change: Callable[[JsonRecord | None], JsonRecord | None],
    *,
    attempts: int = 50,
    known: tuple[JsonRecord | None, int] | None = None,
) -> JsonRecord | None:
    """Apply ``change`` to the current record and write it only if nobody wrote in between (CAS loop).

    ``change`` gets a copy of the record (None when absent) and returns the new record, or None to
    leave the key untouched. Returns the record as stored (or the unchanged current one).
    ``known`` is a ``(record, revision)`` the caller read moments ago: the first attempt skips the read.
    """
    stored, _revision = await modify_json_versioned(kv, key, change, attempts=attempts, known=known)
    return stored


async def modify_json_versioned(
    kv: KeyValue,
    key: str,
    change: Callable[[JsonRecord | None], JsonRecord | None],
    *,
    attempts: int = 50,
    known: tuple[JsonRecord | None, int] | None = None,
) -> tuple[JsonRecord | None, int]:
    """``modify_json`` that also returns the revision of what it returns, a valid ``known`` for the next write."""
    for attempt in range(attempts):
        if attempt == 0 and known is not None:
            current, revision = known
        else:
            current, revision = await get_json(kv, key)
        updated = change(json.loads(json.dumps(current)) if current is not None else None)
        if updated is None:
            return current, revision
        try:
            if revision:
                written = await kv.update(key, dumps(updated), last=revision)
            else:
                written = await kv.create(key, dumps(updated))
        except KeyWrongLastSequenceError:
            continue
        return updated, int(written)
    raise ContendedKeyError(f"KV key {key!r} changed concurrently {attempts} times in a row")


async def keys_matching(kv: KeyValue, pattern: str) -> list[str]:
    """Keys matching a subject pattern (``a.*``, ``a.>``), filtered by the server.

    ``KeyValue.keys(filters=...)`` in nats.py watches the whole bucket and substring-matches client side.
    """
    watcher = await kv.watch(pattern, ignore_deletes=True, meta_only=True)
    keys: list[str] = []
    try:
        while True:
            entry = await watcher.updates(timeout=5.0)
            if entry is None:
                break
            keys.append(entry.key)
            if not entry.delta:
                break
    finally:
        await watcher.stop()
    return keys
