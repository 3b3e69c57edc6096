"""Which earlier versions hold a version back (``delivery.ordering.blockers``), reserved versions included."""

from __future__ import annotations

import time
from typing import Any

from returnbridge.delivery.ordering import blockers


def _record(*, lower_sequence: int, accepted_at: float) -> dict[str, Any]:
    def version(sequence: int, at: float) -> dict[str, Any]:
        return {
            "event": "X",
            "state": "ACCEPTED",
            "steps": ["doc"],
            "stream_sequence": sequence,
            "accepted_at": at,
        }

    def doc(number: int) -> dict[str, Any]:
        return {"step": "doc", "version": number, "state": "ACCEPTED"}

    return {
        "versions": {"1": version(lower_sequence, accepted_at), "2": version(9, accepted_at)},
        "documents": {"1:doc": doc(1), "2:doc": doc(2)},
        "lifecycle": {"versions": {"1": {}, "2": {}}},
    }


def test_a_named_lower_version_blocks_however_long_ago() -> None:
    record = _record(lower_sequence=5, accepted_at=time.time() - 3600)
    assert blockers(record, 2, gap_wait_seconds=300) == [(1, "ACCEPTED")]


def test_a_reserved_lower_version_is_waited_for_like_a_missing_one() -> None:
    """Admitted, but no worker ever named its message: it may still be on the way (wait), or its submission
    stopped before the publish (after the gap wait, the later version goes ahead, as for a missing one)."""
    young = _record(lower_sequence=0, accepted_at=time.time())
    assert blockers(young, 2, gap_wait_seconds=300) == [(1, "MISSING")]
    old = _record(lower_sequence=0, accepted_at=time.time() - 301)
    assert blockers(old, 2, gap_wait_seconds=300) == []
