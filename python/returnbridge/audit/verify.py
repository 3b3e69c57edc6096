"""Walk an audit chain and report every altered, missing, reordered or foreign entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from returnbridge.audit.entry import GENESIS_HASH, AuditEntry
from returnbridge.audit.log import AuditLog

__all__ = ["PROBLEM_KINDS", "ChainProblem", "VerifyReport", "verify_entries", "verify_jsonl", "verify_stream"]

PROBLEM_KINDS: Final = ("altered", "missing", "reordered", "broken_link", "malformed")


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One defect: ``seq`` is the stream position (or expected position in a file) where it was found."""

    seq: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    last_seq: int = 0
    last_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_entries(
    items: Iterable[tuple[int | None, bytes]], *, first_seq: int = 1, prev_hash: str | None = GENESIS_HASH
) -> VerifyReport:
    """Check a sequence of stored entries.

    Args:
        items: ``(stream_seq, data)`` pairs in storage order; ``stream_seq`` is None for entries read from a file,
            where positions are implied. Empty ``data`` marks a sequence the store no longer holds.
        first_seq: sequence the first item should carry.
        prev_hash: hash the first entry must chain to; None when verifying from the middle of a chain.

    Returns:
        A report listing every problem; an entry that was altered and re-hashed is caught by its successor's link.
    """
    report = VerifyReport()
    expected = first_seq
    previous = prev_hash
    for position, data in items:
        report.checked += 1
        at = position if position is not None else expected
        if not data:
            report.problems.append(ChainProblem(at, "missing", "sequence no longer present in the stream"))
            expected, previous = at + 1, None
            continue
        try:
            entry = AuditEntry.from_json(data)
        except ValueError as exc:
            report.problems.append(ChainProblem(at, "malformed", f"not an audit entry ({exc})"))
            expected, previous = at + 1, None
            continue
        if entry.compute_hash() != entry.hash:
            report.problems.append(ChainProblem(at, "altered", "content does not match the entry's own hash"))
        if position is not None and entry.seq != position:
            report.problems.append(
                ChainProblem(at, "reordered", f"entry claims seq {entry.seq} but is stored at {position}")
            )
        elif position is None and entry.seq > expected:
            report.problems.append(
                ChainProblem(expected, "missing", f"entries {expected}..{entry.seq - 1} absent")
            )
        elif position is None and entry.seq < expected:
            report.problems.append(
                ChainProblem(at, "reordered", f"entry seq {entry.seq} appears after seq {expected - 1}")
            )
        if previous is not None and entry.prev_hash != previous:
            report.problems.append(
                ChainProblem(
                    entry.seq,
                    "broken_link",
                    "prev_hash does not match the entry before it (an earlier entry was altered, removed or "
                    "inserted)",
                )
            )
        previous = entry.hash
        expected = (position if position is not None else entry.seq) + 1
        report.last_seq, report.last_hash = entry.seq, entry.hash
    return report


def verify_jsonl(lines: Iterable[str | bytes]) -> VerifyReport:
    """Verify a full JSON-lines export (one canonical entry per line, blank lines ignored)."""
    items: list[tuple[int | None, bytes]] = []
    for line in lines:
        raw = line.encode() if isinstance(line, str) else line
        if raw.strip():
            items.append((None, raw.strip()))
    return verify_entries(items)


async def verify_stream(log: AuditLog, *, start_seq: int = 1, end_seq: int | None = None) -> VerifyReport:
    """Verify the chain as stored in the log's stream (from ``start_seq``: earlier links are not checked)."""
    items = [(stored.seq, stored.data) async for stored in log.raw_entries(start_seq, end_seq)]
    return verify_entries(items, first_seq=start_seq, prev_hash=GENESIS_HASH if start_seq <= 1 else None)
