"""Field limits of every request message the API reads, checked before any servicer runs.

Each top-level field of each RPC's request has one rule here (a test fails for a field without one), so a client
value a store or the bus cannot take (a 1 MB id, a page token of non-ASCII digits, a timestamp past year 9999, a
sequence past 2^63) is INVALID_ARGUMENT with field violations instead of INTERNAL deep inside. The content of a
return (``ReturnOrder``) is validated by the submit path; here it only gets structural bounds (nesting, string
sizes, element counts, the 2,000-line cap, timestamps in range), which also bound custom values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from returnbridge.api.v1 import admin_pb2, returns_pb2
from returnbridge.domain.tenant_ids import MAX_OPAQUE
from returnbridge.domain.validation import MAX_LINES
from returnbridge.errors import FieldViolation, ValidationError
from returnbridge.safe_yaml import DEFAULT_LIMITS

__all__ = [
    "MAX_SEQUENCE",
    "RULES",
    "RULE_REQUEST_LIMITS",
    "Rule",
    "check_request",
]

#: The rule a refusal here is counted under (``rb_rejected_total``) when the request is a submission.
RULE_REQUEST_LIMITS: Final = "request.limits"

#: Ids and sequences a caller can hold are per-tenant opaque ids (``tenant_ids``), all below 2^62.
MAX_SEQUENCE: Final = MAX_OPAQUE
#: google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS: Final = -62_135_596_800
MAX_TIMESTAMP_SECONDS: Final = 253_402_300_799
MAX_ID_LENGTH: Final = 64
MAX_COMMENT_LENGTH: Final = 1_000
MAX_FILTER_ITEMS: Final = 1_000
MAX_PAGE_SIZE: Final = 1_000
MAX_SPEC_BYTES: Final = DEFAULT_LIMITS.max_bytes
# Structural bounds of a return document (Translate, Submit); generous next to the submit path's own checks.
MAX_CONTENT_DEPTH: Final = 24
MAX_CONTENT_STRING: Final = 65_536
MAX_CONTENT_ELEMENTS: Final = 200_000
# The translation service's own max_batch_size (config) is the real cap; this only bounds the structure walk.
MAX_BATCH_DOCUMENTS: Final = 1_000_000

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_DIGITS: Final = re.compile(r"[0-9]{1,20}\Z")
_KV_KEY: Final = re.compile(r"[-/_=.A-Za-z0-9]{1,512}\Z")

Out = list[FieldViolation]


class Rule:
    """Checks one field's value; appends violations to ``out``."""

    def check(self, value: Any, path: str, out: Out) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Rule):
    """A string: at most ``max_length`` characters; ids (``single_line``) also without control characters."""

    max_length: int = MAX_ID_LENGTH
    required: bool = False
    single_line: bool = True

    def check(self, value: Any, path: str, out: Out) -> None:
        if not value:
            if self.required:
                out.append(FieldViolation(path, "required"))
            return
        if len(value) > self.max_length:
            out.append(FieldViolation(path, f"at most {self.max_length} characters (got {len(value)})"))
        elif self.single_line and _CONTROL.search(value):
            out.append(FieldViolation(path, "must not contain control characters"))


@dataclass(frozen=True)
class Texts(Rule):
    """A repeated string: at most ``max_items`` entries, each a ``Text(max_length)``."""

    max_items: int = MAX_FILTER_ITEMS
    max_length: int = MAX_ID_LENGTH

    def check(self, value: Any, path: str, out: Out) -> None:
        if len(value) > self.max_items:
            out.append(FieldViolation(path, f"at most {self.max_items} entries (got {len(value)})"))
            return
        item = Text(self.max_length)
        for i, text in enumerate(value):
            item.check(text, f"{path}[{i}]", out)


@dataclass(frozen=True)
class Enum(Rule):
    """An enum (or repeated enum): only values the contract defines; at most ``max_items`` entries."""

    field: FieldDescriptor
    max_items: int = 64

    def check(self, value: Any, path: str, out: Out) -> None:
        values = list(value) if self.field.is_repeated else [value]
        if len(values) > self.max_items:
            out.append(FieldViolation(path, f"at most {self.max_items} entries (got {len(values)})"))
            return
        enum = self.field.enum_type
        assert enum is not None
        known = enum.values_by_number
        for i, number in enumerate(values):
            if number not in known:
                where = f"{path}[{i}]" if self.field.is_repeated else path
                out.append(FieldViolation(where, f"{number} is not a value of {enum.name}"))


@dataclass(frozen=True)
class Flag(Rule):
    """A bool: every value is valid."""

    def check(self, value: Any, path: str, out: Out) -> None:
        return None


@dataclass(frozen=True)
class Seq(Rule):
    """A stream sequence or dead-letter id (uint64): at most ``MAX_SEQUENCE``; ``required`` means > 0."""

    required: bool = False

    def check(self, value: Any, path: str, out: Out) -> None:
        if self.required and value == 0:
            out.append(FieldViolation(path, "required"))
        elif value > MAX_SEQUENCE:
            out.append(FieldViolation(path, f"at most {MAX_SEQUENCE}"))


