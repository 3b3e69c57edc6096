"""Checks against configured reference data: customer tiers, product types, reason codes, serial and lot control."""

from __future__ import annotations

from typing import Final, Protocol

from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import FieldViolation

__all__ = ["ReferenceSets", "reference_violations"]

RULE_TIER: Final = "reference.customer_tier"
RULE_PRODUCT_TYPE: Final = "reference.product_type"
RULE_REASON: Final = "reference.reason_code"
RULE_SERIAL: Final = "reference.serial_control"
RULE_LOT: Final = "reference.lot_control"


class ReferenceSets(Protocol):
    """The sets used here; an empty set means "not configured, not checked"."""

    @property
    def customer_tiers(self) -> frozenset[str]: ...
    @property
    def product_types(self) -> frozenset[str]: ...
    @property
    def reason_codes(self) -> frozenset[str]: ...
    @property
    def serial_controlled_skus(self) -> frozenset[str]: ...
    @property
    def lot_controlled_skus(self) -> frozenset[str]: ...


def _known(
    out: list[FieldViolation], path: str, value: str, known: frozenset[str], what: str, rule: str
) -> None:
    if not known:
        return
    if not value:
        out.append(FieldViolation(path, f"required: a known {what}", rule))
    elif value not in known:
        out.append(FieldViolation(path, f"unknown {what} {value!r}", rule))


def reference_violations(
    order: returns_pb2.ReturnOrder, ref: ReferenceSets, prefix: str = "return_order"
) -> list[FieldViolation]:
    """Where the return disagrees with the configured reference data (every disagreement at once).

    Serial control: a serial-controlled SKU is sent as ``serialized`` (its serials, one per unit, are checked by
    the validation), and a SKU that is not serial-controlled is not. Lot control: a lot-controlled SKU names its
    lot. Reason codes are checked on the header and the lines where given.
    """
    out: list[FieldViolation] = []
    _known(
        out, f"{prefix}.customer.tier", order.customer.tier, ref.customer_tiers, "customer tier", RULE_TIER
    )
    if order.reason_code:
        _known(out, f"{prefix}.reason_code", order.reason_code, ref.reason_codes, "reason code", RULE_REASON)
    for index, line in enumerate(order.lines):
        lp = f"{prefix}.lines[{index}]"
        _known(
            out, f"{lp}.product_type", line.product_type, ref.product_types, "product type", RULE_PRODUCT_TYPE
        )
        if line.reason_code:
            _known(out, f"{lp}.reason_code", line.reason_code, ref.reason_codes, "reason code", RULE_REASON)
        serial_controlled = ref.serial_controlled_skus
        if serial_controlled and line.sku in serial_controlled and not line.serialized:
            out.append(
                FieldViolation(
                    f"{lp}.serialized",
                    f"{line.sku} is serial-controlled: send a serial per unit",
                    RULE_SERIAL,
                )
            )
        elif (
            serial_controlled
            and line.sku not in serial_controlled
            and (line.serialized or line.serial_numbers)
        ):
            out.append(
                FieldViolation(
                    f"{lp}.serial_numbers", f"{line.sku} is not serial-controlled: no serials", RULE_SERIAL
                )
            )
        if line.sku in ref.lot_controlled_skus and not line.lot_number:
            out.append(
                FieldViolation(
                    f"{lp}.lot_number", f"{line.sku} is lot-controlled: the lot number is required", RULE_LOT
                )
            )
    return out
