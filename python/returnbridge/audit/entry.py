"""One audit entry, its canonical JSON form and its chain hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from returnbridge import exactjson

__all__ = ["ENTRY_VERSION", "GENESIS_HASH", "AuditEntry", "canonical_json", "digest"]

ENTRY_VERSION: Final = 1
GENESIS_HASH: Final = "0" * 64


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same entry always hashes to the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(data: bytes | None) -> str:
    """SHA-256 hex of a before/after snapshot; empty string when there is no snapshot."""
    return hashlib.sha256(data).hexdigest() if data is not None else ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who did what to which object of which tenant, when; ``hash`` chains it to the entry before."""

    seq: int
    ts: str  # RFC 3339 UTC with microseconds
    tenant_id: str
    actor: str
    auth_method: str
    request_id: str
    action: str
    object_type: str
    object_id: str
    before_sha256: str
    after_sha256: str
    details: dict[str, str] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    hash: str = ""
    v: int = ENTRY_VERSION

    def body(self) -> dict[str, Any]:
        """Every field except ``hash``: the bytes the hash covers."""
        data = asdict(self)
        data.pop("hash")
        return data

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def sealed(self) -> AuditEntry:
        """This entry with ``hash`` filled in."""
        return replace(self, hash=self.compute_hash())

    def to_json(self) -> bytes:
        return canonical_json(asdict(self))

    @property
    def timestamp(self) -> datetime:
        return datetime.fromisoformat(self.ts)

    @classmethod
    def from_json(cls, data: bytes | str) -> AuditEntry:
        """Parse a stored entry; raises ValueError on anything that is not a well-formed entry."""
        try:
            raw = exactjson.loads(data, parse_float=float)
        except exactjson.JsonError as exc:
            raise ValueError(f"audit entry is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("audit entry is not a JSON object")
        expected = set(cls.__dataclass_fields__)
        if set(raw) != expected:
            missing, extra = sorted(expected - set(raw)), sorted(set(raw) - expected)
            raise ValueError(f"audit entry fields differ: missing {missing}, unexpected {extra}")
        details = raw["details"]
        if not isinstance(details, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in details.items()
        ):
            raise ValueError("audit entry details must map strings to strings")
        for name in expected - {"seq", "v", "details"}:
            if not isinstance(raw[name], str):
                raise ValueError(f"audit entry field {name!r} must be a string")
        for name in ("seq", "v"):
            if not isinstance(raw[name], int) or isinstance(raw[name], bool):
                raise ValueError(f"audit entry field {name!r} must be an integer")
        return cls(**raw)
