"""Export audit entries in a time range as JSON lines (verifiable) or CSV (for spreadsheets)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from datetime import datetime
from typing import Final, TextIO

from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.log import AuditLog
from returnbridge.errors import FieldViolation, ValidationError

__all__ = ["CSV_COLUMNS", "EXPORT_FORMATS", "export_audit", "parse_timestamp"]

EXPORT_FORMATS: Final = ("jsonl", "csv")
CSV_COLUMNS: Final = tuple(AuditEntry.__dataclass_fields__)


def parse_timestamp(value: str, *, name: str) -> datetime:
    """RFC 3339 / ISO 8601 with a zone (``Z`` accepted); raises ValidationError naming the option."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"bad {name} timestamp", [FieldViolation(name, f"not an ISO 8601 timestamp: {value!r}")]
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(
            f"bad {name} timestamp", [FieldViolation(name, "timestamp must carry a time zone")]
        )
    return moment


async def export_audit(
    log: AuditLog,
    out: TextIO,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    fmt: str = "jsonl",
    tenant_id: str | None = None,
) -> int:
    """Write entries with ``since <= ts < until`` (optionally one tenant) to ``out``; returns how many.

    A JSON-lines export of the whole log (no range, no tenant) verifies with ``verify_jsonl``. Stored messages that
    are not audit entries are skipped here; ``audit verify`` reports them.

    Raises:
        ValidationError: unknown format or naive timestamps.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(
            "bad export format", [FieldViolation("format", f"expected one of {EXPORT_FORMATS}")]
        )
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError(f"bad {name}", [FieldViolation(name, "timestamp must carry a time zone")])
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for stored in log.raw_entries():
        try:
            entry = AuditEntry.from_json(stored.data)
        except ValueError:
            continue
        moment = entry.timestamp
        if (since is not None and moment < since) or (until is not None and moment >= until):
            continue
        if tenant_id is not None and entry.tenant_id != tenant_id:
            continue
        if writer is None:
            out.write(entry.to_json().decode() + "\n")
        else:
            row = asdict(entry)
            row["details"] = json.dumps(entry.details, sort_keys=True, ensure_ascii=False)
            writer.writerow(row)
        count += 1
    return count
