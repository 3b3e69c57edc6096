"""Token buckets shared by the gateway processes of one port, in a memory-mapped file.

The kernel spreads connections, not calls, over ``serve``'s gateway processes (SO_REUSEPORT), so a bucket per
process would give a client on one connection one process's share of a limit and a client on many connections
the sum. One table mapped by every gateway makes the configured limit the port's, whatever the connections.

Layout: ``slots`` records of (key hash, tokens, last refill), open addressing on the hash. A key not found within
``_PROBES`` slots takes the least recently refilled of them, which refills it to full, as the in-process buckets
forget their least recently used key. ``fcntl.flock`` on the file serialises the read-modify-write of a call's two
buckets across processes; ``time.monotonic`` is the system-wide CLOCK_MONOTONIC on Linux, so every process
refills with the same clock.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
from pathlib import Path

__all__ = ["SharedBuckets", "create_table"]

_SLOT = struct.Struct("<Qdd")
_PROBES = 32


def create_table(path: Path, slots: int) -> Path:
    """Create (or reset) a table of ``slots`` empty buckets at ``path``; the supervisor calls this once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as table:
        table.truncate(slots * _SLOT.size)
    return path


def _hash(key: str) -> int:
    # 0 marks an empty slot.
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") or 1


class SharedBuckets:
    """The tenant and principal buckets of every gateway process, charged together under one file lock."""

    def __init__(
        self, path: str | Path, *, tenant: tuple[float, float], principal: tuple[float, float]
    ) -> None:
        """``tenant`` and ``principal``: each kind of bucket's (rate per second, burst)."""
        self._tenant_rate, self._tenant_burst = tenant
        self._principal_rate, self._principal_burst = principal
        self._fd = os.open(path, os.O_RDWR)
        size = os.fstat(self._fd).st_size
        if size < _SLOT.size or size % _SLOT.size:
            os.close(self._fd)
            raise ValueError(f"{path}: not a rate-limit table ({size} bytes)")
        self._map = mmap.mmap(self._fd, size)
        self._slots = size // _SLOT.size

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def charge(self, tenant: str, principal: str, now: float) -> tuple[float, float]:
        """Take one token from the tenant's and the principal's bucket, when both have one.

        Returns the seconds each bucket still needs for a token: (0, 0) when charged; otherwise nothing was taken.
        """
        # Hashed outside the lock: each bucket's slot is looked up and written under its hash.
        tenant_slot = (_hash(tenant), self._tenant_rate, self._tenant_burst)
        own_slot = (_hash(principal), self._principal_rate, self._principal_burst)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            # Each refilled bucket is written back before the next lookup, so the two never take one free slot.
            tenant_at, tenant_tokens, tenant_time = self._refill(tenant_slot, now)
            own_at, own_tokens, own_time = self._refill(own_slot, now)
            tenant_wait = 0.0 if tenant_tokens >= 1.0 else (1.0 - tenant_tokens) / self._tenant_rate
            own_wait = 0.0 if own_tokens >= 1.0 else (1.0 - own_tokens) / self._principal_rate
            if tenant_wait == 0.0 and own_wait == 0.0:
                _SLOT.pack_into(self._map, tenant_at, tenant_slot[0], tenant_tokens - 1.0, tenant_time)
                _SLOT.pack_into(self._map, own_at, own_slot[0], own_tokens - 1.0, own_time)
            return tenant_wait, own_wait
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _refill(self, bucket: tuple[int, float, float], now: float) -> tuple[int, float, float]:
        """Refill ``bucket`` (key hash, rate, burst) in its slot (a new or evicted slot starts full): its offset,
        tokens and refill time."""
        offset, tokens, stamp = self._find(bucket, now)
        _SLOT.pack_into(self._map, offset, bucket[0], tokens, stamp)
        return offset, tokens, stamp

    def _find(self, bucket: tuple[int, float, float], now: float) -> tuple[int, float, float]:
        wanted, rate, burst = bucket
        start = wanted % self._slots
        oldest_at, oldest_time = -1, float("inf")
        for probe in range(min(_PROBES, self._slots)):
            offset = ((start + probe) % self._slots) * _SLOT.size
            held, tokens, updated = _SLOT.unpack_from(self._map, offset)
            if held == wanted:
                # Another process may have refilled with a later reading of the clock than ours.
                stamp = max(now, updated)
                return offset, min(burst, tokens + (stamp - updated) * rate), stamp
            if held == 0:
                return offset, burst, now
            if updated < oldest_time:
                oldest_at, oldest_time = offset, updated
        return oldest_at, burst, now
