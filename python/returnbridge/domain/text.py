"""Text hygiene: control characters (C0, DEL, C1) and invisible format characters in a request's text."""

from __future__ import annotations

import unicodedata
from typing import Final, Literal

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from returnbridge.domain.contract import walk
from returnbridge.errors import FieldViolation

__all__ = ["FREE_TEXT_FIELDS", "RULE_CONTROL", "RULE_FORMAT", "clean_text", "text_violations"]

RULE_CONTROL: Final = "text.control_character"
RULE_FORMAT: Final = "text.format_character"

# Human-written text: line breaks and tabs belong there; ERP description fields take them.
FREE_TEXT_FIELDS: Final = frozenset({"notes", "description", "name", "string_value"})
_LAYOUT: Final = frozenset("\t\n\r")


# Bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) reorder what a reader sees ("Trojan
# Source"): refused in free text too. Plain marks (U+200E, U+200F) and joiners stay allowed in prose.
_BIDI: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unassigned code points and noncharacters (U+FFFF, U+FDD0...), private use, surrogates: never text an ERP shows.
_NOT_TEXT: Final = frozenset({"Cn", "Co", "Cs"})
# Line and paragraph separators (U+2028, U+2029) break an identifier like a line feed does.
_SEPARATORS: Final = frozenset({"Zl", "Zp"})


def _bad(char: str, free_text: bool) -> str:
    category = unicodedata.category(char)
    if category == "Cc" and not (free_text and char in _LAYOUT):
        return RULE_CONTROL
    if char in _BIDI or category in _NOT_TEXT:
        return RULE_FORMAT
    # Zero-width and bidi marks make two identifiers look alike (U+200B, U+200E); harmless in prose.
    if (category == "Cf" or category in _SEPARATORS) and not free_text:
        return RULE_FORMAT
    return ""


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def text_violations(
    message: Message, path: str, *, strip: Literal["refuse", "strip"] = "refuse"
) -> list[FieldViolation]:
    """Control characters anywhere in ``message``'s strings, as field violations.

    With ``strip``, free-text fields lose their control characters in place (the message is changed) and
    yield no violation; identifiers and codes (every other string, map keys included) are always refused.
    """
    out: list[FieldViolation] = []
    for here, field, value, owner in walk(message, path):
        if field.type != FieldDescriptor.TYPE_STRING or value.isprintable():
            continue
        free = field.name in FREE_TEXT_FIELDS and owner is not None
        bad = [(char, rule) for char in value if (rule := _bad(char, free))]
        if not bad:
            continue
        if free and strip == "strip":
            setattr(owner, field.name, clean_text(value))
            continue
        chars = ", ".join(dict.fromkeys(_describe(c) for c, _ in bad))
        kind = "control" if bad[0][1] == RULE_CONTROL else "invisible format"
        out.append(FieldViolation(here, f"contains {kind} characters ({chars})", bad[0][1]))
    return out


def clean_text(value: str) -> str:
    """Free text without its control characters (tabs and line breaks kept)."""
    return "".join(c for c in value if not _bad(c, True))
