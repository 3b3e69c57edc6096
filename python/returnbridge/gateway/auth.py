"""Caller authentication: API keys (SHA-256 digests), JWTs with an algorithm allow-list, and mTLS identities."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import grpc
import jwt

from returnbridge.audit.redact import register_secret
from returnbridge.domain.context import Principal
from returnbridge.errors import AuthError, ConfigError
from returnbridge.gateway.rbac import ROLES
from returnbridge.gateway.security_config import SecurityConfig

__all__ = ["Authenticator", "generate_api_key", "hash_api_key", "server_credentials"]

_BEARER: Final = re.compile(r"^[Bb]earer ([A-Za-z0-9._~+/=-]{16,8192})$")
_TENANT: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_JWT_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_MIN_HMAC_SECRET_BYTES: Final = 32

Metadata = Sequence[tuple[str, str | bytes]]


def hash_api_key(raw_key: str) -> str:
    """The digest to put in configuration for ``raw_key`` (lower-case hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def generate_api_key() -> tuple[str, str]:
    """A new random key and its digest: hand the key to the client once, store only the digest."""
    raw = "rbk_" + secrets.token_urlsafe(32)
    return raw, hash_api_key(raw)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"security: cannot read {what} {path}: {exc.strerror}") from exc


class Authenticator:
    """Turns call metadata (and the TLS peer) into a ``Principal`` or raises ``AuthError``.

    Args:
        config: the validated ``security`` section.
        env: where ``jwt.hmac_secret_env`` is looked up (default ``os.environ``).

    Raises:
        ConfigError: a key file is unreadable or invalid, or the HMAC secret is missing or too short.
    """

    def __init__(self, config: SecurityConfig, *, env: Mapping[str, str] | None = None) -> None:
        self._config = config
        self._api_keys: list[tuple[bytes, Principal]] = [
            (bytes.fromhex(k.sha256), Principal(k.name, k.tenant_id, frozenset(k.roles), "api_key"))
            for k in config.api_keys
        ]
        self._jwt_key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        jwt_config = config.jwt
        if jwt_config is not None:
            environ = os.environ if env is None else env
            if jwt_config.hmac_secret_env:
                secret = environ.get(jwt_config.hmac_secret_env, "")
                if len(secret.encode()) < _MIN_HMAC_SECRET_BYTES:
                    raise ConfigError(
                        f"security.jwt.hmac_secret_env: ${jwt_config.hmac_secret_env} must hold a secret of at least "
                        f"{_MIN_HMAC_SECRET_BYTES} bytes"
                    )
                register_secret(secret)
                self._jwt_key = secret
            elif jwt_config.public_key_file:
                self._jwt_key = _read(jwt_config.public_key_file, "JWT public key")
            elif jwt_config.jwks_file:
                try:
                    self._jwks = jwt.PyJWKSet.from_json(_read(jwt_config.jwks_file, "JWKS").decode())
                except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError) as exc:
                    raise ConfigError(f"security.jwt.jwks_file {jwt_config.jwks_file}: {exc}") from exc
        self._mtls: dict[str, Principal] = {}
        if config.tls is not None and config.tls.require_client_cert:
            self._mtls = {
                p.identity: Principal(p.name, p.tenant_id, frozenset(p.roles), "mtls")
                for p in config.tls.principals
            }

    def is_open(self, method: str) -> bool:
        """Health and reflection RPCs need no credentials."""
        return method in self._config.open_methods

    def authenticate(
        self, metadata: Metadata | None, auth_context: Mapping[str, Iterable[bytes]] | None
    ) -> Principal:
        """Principal of the call: bearer token if present, else the verified client certificate.

        Raises:
            AuthError: no credentials, or credentials that do not check out (never says which key was close).
        """
        values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
        if len(values) > 1:
            raise AuthError("more than one authorization header")
        if values:
            header = values[0].decode(errors="replace") if isinstance(values[0], bytes) else values[0]
            match = _BEARER.match(header.strip())
            if match is None:
                raise AuthError("authorization must be 'Bearer <token>'")
            token = match.group(1)
            if self._config.jwt is not None and _JWT_SHAPE.match(token) and token.startswith("eyJ"):
                return self._from_jwt(token)
            return self._from_api_key(token)
        principal = self._from_certificate(auth_context)
        if principal is not None:
            return principal
        raise AuthError("missing credentials: send 'authorization: Bearer <token>'")

    def _from_api_key(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        # Compare against every configured digest, without stopping early, so timing says nothing.
        for configured, principal in self._api_keys:
            if hmac.compare_digest(digest, configured):
                found = principal
        if found is None:
            raise AuthError("invalid API key")
        return found

    def _from_jwt(self, token: str) -> Principal:
        config = self._config.jwt
        assert config is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"malformed token: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in config.algorithms:
            raise AuthError(f"token algorithm {algorithm!r} is not allowed")
        key = self._jwt_key
        if self._jwks is not None:
            kid = header.get("kid")
            candidates = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
            if len(candidates) != 1:
                raise AuthError("token key id does not name exactly one configured key")
            key = candidates[0].key
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={"require": ["exp", "iat", "iss", "aud", config.name_claim, config.tenant_claim]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token not yet valid") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise AuthError("invalid token: exp and iat must be numbers")
        if exp - iat > config.max_token_lifetime_seconds:
            raise AuthError("invalid token: lifetime exceeds the configured maximum")
        name, tenant = claims[config.name_claim], claims[config.tenant_claim]
        if not isinstance(name, str) or not name:
            raise AuthError(f"invalid token: claim {config.name_claim!r} must be a non-empty string")
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise AuthError(f"invalid token: claim {config.tenant_claim!r} is not a valid tenant id")
        raw_roles = claims.get(config.roles_claim, [])
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.split()
        if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise AuthError(f"invalid token: claim {config.roles_claim!r} must be a list of role names")
        # "system" is reserved for in-process work; a token can never claim it.
        roles = frozenset(r for r in raw_roles if r in ROLES and r != "system")
        return Principal(name=name, tenant_id=tenant, roles=roles, auth_method="jwt")

    def _from_certificate(self, auth_context: Mapping[str, Iterable[bytes]] | None) -> Principal | None:
        if not self._mtls or not auth_context:
            return None
        if list(auth_context.get("transport_security_type", ())) != [b"ssl"]:
            return None
        identities = [
            value.decode(errors="replace")
            for key in ("x509_subject_alternative_name", "x509_common_name")
            for value in auth_context.get(key, ())
        ]
        if not identities:
            return None
        for identity in identities:
            principal = self._mtls.get(identity)
            if principal is not None:
                return principal
        raise AuthError("client certificate identity is not mapped to a principal")


def server_credentials(config: SecurityConfig) -> grpc.ServerCredentials | None:
    """TLS (or mutual TLS) credentials for ``server.add_secure_port``; None when TLS is not configured.

    Raises:
        ConfigError: a certificate or key file cannot be read.
    """
    tls = config.tls
    if tls is None:
        return None
    key = _read(tls.key_file, "TLS key")
    cert = _read(tls.cert_file, "TLS certificate")
    ca = _read(tls.client_ca_file, "client CA") if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=tls.require_client_cert
    )
