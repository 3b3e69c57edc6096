"""Role-based access: roles -> permissions -> RPCs, and the tenant-scoping helper servicers call."""

from __future__ import annotations

from typing import Final

from returnbridge.domain.context import Principal, current_principal
from returnbridge.errors import PermissionDeniedError

__all__ = [
    "METHOD_PERMISSIONS",
    "PERMISSIONS",
    "ROLES",
    "authorize",
    "permissions_for",
    "require_tenant_match",
]

_RETURNS: Final = "/returnbridge.api.v1.ReturnsService/"
_INVENTORY: Final = "/returnbridge.api.v1.InventoryService/"
_TRANSLATION: Final = "/returnbridge.api.v1.TranslationService/"
_ADMIN: Final = "/returnbridge.api.v1.AdminService/"
_REFLECTION: Final = ("/grpc.reflection.v1alpha.ServerReflection/", "/grpc.reflection.v1.ServerReflection/")

#: Permission -> what it allows (the table in docs/security.md mirrors this).
PERMISSIONS: Final[dict[str, str]] = {
    "returns.submit": "submit return events",
    "returns.read": "read sync status and watch sync events",
    "inventory.read": "read and watch inventory levels",
    "translation.use": "translate documents with a mapping (dry run, no ERP call)",
    "dlq.read": "list and read dead letters",
    "dlq.manage": "replay or discard dead letters",
    "mapping.validate": "validate mapping specs and overrides",
    "audit.read": "query and verify the audit log",
    "reports.read": "read reconciliation reports",
    "api.describe": "list services and read the contract's descriptors (gRPC reflection)",
}

#: Every RPC of every v1 service (and reflection) needs exactly one permission; an RPC missing here is denied.
METHOD_PERMISSIONS: Final[dict[str, str]] = {
    _RETURNS + "SubmitReturn": "returns.submit",
    _RETURNS + "SubmitReturns": "returns.submit",
    _RETURNS + "GetReturnStatus": "returns.read",
    _RETURNS + "WatchSyncEvents": "returns.read",
    _INVENTORY + "GetInventory": "inventory.read",
    _INVENTORY + "ListInventory": "inventory.read",
    _INVENTORY + "WatchInventory": "inventory.read",
    _TRANSLATION + "Translate": "translation.use",
    _TRANSLATION + "TranslateBatch": "translation.use",
    _ADMIN + "ListDeadLetters": "dlq.read",
    _ADMIN + "GetDeadLetter": "dlq.read",
    _ADMIN + "ReplayDeadLetter": "dlq.manage",
    _ADMIN + "DiscardDeadLetter": "dlq.manage",
    _ADMIN + "ValidateMapping": "mapping.validate",
    _ADMIN + "QueryAudit": "audit.read",
    _ADMIN + "VerifyAudit": "audit.read",
    _ADMIN + "GetReconciliationReport": "reports.read",
    **{prefix + "ServerReflectionInfo": "api.describe" for prefix in _REFLECTION},
}

#: Role -> permissions. ``system`` is the in-process principal for internal work, never configured for callers.
ROLES: Final[dict[str, frozenset[str]]] = {
    "submitter": frozenset(
        {"returns.submit", "returns.read", "inventory.read", "translation.use", "api.describe"}
    ),
    "reader": frozenset({"returns.read", "inventory.read", "reports.read", "api.describe"}),
    "integration_admin": frozenset(
        {
            "returns.read",
            "inventory.read",
            "translation.use",
            "dlq.read",
            "dlq.manage",
            "mapping.validate",
            "reports.read",
            "api.describe",
        }
    ),
    "auditor": frozenset(
        {"audit.read", "returns.read", "inventory.read", "dlq.read", "reports.read", "api.describe"}
    ),
    "system": frozenset(PERMISSIONS),
}


def permissions_for(roles: frozenset[str] | set[str]) -> frozenset[str]:
    """Union of the permissions of ``roles``; unknown role names grant nothing."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return frozenset(granted)


def authorize(principal: Principal, method: str) -> str:
    """Return the permission ``method`` needs when ``principal`` holds it.

    Raises:
        PermissionDeniedError: unknown RPC, or the principal's roles lack the permission.
    """
    permission = METHOD_PERMISSIONS.get(method)
    if permission is None:
        raise PermissionDeniedError(f"{method} is not an allowed RPC")
    if permission not in permissions_for(principal.roles):
        raise PermissionDeniedError(
            f"principal {principal.name!r} lacks permission {permission!r} for {method}"
        )
    return permission


def require_tenant_match(body_tenant: str, *, field: str = "tenant_id") -> str:
    """Return the caller's tenant; a request body may leave ``tenant_id`` empty or repeat it, nothing else.

    The internal ``system`` principal (no tenant of its own) acts for the tenant the body names.

    Raises:
        AuthError: the call is not authenticated.
        PermissionDeniedError: the body names another tenant than the credential.
    """
    principal = current_principal()
    if "system" in principal.roles and not principal.tenant_id:
        return body_tenant
    if body_tenant and body_tenant != principal.tenant_id:
        raise PermissionDeniedError(
            f"{field} {body_tenant!r} does not match the caller's tenant; leave it empty or set it to the credential's"
        )
    return principal.tenant_id
