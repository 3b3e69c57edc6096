"""Remembers signatures and event ids seen within the replay window, in a KV bucket every receiver shares.

A KV ``create`` is atomic across processes, so two gateways behind one load balancer still let a
notification through once; the bucket's TTL forgets it after the window, when its timestamp is stale anyway.
"""

from __future__ import annotations

import hashlib

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

__all__ = ["ReplayGuard"]


class ReplayGuard:
    """Args: kv: the ``rb_inbound_seen`` bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def first_time(self, space: str, key_id: str, value: str) -> bool:
        """True the first time ``value`` is seen for ``key_id`` in ``space`` ("sig" or "evt"), then False."""
        digest = hashlib.sha256(f"{key_id}\x00{value}".encode()).hexdigest()
        try:
            await self._kv.create(f"{space}.{digest}", b"1")
        except KeyWrongLastSequenceError:
            return False
        return True
