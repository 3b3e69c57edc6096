"""Configuration models of the gateway's security section: principals, JWT, TLS/mTLS, rate limits, reference data."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from returnbridge.errors import ConfigError

__all__ = [
    "ApiKeyConfig",
    "JwtConfig",
    "MtlsPrincipalConfig",
    "RateLimitConfig",
    "SecurityConfig",
    "TlsConfig",
    "parse_section",
]

M = TypeVar("M", bound=BaseModel)

_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_NAME: Final = re.compile(r"^[A-Za-z0-9_.@:/-]{1,128}$")
_TENANT: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


def parse_section(model: type[M], data: Mapping[str, Any] | None, section: str) -> M:
    """Validate one configuration section, turning pydantic's errors into a ConfigError naming each key.

    Raises:
        ConfigError: e.g. ``security.jwt.algorithms.0: unsupported JWT algorithms ['none'] …``.
    """
    try:
        return model.model_validate(dict(data or {}))
    except PydanticValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join([section, *(str(part) for part in error["loc"])])
            problems.append(f"{where}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_roles(roles: list[str]) -> list[str]:
    # Imported here: rbac imports nothing from this module, but keeping config importable on its own is cheap.
    from returnbridge.gateway.rbac import ROLES

    if "system" in roles:
        raise ValueError("role 'system' is reserved for in-process work and cannot be given to a caller")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}; known roles are {sorted(ROLES)}")
    if not roles:
        raise ValueError("a principal needs at least one role")
    return roles


def _check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise ValueError("tenant id must be 1-64 characters of [A-Za-z0-9_-]")
    return tenant


class ApiKeyConfig(_Model):
    """One API key, stored only as the SHA-256 hex digest of the key, bound to a principal."""

    name: str
    tenant_id: str
    roles: list[str]
    sha256: str = Field(description="lower-case hex SHA-256 of the raw key (see docs/security.md)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("principal name must be 1-128 characters of [A-Za-z0-9_.@:/-]")
        return value

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return _check_tenant(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        return _check_roles(value)

    @field_validator("sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not _HEX64.match(value):
            raise ValueError("sha256 must be 64 lower-case hex characters (the digest, never the key itself)")
        return value


class JwtConfig(_Model):
    """Bearer JWT validation. Exactly one key source: an HMAC secret from the environment, a PEM file or a JWKS file."""

    algorithms: list[str] = Field(min_length=1, description="explicit allow-list, e.g. [RS256]; never 'none'")
    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    hmac_secret_env: str | None = Field(
        default=None, description="environment variable holding the HMAC secret"
    )
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # Claims beyond exp/iat/iss/aud that must be present.
    tenant_claim: str = "tenant_id"
    roles_claim: str = "roles"
    name_claim: str = "sub"
    max_token_lifetime_seconds: int = Field(default=24 * 3600, ge=60)

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, value: list[str]) -> list[str]:
        known = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
        bad = [a for a in value if a not in known]
        if bad:
            raise ValueError(
                f"unsupported JWT algorithms {bad} ('none' is never allowed); use {sorted(known)}"
            )
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        sources = [s for s in (self.hmac_secret_env, self.public_key_file, self.jwks_file) if s]
        if len(sources) != 1:
            raise ValueError("configure exactly one of hmac_secret_env, public_key_file, jwks_file")
        hmac_algs = set(self.algorithms) & HMAC_ALGORITHMS
        asym_algs = set(self.algorithms) & ASYMMETRIC_ALGORITHMS
        # Mixing families invites algorithm confusion (a public key used as an HMAC secret).
        if self.hmac_secret_env and asym_algs:
            raise ValueError(f"an HMAC secret cannot verify {sorted(asym_algs)}")
        if not self.hmac_secret_env and hmac_algs:
            raise ValueError(f"{sorted(hmac_algs)} need hmac_secret_env, not a public key")
        return self


class MtlsPrincipalConfig(_Model):
    """Maps a client certificate identity (subject CN or a SAN entry) to a principal."""

    identity: str = Field(min_length=1, description="certificate common name or subject alternative name")
    name: str
    tenant_id: str
    roles: list[str]

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        return _check_tenant(value)

    @field_validator("roles")
    @classmethod
    def _roles(cls, value: list[str]) -> list[str]:
        return _check_roles(value)


class TlsConfig(_Model):
    """Server TLS; with ``client_ca_file`` and ``require_client_cert`` it is mutual TLS."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    require_client_cert: bool = True
    principals: list[MtlsPrincipalConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mtls_needs_ca(self) -> TlsConfig:
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file")
        identities = [p.identity for p in self.principals]
        if len(identities) != len(set(identities)):
            raise ValueError("each certificate identity may map to one principal only")
        return self


class RateLimitConfig(_Model):
    """Token buckets per principal and per tenant, plus a cap on concurrent RPCs for the whole server."""

    enabled: bool = True
    # Sized for the product's promise: one RMS may hold 10,000 return transactions in flight at once, while
    # a single principal's sustained rate stays below what one gateway process serves (~2,000 calls/s on
    # 2 cores), so one noisy client cannot starve the others. Tighten per deployment.
    principal_rate_per_second: float = Field(default=1_000.0, gt=0)
    principal_burst: int = Field(default=10_000, ge=1)
    tenant_rate_per_second: float = Field(default=2_000.0, gt=0)
    tenant_burst: int = Field(default=20_000, ge=1)
    # Matches grpc.max_pending_requests: the gateway holds what the transport accepts.
    max_concurrent_rpcs: int = Field(default=20_000, ge=1)
    # Long-lived watch streams would otherwise hold concurrency slots for hours.
    concurrency_exempt_methods: list[str] = Field(
        default_factory=lambda: [
            "/returnbridge.api.v1.ReturnsService/WatchSyncEvents",
            "/returnbridge.api.v1.InventoryService/WatchInventory",
        ]
    )
    # Bound on remembered buckets; the least recently used are forgotten (they refill to full anyway).
    max_tracked_keys: int = Field(default=10_000, ge=10)
    # Set by ``serve`` for its gateway processes: the file of buckets they share (gateway/shared_buckets.py), so the
    # limits above are the port's whatever connection a call arrives on. None: this process's own buckets.
    shared_buckets: str | None = None


HEALTH_METHODS: Final = ("/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch")
REFLECTION_METHODS: Final = (
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
)
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})


