"""Exception tree for returnbridge, with the gRPC status each class maps to.

    ReturnBridgeError                      INTERNAL
    ├── ConfigError                        FAILED_PRECONDITION  (bad YAML / env value; names key and file)
    ├── ValidationError                    INVALID_ARGUMENT     (carries field violations)
    ├── MappingError                       INVALID_ARGUMENT
    │   ├── SpecError                      (a mapping spec or table failed to compile)
    │   └── TranslationError               (a document failed to translate; rule + path)
    ├── RoutingError                       FAILED_PRECONDITION  (no rule matched / bad routing file)
    ├── AuthError                          UNAUTHENTICATED
    │   └── PermissionDeniedError          PERMISSION_DENIED
    ├── NotFoundError                      NOT_FOUND
    ├── ConflictError                      FAILED_PRECONDITION  (same idempotency key, other payload)
    ├── PreconditionError                  FAILED_PRECONDITION  (lifecycle: event not allowed now, stale version;
    │                                                            carries google.rpc.PreconditionFailure violations)
    ├── RateLimitedError                   RESOURCE_EXHAUSTED   (retry_after seconds)
    ├── BusUnavailableError                UNAVAILABLE          (NATS unreachable; retry_after seconds)
    └── ErpError                           UNAVAILABLE          (an ERP call failed; keeps the ERP's own code)
        ├── TransientErpError              -> retry with backoff (timeouts, 429, 5xx, dropped connections)
        │   └── AmbiguousErpError          -> the request may have been applied: look up before re-create
        ├── PermanentErpError              -> dead letter (validation, business rules, duplicates refused)
        └── ErpAuthError                   -> dead letter + alert (credentials refused or expired)

The delivery worker decides retry vs dead letter from the class alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: a path such as ``return_order.lines[2].quantity`` and what is wrong with it."""

    field: str
    description: str
    # The rule that refused it (``rb_rejected_total{rule=...}``); "" = the generic input checks.
    rule: str = ""


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    """One failed precondition, as in google.rpc.PreconditionFailure.Violation.

    ``type`` is the kind (``LIFECYCLE``, ``VERSION``), ``subject`` what it is about (``return/<id>``).
    """

    type: str
    subject: str
    description: str


class ReturnBridgeError(Exception):
    """Base of every error returnbridge raises on purpose."""

    grpc_status: grpc.StatusCode = grpc.StatusCode.INTERNAL


class ConfigError(ReturnBridgeError):
    """A configuration value is missing or wrong; the message names the key and the file."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class ValidationError(ReturnBridgeError):
    """A request failed validation; every problem is listed at once."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.violations: list[FieldViolation] = list(violations or [])


class MappingError(ReturnBridgeError):
    """Base for mapping spec and translation failures."""

    grpc_status = grpc.StatusCode.INVALID_ARGUMENT


class SpecError(MappingError):
    """A mapping spec, override or lookup table is invalid (raised at load, never at request time)."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, rule: str = "") -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.rule = rule

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") if self.file else ""
        prefix = f"{where}: " if where else ""
        rule = f"rule {self.rule!r}: " if self.rule else ""
        return f"{prefix}{rule}{self.args[0]}"


class TranslationError(MappingError):
    """A document could not be translated; names the rule and the document path."""

    def __init__(self, message: str, *, rule: str = "", path: str = "") -> None:
        super().__init__(message)
        self.rule = rule
        self.path = path


class RoutingError(ReturnBridgeError):
    """No routing rule matched, or the routing file is invalid."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class AuthError(ReturnBridgeError):
    """Missing or invalid credentials."""

    grpc_status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(AuthError):
    """Authenticated, but the principal's roles do not allow the call."""

    grpc_status = grpc.StatusCode.PERMISSION_DENIED


class NotFoundError(ReturnBridgeError):
    """The object does not exist for the caller's tenant (never leaks other tenants' objects)."""

    grpc_status = grpc.StatusCode.NOT_FOUND


class ConflictError(ReturnBridgeError):
    """The same idempotency key arrived with a different payload."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class PreconditionError(ReturnBridgeError):
    """The request is well formed but not allowed in the object's current state (e.g. a lifecycle event)."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, message: str, violations: list[PreconditionViolation], *, rule: str = "") -> None:
        super().__init__(message)
        self.violations = list(violations)
        self.rule = rule


class RateLimitedError(ReturnBridgeError):
    """Over a rate or concurrency limit; ``retry_after`` says when to come back."""

    grpc_status = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, retry_after: float, quota: str = "") -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.quota = quota


class BusUnavailableError(ReturnBridgeError):
    """The message bus (NATS) cannot be reached, so nothing can be accepted durably now; safe to retry.

    A retry with the same idempotency key never duplicates: if an earlier attempt did reach JetStream, the
    retry answers DUPLICATE with the original acceptance.
    """

    grpc_status = grpc.StatusCode.UNAVAILABLE

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ErpError(ReturnBridgeError):
    """An ERP call failed. Keeps the ERP's own code, message and HTTP status."""

    grpc_status = grpc.StatusCode.UNAVAILABLE

    def __init__(
        self,
        message: str,
        *,
        erp: str = "",
        code: str = "",
        http_status: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.erp = erp
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    @property
    def erp_message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TransientErpError(ErpError):
    """Retrying later can succeed: timeouts, throttling, 5xx, connection failures."""

    @property
    def unanswered(self) -> bool:
        """The ERP did not answer (refused, timed out, 5xx): a sign of it being down. Throttling is an answer."""
        return self.http_status != 429


class AmbiguousErpError(TransientErpError):
    """The request may have been applied (timeout or connection dropped after sending).

    Before any retry the caller must look the document up by its external reference.
    """


class EarlierCreateSettling(TransientErpError):
    """No document found yet, but an earlier create of it was ambiguous and the ERP may still be committing it.

    Raised instead of creating again until ``delivery.ambiguous_settle_seconds`` after its answer was lost; the ERP
    answered the look-up, so it is no sign of the ERP being unreachable.
    """

    @property
    def unanswered(self) -> bool:
        return False


class PermanentErpError(ErpError):
    """The ERP refused the document for a reason retrying cannot fix."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION


class ErpAuthError(ErpError):
    """The ERP refused our credentials; needs a human and raises an alert."""

    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
