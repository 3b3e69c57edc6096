"""Small helpers over JetStream KV: JSON records with optimistic-concurrency read-modify-write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, Final

import nats.errors
import nats.js.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.bus.link import as_bus_unavailable
from returnbridge.errors import BusUnavailableError

JsonRecord = dict[str, Any]

_LIST_BATCH: Final = 512
_FETCH_SECONDS: Final = 2.0
_RELIST_SECONDS: Final = 0.25
# KV protocol headers (ADR-8): the operation of an entry, and the reason of a server-placed marker (2.11+).
_KV_OP: Final = "KV-Operation"
_REMOVALS: Final = frozenset({"DEL", "PURGE"})
_MARKER_REASON: Final = "Nats-Marker-Reason"


class ContendedKeyError(BusUnavailableError):
    """Too many concurrent writers on one key; the caller retries the whole operation later (UNAVAILABLE)."""


def dumps(record: JsonRecord) -> bytes:
    """Compact, keys sorted (a stable encoding); money is held as decimal strings, never floats."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def _copy(record: JsonRecord) -> JsonRecord:
    """A deep copy of a JSON record (what a change may mutate): an orjson round trip beats ``copy.deepcopy``."""
    copied: JsonRecord = orjson.loads(orjson.dumps(record))
    return copied


async def get_json(kv: KeyValue, key: str) -> tuple[JsonRecord | None, int]:
    """The record and its revision; ``(None, 0)`` when the key does not exist (or was deleted)."""
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None, 0
    if entry.value is None:
        return None, 0
    return orjson.loads(entry.value), int(entry.revision or 0)


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
        updated = change(_copy(current) if current is not None else None)
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


async def purge_revision(kv: KeyValue, key: str, revision: int, *, marker_ttl: float = 60.0) -> bool:
    """Purge ``key`` if its latest revision is still ``revision`` (compare-and-purge); False when it is not.

    The purge marker expires after ``marker_ttl`` seconds (a per-message TTL, which KV streams allow), so the key
    then leaves nothing behind; a KV delete would leave a marker per key for good, and a bucket of short-lived
    keys would only grow.
    """
    headers = {
        _KV_OP: "PURGE",
        "Nats-Rollup": "sub",
        "Nats-Expected-Last-Subject-Sequence": str(revision),
    }
    try:
        # KeyValue.purge takes no expected revision; its subject prefix and context have no public accessor.
        await kv._js.publish(kv._pre + key, headers=headers, msg_ttl=max(1.0, marker_ttl))
    except nats.js.errors.APIError as err:
        if err.err_code in (10071, 10164):  # wrong last sequence: written since
            return False
        raise
    return True


async def keys_matching(kv: KeyValue, pattern: str, *, timeout: float = 60.0) -> list[str]:
    """The live keys matching a subject pattern (``a.*``, ``a.>``), filtered by the server, sorted.

    Not ``KeyValue.watch``: its end-of-initial-values marker can come before the values (it compares the
    server's pending count with the messages the client has read so far, so under load it reported an empty
    list; nats.py issue 842), and a per-message pending count of 0 is no end either while keys are written.
    Instead an ephemeral pull consumer, last message per subject: nothing is delivered before the first fetch,
    so its creation reply counts exactly the subjects that exist, and the listing reads until that many arrived.
    A key whose last entry is a delete or purge marker is left out.

    Raises:
        BusUnavailableError: the server stopped answering before the listing was complete (``timeout``).
    """
    return sorted(await _latest(kv, pattern, headers_only=True, timeout=timeout))


async def values_matching(kv: KeyValue, pattern: str, *, timeout: float = 60.0) -> dict[str, bytes]:
    """``keys_matching`` with each key's current value, read in the same pass (no get per key)."""
    return await _latest(kv, pattern, headers_only=False, timeout=timeout)


async def _latest(kv: KeyValue, pattern: str, *, headers_only: bool, timeout: float) -> dict[str, bytes]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await _latest_once(
                kv, pattern, headers_only=headers_only, timeout=timeout, deadline=deadline
            )
        except (nats.js.errors.APIError, nats.errors.NoRespondersError) as exc:
            # The listing's consumer is R1 (it lives on one node): a node lost or a leader elected in a cluster
            # answers its fetch 503, or the consumer is gone (the leader-loss chaos run's checker failed on
            # that). Reading is harmless to repeat: a new consumer, a new count, until the deadline.
            if not _relist(exc):
                raise
            if loop.time() > deadline:
                raise BusUnavailableError(
                    f"listing KV keys {pattern!r}: the server did not answer within {timeout:g}s "
                    f"({type(exc).__name__})",
                    retry_after=1.0,
                ) from None
            await asyncio.sleep(_RELIST_SECONDS)


def _relist(exc: nats.js.errors.APIError | nats.errors.NoRespondersError) -> bool:
    """Whether a listing that failed with ``exc`` may start over: the bus unavailable (no leader, no node, a 503)
    or its consumer gone."""
    return as_bus_unavailable(exc) is not None or isinstance(exc, nats.js.errors.NotFoundError)


async def _latest_once(
    kv: KeyValue, pattern: str, *, headers_only: bool, timeout: float, deadline: float
) -> dict[str, bytes]:
    js, stream, prefix = kv._js, kv._stream, kv._pre  # nats.py exposes no public accessor for them
    name = uuid.uuid4().hex
    info = await js.add_consumer(
        stream,
        ConsumerConfig(
            name=name,
            filter_subject=prefix + pattern,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            ack_policy=AckPolicy.NONE,
            headers_only=headers_only,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=timeout,  # the server reaps it if this process dies mid-listing
        ),
    )
    remaining = int(info.num_pending or 0)
    latest: dict[str, bytes | None] = {}
    if remaining == 0:
        await _drop_consumer(js, stream, name)
        return {}
    sub = await js.pull_subscribe_bind(stream=stream, name=name)
    try:
        while remaining > 0:
            try:
                messages = await sub.fetch(min(remaining, _LIST_BATCH), timeout=_FETCH_SECONDS)
            except nats.errors.TimeoutError:
                # Fewer than counted: entries that expired or were purged since the count (nothing pending).
                if (await sub.consumer_info()).num_pending == 0:
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise BusUnavailableError(
                        f"listing KV keys {pattern!r}: {remaining} entries still pending after {timeout:g}s",
                        retry_after=1.0,
                    ) from None
                continue
            for message in messages:
                headers = message.headers or {}
                removed = headers.get(_KV_OP) in _REMOVALS or _MARKER_REASON in headers
                latest[message.subject[len(prefix) :]] = None if removed else message.data
            remaining -= len(messages)
    finally:
        await sub.unsubscribe()
        await _drop_consumer(js, stream, name)
    return {key: value for key, value in latest.items() if value is not None}


async def _drop_consumer(js: JetStreamContext, stream: str, name: str) -> None:
    try:
        await js.delete_consumer(stream, name)
    except nats.errors.Error:
        pass  # best effort: its inactive_threshold reaps it anyway
