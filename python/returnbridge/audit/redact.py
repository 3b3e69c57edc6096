"""Redaction of secrets and personal data by key name and by value pattern, for audit entries, alerts and logs."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Final

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "install_log_redaction",
    "is_sensitive_key",
    "redact_mapping",
    "redact_text",
    "register_secret",
]

REDACTED: Final = "[REDACTED]"

# Whole words of a key name that mark its value as secret or personal, whatever the value looks like.
_SENSITIVE_WORDS: Final = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "credential", "credentials",
        "authorization", "cookie", "bearer", "jwt", "signature", "otp", "pin", "privatekey",
        "email", "mail", "phone", "mobile", "fax", "address", "street", "ssn", "iban", "dob", "birthdate",
        "firstname", "lastname", "fullname", "surname",
    }
)  # fmt: skip
# "<word> key" pairs that name key material (a bare "key" usually names an identifier, e.g. an incident key).
_KEY_QUALIFIERS: Final = frozenset(
    {"api", "private", "access", "secret", "signing", "encryption", "client", "ssh"}
)
# "name" is personal unless it names a thing of ours.
_NON_PERSONAL_NAME_QUALIFIERS: Final = frozenset(
    {"mapping", "document", "file", "erp", "stream", "consumer", "principal", "pack", "field", "object", "rule",
     "operation", "service", "method", "role", "host", "bucket", "subject", "target", "connector", "kind", "type"}
)  # fmt: skip

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

_VALUE_PATTERNS: Final = (
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?-----END [A-Z0-9 ]+-----", re.DOTALL),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\bbasic\s+[A-Za-z0-9+/=]{8,}"),
    re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key|client[_-]?secret)\b\s*[=:]\s*[^\s,;&]+"),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{8,}\b"),
    # Mixed-case alphanumeric runs of 32+ look like generated keys; lower-case hex digests and ids stay readable.
    re.compile(r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])(?=[A-Za-z0-9+/_-]*\d)"
               r"[A-Za-z0-9+/_-]{32,}={0,2}"),
    re.compile(r"(?<![\w+])\+\d[\d ()-]{7,}\d\b"),
)  # fmt: skip

_literal_lock = threading.Lock()
_literals: list[str] = []


def register_secret(value: str) -> None:
    """Redact this exact string wherever it appears (e.g. an HMAC secret read from the environment)."""
    # Short literals would shred ordinary text; real secrets are longer.
    if len(value) < 6:
        return
    with _literal_lock:
        if value not in _literals:
            _literals.append(value)
            _literals.sort(key=len, reverse=True)


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(key) if w]


def is_sensitive_key(key: str) -> bool:
    """True when a key name (snake, kebab or camel case) names a secret or personal data."""
    words = _words(key)
    joined = "".join(words)
    if joined in _SENSITIVE_WORDS:
        return True
    for index, word in enumerate(words):
        previous = words[index - 1] if index else ""
        if word in _SENSITIVE_WORDS:
            return True
        if word == "key" and previous in _KEY_QUALIFIERS:
            return True
        if word == "name" and previous not in _NON_PERSONAL_NAME_QUALIFIERS:
            return True
        if previous and previous + word in _SENSITIVE_WORDS:
            return True
    return False


def redact_text(text: str) -> str:
    """Replace every secret-looking or personal substring of ``text`` with ``[REDACTED]``."""
    with _literal_lock:
        literals = list(_literals)
    for literal in literals:
        text = text.replace(literal, REDACTED)
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_mapping(values: Mapping[str, str] | None) -> dict[str, str]:
    """Copy ``values`` with sensitive keys blanked and secret-looking substrings of other values removed."""
    if not values:
        return {}
    out: dict[str, str] = {}
    for key, value in values.items():
        text = str(key)
        out[redact_text(text)] = REDACTED if is_sensitive_key(text) else redact_text(str(value))
    return out


_TRACEBACK_FORMATTER = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Handler filter that redacts the message and any traceback text, so secrets never reach the output.

    Attach it to handlers (``handler.addFilter(RedactingFilter())``): logger filters do not see records
    propagated from child loggers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the raw exception text is never rendered.
            record.exc_text = _TRACEBACK_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one ``RedactingFilter`` to every handler of ``logger`` (default: the root logger); idempotent."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        for existing in handler.filters:
            if isinstance(existing, RedactingFilter):
                break
        else:
            handler.addFilter(_SHARED_FILTER)
    return _SHARED_FILTER


_SHARED_FILTER = RedactingFilter()