@dataclass(frozen=True)
class PageSize(Rule):
    maximum: int = MAX_PAGE_SIZE

    def check(self, value: Any, path: str, out: Out) -> None:
        if not 0 <= value <= self.maximum:
            out.append(FieldViolation(path, f"must be between 0 and {self.maximum} (0 = default)"))


@dataclass(frozen=True)
class PageToken(Rule):
    """An opaque token we handed out: ``digits`` (a sequence) or a KV key, never anything else."""

    digits: bool = True

    def check(self, value: Any, path: str, out: Out) -> None:
        if value and not (_DIGITS if self.digits else _KV_KEY).match(value):
            out.append(FieldViolation(path, "malformed page token: pass back next_page_token unchanged"))


@dataclass(frozen=True)
class Timestamp(Rule):
    """A google.protobuf.Timestamp within its documented range (years 1 to 9999, nanos 0..999,999,999)."""

    def check(self, value: Any, path: str, out: Out) -> None:
        if not MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS:
            out.append(FieldViolation(f"{path}.seconds", "out of range (years 0001 to 9999)"))
        if not 0 <= value.nanos <= 999_999_999:
            out.append(FieldViolation(f"{path}.nanos", "must be between 0 and 999,999,999"))


@dataclass(frozen=True)
class Blob(Rule):
    """Bytes or a long text (mapping YAML, ERP payload): at most ``max_bytes``; ``items`` bounds a repeated one."""

    max_bytes: int
    required: bool = False
    max_items: int = 0

    def check(self, value: Any, path: str, out: Out) -> None:
        values = list(value) if self.max_items else [value]
        if self.max_items and len(values) > self.max_items:
            out.append(FieldViolation(path, f"at most {self.max_items} entries (got {len(values)})"))
            return
        for i, one in enumerate(values):
            here = f"{path}[{i}]" if self.max_items else path
            size = len(one.encode("utf-8", "surrogatepass")) if isinstance(one, str) else len(one)
            if self.required and not size:
                out.append(FieldViolation(here, "required"))
            elif size > self.max_bytes:
                out.append(FieldViolation(here, f"at most {self.max_bytes} bytes (got {size})"))


@dataclass(frozen=True)
class Nested(Rule):
    """A sub-message whose own fields have rules."""

    rules: dict[str, Rule]

    def check(self, value: Any, path: str, out: Out) -> None:
        for name, rule in self.rules.items():
            rule.check(getattr(value, name), f"{path}.{name}", out)


@dataclass(frozen=True)
class Document(Rule):
    """A return document (or a repeated one): structure only, its meaning is the submit path's business."""

    max_items: int = 0

    def check(self, value: Any, path: str, out: Out) -> None:
        if self.max_items:
            if len(value) > self.max_items:
                out.append(FieldViolation(path, f"at most {self.max_items} documents (got {len(value)})"))
                return
            for i, one in enumerate(value):
                _check_structure(one, f"{path}[{i}]", out)
        else:
            _check_structure(value, path, out)


def _items(message: Message) -> Iterator[tuple[FieldDescriptor, Any]]:
    yield from message.ListFields()


# Checked where a field holds one, never pushed on the walk: one identity test per message field.
_TIMESTAMP: Final = timestamp_pb2.Timestamp.DESCRIPTOR
_IN_RANGE: Final = Timestamp()


def _check_structure(root: Message, path: str, out: Out) -> None:
    """Depth, string sizes, element count, the line cap and timestamp ranges over a whole message tree
    (iteratively)."""
    elements = 0
    stack: list[tuple[Message, str, int]] = [(root, path, 0)]
    while stack:
        message, here, depth = stack.pop()
        if depth > MAX_CONTENT_DEPTH:
            out.append(FieldViolation(here, f"nested deeper than {MAX_CONTENT_DEPTH} levels"))
            return
        for field, value in _items(message):
            where = f"{here}.{field.name}"
            repeated = field.is_repeated
            if field.name == "lines" and repeated and len(value) > MAX_LINES:
                out.append(FieldViolation(where, f"at most {MAX_LINES} lines per return (got {len(value)})"))
                return
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                elements += len(value)
                value_field = field.message_type.fields_by_name["value"]
                for key, item in value.items():
                    if len(key) > MAX_CONTENT_STRING:
                        out.append(
                            FieldViolation(where, f"a key is longer than {MAX_CONTENT_STRING} characters")
                        )
                        return
                    if value_field.message_type is not None:
                        stack.append((item, f"{where}[{key[:64]!r}]", depth + 1))
                    elif isinstance(item, str | bytes) and len(item) > MAX_CONTENT_STRING:
                        out.append(FieldViolation(f"{where}[{key[:64]!r}]", _too_long()))
                        return
                continue
            values = list(value) if repeated else [value]
            elements += len(values)
            if elements > MAX_CONTENT_ELEMENTS:
                out.append(FieldViolation(path, f"more than {MAX_CONTENT_ELEMENTS} values in one document"))
                return
            for i, item in enumerate(values):
                at = f"{where}[{i}]" if repeated else where
                if field.message_type is _TIMESTAMP:
                    # Past year 9999 or with nanos out of range, every datetime conversion downstream raises.
                    _IN_RANGE.check(item, at, out)
                elif field.message_type is not None:
                    stack.append((item, at, depth + 1))
                elif isinstance(item, str | bytes) and len(item) > MAX_CONTENT_STRING:
                    out.append(FieldViolation(at, _too_long()))
                    return


