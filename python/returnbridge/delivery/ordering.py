"""Per-return ordering: versions of one return go in order, inside a worker and across workers.

Inside a worker, ``ReturnTurns`` queues a return's messages behind those of earlier batches still in hand.
Across workers and redeliveries, ``blockers`` reads the sync record: a version waits while an earlier one
is unresolved, or (for a while) missing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from returnbridge.delivery.work import ReturnKey
from returnbridge.sync.status import blocking_versions, is_reserved

__all__ = ["ReturnTurns", "blockers", "waiting_delay"]


class ReturnTurns:
    """The turn of the latest batch holding each return's messages."""

    def __init__(self) -> None:
        self._turns: dict[ReturnKey, asyncio.Future[None]] = {}

    def join(self, key: ReturnKey) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """Queue behind the return's work still in hand; returns (what to wait for or None, our own turn)."""
        before = self._turns.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns[key] = mine
        return before, mine

    def leave(self, key: ReturnKey, mine: asyncio.Future[None]) -> None:
        if not mine.done():
            mine.set_result(None)
        if self._turns.get(key) is mine:
            del self._turns[key]


def blockers(record: dict[str, Any], version: int, *, gap_wait_seconds: float) -> list[tuple[int, str]]:
    """Earlier versions ``version`` must wait for: (version, state), "MISSING" for one not yet arrived."""
    entry = record["versions"][str(version)]
    young = time.time() - float(entry["accepted_at"]) < gap_wait_seconds
    waiting = []
    for lower, state in blocking_versions(record, version):
        if not is_reserved(record["versions"][str(lower)]):
            waiting.append((lower, state))
        elif young:
            # Reserved, its message never named by a worker: it may still be on the way, or its submission
            # stopped before the publish (the reservation sweeper publishes it, delivery/orphans.py); waited
            # for like a missing version, then no longer.
            waiting.append((lower, "MISSING"))
    # The lifecycle admission refuses versions below the latest, so a gap it did not admit stays a gap.
    admitted = (record.get("lifecycle") or {}).get("versions")
    if (
        version > 1
        and str(version - 1) not in record["versions"]
        and (admitted is None or str(version - 1) in admitted)
        and young
    ):
        waiting.append((version - 1, "MISSING"))
    return waiting


def waiting_delay(
    waiting: list[tuple[int, str]], num_delivered: int, *, base: float, on_dead_letter: float
) -> float:
    """How long to nak a blocked message for: growing with each redelivery (so MaxDeliver spans hours of
    waiting, not minutes), the cap at once while an earlier version sits in the DLQ."""
    if any(state == "DEAD_LETTERED" for _, state in waiting):
        return on_dead_letter
    return min(on_dead_letter, base * max(1, num_delivered))
