"""The strict input contract: ASCII decimals and dates, and every enum value known, anywhere in a message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from returnbridge.errors import FieldViolation

__all__ = [
    "RULE_DATE",
    "RULE_DECIMAL",
    "RULE_ENUM",
    "Walked",
    "enum_violations",
    "parse_date",
    "parse_decimal",
    "walk",
]

RULE_DECIMAL: Final = "contract.decimal"
RULE_DATE: Final = "contract.date"
RULE_ENUM: Final = "contract.enum"

# [0-9], never \d (which takes Arabic-Indic and full-width digits), and fullmatch, never $ (which takes a
# trailing newline): "49.95\n", Arabic-Indic "49.95" and full-width "49" are not decimals.
_DECIMAL: Final = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,12})?")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_decimal(text: str) -> Decimal | None:
    """The exact value of an ASCII decimal string (optional '-', up to 18.12 digits); None when it is not one."""
    return Decimal(text) if _DECIMAL.fullmatch(text) else None


def parse_date(text: str) -> date | None:
    """An ISO 8601 calendar date 'YYYY-MM-DD' in ASCII digits; None when it is not one."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


Walked = tuple[str, FieldDescriptor, Any, Message | None]


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def walk(message: Message, path: str) -> Iterator[Walked]:
    """Every set scalar in ``message`` and its sub-messages, as (path, field, value, owner).

    ``owner`` is the message a singular scalar can be set on (None for list items and map keys). Paths follow
    the validation's style: ``return_order.lines[2].sku``, ``...custom_fields['key']``; a map's key is yielded
    at the entry's path with the key field's descriptor.
    """
    for field, value in message.ListFields():
        here = f"{path}.{field.name}"
        entry_type = field.message_type
        if entry_type is not None and entry_type.GetOptions().map_entry:
            value_field = entry_type.fields_by_name["value"]
            for key, item in value.items():
                entry = f"{here}[{key!r}]"
                yield entry, entry_type.fields_by_name["key"], key, None
                if value_field.message_type is not None:
                    yield from walk(item, entry)
                else:
                    yield entry, value_field, item, None
        elif entry_type is not None:
            items = enumerate(value) if _repeated(field) else [(None, value)]
            for index, item in items:
                yield from walk(item, here if index is None else f"{here}[{index}]")
        elif _repeated(field):
            for index, item in enumerate(value):
                yield f"{here}[{index}]", field, item, None
        else:
            yield here, field, value, message


def enum_violations(message: Message, path: str) -> list[FieldViolation]:
    """One violation per enum field holding a number its enum does not define (proto3 keeps unknown numbers)."""
    out = []
    for here, field, value, _ in walk(message, path):
        enum = field.enum_type
        if enum is None or value in enum.values_by_number:
            continue
        names = [v.name for v in enum.values if v.number != 0]
        out.append(FieldViolation(here, f"unknown value {value}; one of {', '.join(names)}", RULE_ENUM))
    return out