class SecurityConfig(_Model):
    """``security:`` section: how callers authenticate and how fast they may call."""

    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    jwt: JwtConfig | None = None
    tls: TlsConfig | None = None
    rate_limits: RateLimitConfig = RateLimitConfig()
    # Reachable without credentials: health checks only. Reflection needs a credential (any role) unless
    # reflection_open_on_loopback is set for development and grpc.host is a loopback address.
    open_methods: list[str] = Field(default_factory=lambda: list(HEALTH_METHODS))
    reflection_open_on_loopback: bool = False

    @field_validator("open_methods")
    @classmethod
    def _only_health_or_reflection(cls, methods: list[str]) -> list[str]:
        allowed = HEALTH_METHODS + REFLECTION_METHODS
        others = [m for m in methods if m not in allowed]
        if others:
            raise ValueError(f"only health and reflection RPCs may be open, not {others}")
        return methods

    def with_open_reflection(self, grpc_host: str) -> SecurityConfig:
        """This config with reflection open when ``reflection_open_on_loopback`` asks for it.

        Raises:
            ConfigError: the switch is on but ``grpc_host`` is not a loopback address.
        """
        if not self.reflection_open_on_loopback:
            return self
        if grpc_host not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"security.reflection_open_on_loopback: grpc.host {grpc_host!r} is not a loopback address; "
                "open reflection is for local development only"
            )
        methods = [*self.open_methods, *(m for m in REFLECTION_METHODS if m not in self.open_methods)]
        return self.model_copy(update={"open_methods": methods})

    @model_validator(mode="after")
    def _unique_keys(self) -> SecurityConfig:
        digests = [k.sha256 for k in self.api_keys]
        if len(digests) != len(set(digests)):
            raise ValueError("the same API key digest is configured twice")
        # One principal may hold several keys at once: that is how keys are rotated.
        return self
