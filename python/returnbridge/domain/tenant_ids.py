"""Per-tenant opaque ids for the stream sequences and revisions the API hands out.

Dead-letter ids, event sequences, audit sequences, inventory revisions and delivery sequences are positions in
streams every tenant shares, so raw numbers would let one tenant count another's activity (issue 12). Each is
shown to a tenant through a keyed permutation of 62-bit numbers (a Feistel network with HMAC-SHA256 rounds), keyed
by a secret, the tenant and the kind of number: the same position looks unrelated for two tenants or two kinds,
values reveal no order or gaps, and the server turns a token back into the position exactly. A token of another
tenant decodes to an unrelated position, which that tenant's checks then refuse as not found.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = ["MAX_OPAQUE", "TenantIds", "default_ids"]

_HALF: Final = 31
_MASK: Final = (1 << _HALF) - 1
_ROUNDS: Final = 6
_KEYED_MAX: Final = 4096
#: Every opaque value, and every position that can be encoded, is below 2^62.
MAX_OPAQUE: Final = (1 << (2 * _HALF)) - 1


class TenantIds:
    """Encodes and decodes positions per (tenant, kind). Thread-safe; holds only the key.

    Args:
        key: at least 16 secret bytes, the same in every process of one deployment.
    """

    __slots__ = ("_key", "_keyed")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("opaque id key must be at least 16 bytes")
        self._key = key
        # The HMAC already fed "<kind>\0<tenant>\0", per (tenant, kind): a copy per round costs half a new HMAC
        # (every SubmitReturn answer encodes a position: six rounds).
        self._keyed: dict[tuple[str, str], hmac.HMAC] = {}

    def _round(self, tenant: str, kind: str, index: int, half: int) -> int:
        keyed = self._keyed.get((tenant, kind))
        if keyed is None:
            if len(self._keyed) >= _KEYED_MAX:
                self._keyed.clear()
            keyed = hmac.new(self._key, f"{kind}\x00{tenant}\x00".encode(), hashlib.sha256)
            self._keyed[(tenant, kind)] = keyed
        mac = keyed.copy()
        mac.update(f"{index}\x00{half}".encode())
        return int.from_bytes(mac.digest()[:4], "big") & _MASK

    def _permute(self, tenant: str, kind: str, value: int) -> int:
        left, right = value >> _HALF, value & _MASK
        for index in range(_ROUNDS):
            left, right = right, left ^ self._round(tenant, kind, index, right)
        return (left << _HALF) | right

    def _unpermute(self, tenant: str, kind: str, value: int) -> int:
        left, right = value >> _HALF, value & _MASK
        for index in reversed(range(_ROUNDS)):
            left, right = right ^ self._round(tenant, kind, index, left), left
        return (left << _HALF) | right

    def encode(self, tenant: str, kind: str, position: int) -> int:
        """The opaque id of ``position`` (0 stays 0: "none").

        Raises:
            ValueError: ``position`` is negative or above ``MAX_OPAQUE``.
        """
        if not 0 <= position <= MAX_OPAQUE:
            raise ValueError(f"position {position} out of range")
        if position == 0:
            return 0
        value = self._permute(tenant, kind, position)
        while value == 0:  # cycle-walk, so 0 keeps meaning "none" and the mapping stays a bijection
            value = self._permute(tenant, kind, value)
        return value

    def decode(self, tenant: str, kind: str, token: int) -> int | None:
        """The position behind ``token`` (0 -> 0); None when ``token`` is outside the opaque range."""
        if not 0 <= token <= MAX_OPAQUE:
            return None
        if token == 0:
            return 0
        value = self._unpermute(tenant, kind, token)
        while value == 0:
            value = self._unpermute(tenant, kind, value)
        return value


_default: TenantIds | None = None


def default_ids() -> TenantIds:
    """A process-local codec for servicers built without one (tests, tools); the app passes a shared key."""
    global _default
    if _default is None:
        _default = TenantIds(secrets.token_bytes(32))
    return _default
