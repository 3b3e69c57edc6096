"""The one HMAC-SHA256 scheme ERP notifications are signed with: the simulators sign, ``inbound`` verifies.

A request carries three headers: ``X-RB-Key-Id`` (which shared secret), ``X-RB-Timestamp`` (unix seconds
when it was signed) and ``X-RB-Signature: v1=<hex>``, the HMAC-SHA256 of ``"<timestamp>." + body`` under
that secret. Signing the timestamp with the body lets the receiver refuse a captured request replayed later
(the replay window) without keeping every signature it ever saw. The scheme is the one Stripe and Slack
webhooks use, so an ERP-side script or an iPaaS (Oracle Integration, SAP Integration Suite) can produce it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "KEY_ID_HEADER",
    "SCHEME",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "SignedHeaders",
    "check_timestamp",
    "read_headers",
    "sign",
    "signature_matches",
]

KEY_ID_HEADER = "X-RB-Key-Id"
TIMESTAMP_HEADER = "X-RB-Timestamp"
SIGNATURE_HEADER = "X-RB-Signature"
SCHEME = "v1"
# A timestamp is unix seconds: ten digits until the year 2286; more is not a timestamp but a probe.
_MAX_TIMESTAMP_DIGITS = 12
_HEX_SHA256 = 64


class SignatureError(Exception):
    """A request whose signature headers are missing, malformed, stale or wrong; ``reason`` is a metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    key_id: str
    timestamp: int
    signature: str  # lower-case hex, without the scheme prefix


def _mac(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, key_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers that authenticate ``body`` as sent by the holder of ``secret`` at ``timestamp``."""
    return {
        KEY_ID_HEADER: key_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={_mac(secret, timestamp, body)}",
    }


def read_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Parse the three headers without trusting them yet.

    Raises:
        SignatureError: a header is missing or malformed (reason ``missing_signature`` / ``malformed``).
    """
    key_id = headers.get(KEY_ID_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not key_id or not stamp or not signature:
        missing = [
            h
            for h, v in ((KEY_ID_HEADER, key_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, signature))
            if not v
        ]
        raise SignatureError("missing_signature", f"missing header(s): {', '.join(missing)}")
    if len(key_id) > 128 or not key_id.isprintable():
        raise SignatureError("malformed", f"{KEY_ID_HEADER} must be at most 128 printable characters")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be unix seconds (digits only)")
    scheme, _, digest = signature.partition("=")
    digest = digest.lower()
    if scheme != SCHEME or len(digest) != _HEX_SHA256 or any(c not in "0123456789abcdef" for c in digest):
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be '{SCHEME}=<64 hex digits>'")
    return SignedHeaders(key_id, int(stamp), digest)


def check_timestamp(timestamp: int, now: float, window_seconds: float) -> None:
    """Refuse a timestamp more than ``window_seconds`` away from ``now`` (either way: clocks drift).

    Raises:
        SignatureError: reason ``stale`` (too old) or ``future`` (too far ahead).
    """
    if timestamp < now - window_seconds:
        raise SignatureError(
            "stale", f"timestamp {timestamp} is older than the {window_seconds:g} s replay window"
        )
    if timestamp > now + window_seconds:
        raise SignatureError(
            "future", f"timestamp {timestamp} is more than {window_seconds:g} s in the future"
        )


def signature_matches(secret: bytes, signed: SignedHeaders, body: bytes) -> bool:
    """Constant-time comparison of the presented signature with the one ``secret`` gives."""
    return hmac.compare_digest(_mac(secret, signed.timestamp, body), signed.signature)
