"""Per-call context (request id, authenticated principal) carried in context variables."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field

from returnbridge.errors import AuthError


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: set by the auth interceptor from the credential, never from a request body."""

    name: str
    tenant_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    # "api_key", "jwt", "mtls", or "system" for internal work.
    auth_method: str = "api_key"


SYSTEM = Principal(name="system", tenant_id="", roles=frozenset({"system"}), auth_method="system")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("returnbridge_request_id", default="")
_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "returnbridge_principal", default=None
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> contextvars.Token[str]:
    return _request_id.set(value)


def current_principal() -> Principal:
    """The authenticated caller; raises AuthError when the call was not authenticated."""
    principal = _principal.get()
    if principal is None:
        raise AuthError("no authenticated principal for this call")
    return principal


def maybe_principal() -> Principal | None:
    return _principal.get()


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _principal.set(principal)


def current_tenant() -> str:
    return current_principal().tenant_id
