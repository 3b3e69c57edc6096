"""Redaction by key name and by value pattern, and the logging filter."""

from __future__ import annotations

import logging

import pytest

from returnbridge.audit.redact import (
    REDACTED,
    RedactingFilter,
    install_log_redaction,
    is_sensitive_key,
    redact_mapping,
    redact_text,
    register_secret,
)


@pytest.mark.parametrize(
    "key",
    ["password", "db_password", "apiKey", "api_key", "X-Api-Key", "client_secret", "refreshToken", "authorization",
     "customer_email", "email", "phone", "shipping_address", "first_name", "customerName", "name", "private_key",
     "accessKey", "Cookie", "iban"],
)  # fmt: skip
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    ["rma_number", "mapping_name", "idempotency_key", "incident_key", "return_id", "document_type", "erp",
     "stream_name", "quantity", "reason", "file_name"],
)  # fmt: skip
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("mail jane.doe+returns@example.co.uk now", "jane.doe+returns@example.co.uk"),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("basic header Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJzdWIiOiIxIn0"),
        ("url ?password=hunter2&x=1", "hunter2"),
        ("api_key: s3cr3tvalue, next", "s3cr3tvalue"),
        ("aws AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("stripe sk_live_abcdef123456", "sk_live_abcdef123456"),
        ("key Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNb", "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNb"),
        ("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "MIIB"),
        ("call +1 (555) 010-9999", "010-9999"),
    ],
)
def test_value_patterns(text: str, leak: str) -> None:
    redacted = redact_text(text)
    assert leak not in redacted and REDACTED in redacted


def test_ordinary_values_survive() -> None:
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    text = f"RMA-00000042 v3 SKU-1001 qty 2.500 EUR 19.99 digest {digest} /returnbridge.api.v1.X/Y"
    assert redact_text(text) == text


def test_registered_literal_secret() -> None:
    register_secret("plain-words-secret")
    register_secret("abc")  # too short to register safely: ignored
    assert redact_text("x plain-words-secret y abc") == f"x {REDACTED} y abc"


def test_mapping_redacts_keys_and_values() -> None:
    assert redact_mapping({"token": "t", "note": "from a@b.io", "rma": "RMA-1"}) == {
        "token": REDACTED,
        "note": f"from {REDACTED}",
        "rma": "RMA-1",
    }
    assert redact_mapping(None) == {}


def test_log_filter_redacts_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("rb.test.redact")
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise ValueError("token=abcdef123 for jane@example.com")
    except ValueError:
        logger.exception("failed for %s", "jane@example.com")
    assert "jane@example.com" not in caplog.text and "abcdef123" not in caplog.text
    assert "ValueError" in caplog.text


def test_install_log_redaction_is_idempotent() -> None:
    logger = logging.getLogger("rb.test.install")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        install_log_redaction(logger)
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        logger.removeHandler(handler)
