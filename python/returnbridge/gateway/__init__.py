"""The edge: gRPC server, interceptors (request id, errors, auth, rate limits, RBAC) and security config.

Nothing behind the gateway imports it; ``app.py`` wires it to the servicers.
"""

from returnbridge.gateway.auth import Authenticator, generate_api_key, hash_api_key, server_credentials
from returnbridge.gateway.interceptors import REQUEST_ID_HEADER, build_interceptors, remaining_timeout
from returnbridge.gateway.ratelimit import RateLimiter
from returnbridge.gateway.rbac import ROLES, authorize, permissions_for, require_tenant_match
from returnbridge.gateway.security_config import (
    ApiKeyConfig,
    JwtConfig,
    RateLimitConfig,
    SecurityConfig,
    TlsConfig,
    parse_section,
)
from returnbridge.gateway.server import API_SERVICES, GrpcServer, GrpcSettings

__all__ = [
    "API_SERVICES",
    "REQUEST_ID_HEADER",
    "ROLES",
    "ApiKeyConfig",
    "Authenticator",
    "GrpcServer",
    "GrpcSettings",
    "JwtConfig",
    "RateLimitConfig",
    "RateLimiter",
    "SecurityConfig",
    "TlsConfig",
    "authorize",
    "build_interceptors",
    "generate_api_key",
    "hash_api_key",
    "parse_section",
    "permissions_for",
    "remaining_timeout",
    "require_tenant_match",
    "server_credentials",
]