def _too_long() -> str:
    return f"at most {MAX_CONTENT_STRING} characters"


def _enum(message: type[Message], name: str, max_items: int = 64) -> Enum:
    return Enum(message.DESCRIPTOR.fields_by_name[name], max_items)  # type: ignore[arg-type]


_ID: Final = Text(MAX_ID_LENGTH)
_MAPPING_ID: Final = Text(128)

#: Request message full name -> field -> rule. Every field of every RPC's request is listed.
RULES: Final[dict[str, dict[str, Rule]]] = {
    "returnbridge.api.v1.SubmitReturnRequest": {
        "return_order": Document(),
        "client_reference": Text(128),
    },
    # Exactly one of the two is required: the servicer says so, naming both.
    "returnbridge.api.v1.GetReturnStatusRequest": {
        "return_id": Text(MAX_ID_LENGTH),
        "rma_number": Text(MAX_ID_LENGTH),
    },
    "returnbridge.api.v1.WatchSyncEventsRequest": {
        "return_ids": Texts(),
        "erps": _enum(returns_pb2.WatchSyncEventsRequest, "erps"),
        "states": _enum(returns_pb2.WatchSyncEventsRequest, "states"),
        "after_sequence": Seq(),
        "from_beginning": Flag(),
    },
    "returnbridge.api.v1.GetInventoryRequest": {
        "sku": Text(MAX_ID_LENGTH, required=True),
        "location": Nested({"site": _ID, "sub_location": _ID}),
        "target": _ID,
    },
    "returnbridge.api.v1.ListInventoryRequest": {
        "skus": Texts(),
        "sites": Texts(),
        "page_size": PageSize(),
        "page_token": PageToken(digits=False),
    },
    "returnbridge.api.v1.WatchInventoryRequest": {
        "skus": Texts(),
        "sites": Texts(),
        "include_snapshot": Flag(),
    },
    "returnbridge.api.v1.TranslateRequest": {
        "mapping_id": _MAPPING_ID,
        "return_order": Document(),
        "erp_payload": Blob(4 * 1_048_576),
        "explain": Flag(),
    },
    "returnbridge.api.v1.TranslateBatchRequest": {
        "mapping_id": _MAPPING_ID,
        "return_orders": Document(max_items=MAX_BATCH_DOCUMENTS),
        "erp_payloads": Blob(4 * 1_048_576, max_items=MAX_BATCH_DOCUMENTS),
    },
    "returnbridge.api.v1.ListDeadLettersRequest": {
        "erp": _enum(admin_pb2.ListDeadLettersRequest, "erp"),
        "return_id": _ID,
        "include_resolved": Flag(),
        "page_size": PageSize(),
        "page_token": PageToken(),
    },
    "returnbridge.api.v1.GetDeadLetterRequest": {"id": Seq(required=True)},
    "returnbridge.api.v1.ReplayDeadLetterRequest": {
        "id": Seq(required=True),
        "comment": Text(MAX_COMMENT_LENGTH, single_line=False),
    },
    "returnbridge.api.v1.DiscardDeadLetterRequest": {
        "id": Seq(required=True),
        "comment": Text(MAX_COMMENT_LENGTH, single_line=False),
    },
    "returnbridge.api.v1.ValidateMappingRequest": {
        "spec_yaml": Blob(MAX_SPEC_BYTES, required=True),
        "file_name": Text(256),
        "base_mapping_id": _MAPPING_ID,
    },
    "returnbridge.api.v1.QueryAuditRequest": {
        "since": Timestamp(),
        "until": Timestamp(),
        "action": _ID,
        "object_id": Text(256),
        "page_size": PageSize(),
        "page_token": PageToken(),
    },
    "returnbridge.api.v1.VerifyAuditRequest": {},
    "returnbridge.api.v1.ReconciliationRequest": {
        "erp": _enum(admin_pb2.ReconciliationRequest, "erp"),
        "since": Timestamp(),
    },
}


def check_request(request: Message) -> None:
    """Check ``request`` against its rules; messages without rules (health, reflection) pass.

    Raises:
        ValidationError: every violation at once (INVALID_ARGUMENT with field violations).
    """
    rules = RULES.get(request.DESCRIPTOR.full_name)
    if not rules:
        return
    out: Out = []
    for name, rule in rules.items():
        field = request.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and not field.is_repeated:
            if not request.HasField(name):
                if isinstance(rule, Document | Nested | Timestamp):
                    continue
        rule.check(getattr(request, name), name, out)
    if out:
        raise ValidationError(
            "invalid request: " + "; ".join(f"{v.field}: {v.description}" for v in out[:5]),
            [replace(v, rule=v.rule or RULE_REQUEST_LIMITS) for v in out],
        )
