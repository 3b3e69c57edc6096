"""Validation seam of the submit path: the gateway's validation when wired, plus the checks the pipeline relies on."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.domain.strict import merge_violations, strict_violations
from returnbridge.errors import FieldViolation, ValidationError
from returnbridge.gateway.reference_data import ReferenceData
from returnbridge.gateway.validation import validate_return_order

Validator = Callable[[returns_pb2.ReturnOrder], None]
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def minimal_validate(order: returns_pb2.ReturnOrder) -> None:
    """The checks the pipeline itself relies on (ids, version, event, positive decimal quantities)."""
    problems: list[FieldViolation] = []
    if not order.return_id:
        problems.append(FieldViolation("return_order.return_id", "required"))
    if order.version == 0:
        problems.append(FieldViolation("return_order.version", "must be >= 1"))
    if order.event == returns_pb2.LIFECYCLE_EVENT_UNSPECIFIED:
        problems.append(FieldViolation("return_order.event", "required"))
    if order.erp_references:
        problems.append(FieldViolation("return_order.erp_references", "owned by the server; must be empty"))
    if not order.lines and order.event != returns_pb2.LIFECYCLE_EVENT_CANCELLED:
        problems.append(FieldViolation("return_order.lines", "at least one line is required"))
    for index, line in enumerate(order.lines):
        try:
            ok = bool(_DECIMAL.fullmatch(line.quantity)) and Decimal(line.quantity) > 0
        except InvalidOperation:
            ok = False
        if not ok:
            problems.append(
                FieldViolation(f"return_order.lines[{index}].quantity", "must be a decimal string > 0")
            )
    if problems:
        raise ValidationError("invalid return order", problems)


def default_validator() -> Validator:
    """The structural checks only; ``serve`` passes ``gateway_validator(reference_data)`` instead."""
    return minimal_validate


def gateway_validator(reference: ReferenceData, policy: ReturnPolicyConfig | None = None) -> Validator:
    """The gateway's complete validation and the strict checks (every violation at once), then the pipeline's own.

    The strict checks run first: with the "strip" text policy they clean free text before it is validated.
    """
    policy = policy or ReturnPolicyConfig()

    def validate(order: returns_pb2.ReturnOrder) -> None:
        ref = reference.for_tenant(order.tenant_id)
        violations = strict_violations(
            order, policy.for_tenant(order.tenant_id), ref.currencies.get(order.currency), ref
        )
        try:
            validate_return_order(order, reference, tenant_id=order.tenant_id)
        except ValidationError as exc:
            violations = merge_violations(violations, exc.violations)
        if violations:
            raise ValidationError(f"invalid return_order: {len(violations)} problem(s)", violations)
        minimal_validate(order)

    return validate
