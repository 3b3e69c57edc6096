"""Calls the gateway's return validation when present, else a minimal structural check of our own."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import FieldViolation, ValidationError

Validator = Callable[[returns_pb2.ReturnOrder], None]
_DECIMAL = re.compile(r"^\d+(\.\d+)?$")


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
    if not order.lines:
        problems.append(FieldViolation("return_order.lines", "at least one line is required"))
    for index, line in enumerate(order.lines):
        try:
            ok = bool(_DECIMAL.match(line.quantity)) and Decimal(line.quantity) > 0
        except InvalidOperation:
            ok = False
        if not ok:
            problems.append(
                FieldViolation(f"return_order.lines[{index}].quantity", "must be a decimal string > 0")
            )
    if problems:
        raise ValidationError("invalid return order", problems)


def default_validator() -> Validator:
    """``returnbridge.gateway.validation.validate_return_order`` once it exists, else ``minimal_validate``."""
    try:
        module = importlib.import_module("returnbridge.gateway.validation")
    except ImportError:
        return minimal_validate
    found = getattr(module, "validate_return_order", None)
    if not callable(found):
        return minimal_validate

    def validate(order: returns_pb2.ReturnOrder) -> None:
        minimal_validate(order)
        found(order)

    return validate
