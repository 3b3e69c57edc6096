"""Resolves the configured signing keys: each secret read once at startup, each target checked against the poller."""

from __future__ import annotations

from collections.abc import Mapping

from returnbridge.connectors.secrets import read_secret
from returnbridge.errors import ConfigError
from returnbridge.inbound.payloads import push_capable
from returnbridge.inbound.receiver import ReceiverKey
from returnbridge.inbound.settings import InboundKey

__all__ = ["resolve_keys"]

# Shorter than a SHA-256 block of entropy is guessable; the simulators' generated keys are 32 bytes.
MIN_SECRET_BYTES = 16


def resolve_keys(keys: list[InboundKey], polled: Mapping[str, tuple[str, str]]) -> dict[str, ReceiverKey]:
    """Key id -> credential, with the ERP of its target.

    Args:
        keys: the configured keys.
        polled: the poller's targets, target -> (ERP descriptor name, tenant).

    Raises:
        ConfigError: a secret that cannot be read or is too short, a target the poller does not poll (for
            that tenant), or a target whose ERP cannot push.
    """
    resolved: dict[str, ReceiverKey] = {}
    for key in keys:
        name = f"inbound key {key.key_id!r}"
        secret = read_secret(
            key.secret, key.secret_env, key.secret_file, name=f"{name} secret"
        ).get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{name}: the secret must be at least {MIN_SECRET_BYTES} bytes")
        if key.target not in polled:
            names = ", ".join(sorted(polled)) or "none"
            raise ConfigError(f"{name}: target {key.target!r} is not polled (sync.targets: {names})")
        erp, tenant = polled[key.target]
        if tenant != key.tenant:
            raise ConfigError(
                f"{name}: target {key.target!r} is polled for another tenant, not {key.tenant!r}"
            )
        if not push_capable(erp):
            raise ConfigError(f"{name}: target {key.target!r} is {erp}, which does not push notifications")
        resolved[key.key_id] = ReceiverKey(key.key_id, secret.encode(), key.tenant, key.target, erp)
    return resolved
