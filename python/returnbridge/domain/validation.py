"""Validation of a return before anything is written: every violation at once, against reference data.

One module for all of it: the reference data requests are checked against (currencies, locations, cost
centers, vendors, SKUs), the complete check of a ReturnOrder, and the structural checks the pipeline relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.context import current_principal, maybe_principal
from returnbridge.domain.contract import parse_date, parse_decimal
from returnbridge.domain.money import ISO_4217, line_amount
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.domain.strict import merge_violations, strict_violations
from returnbridge.errors import ConfigError, FieldViolation, ValidationError

__all__ = [
    "MAX_EXTERNAL_REFERENCE",
    "MAX_LINES",
    "QUANTITY_DECIMALS",
    "ReferenceData",
    "ReferenceDataConfig",
    "Validator",
    "default_validator",
    "full_validator",
    "minimal_validate",
    "refuse_server_owned",
    "validate_return_order",
    "validate_submit_request",
]

Validator = Callable[[returns_pb2.ReturnOrder], None]
# ASCII digits only, matched in full (no Unicode digits, no trailing newline).
_POSITIVE_DECIMAL: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class ReferenceDataConfig(BaseModel):
    """Where known locations, cost centers, vendor codes and SKUs come from (YAML); empty sets are not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Path | None = None
    locations: list[str] = Field(default_factory=list)
    cost_centers: list[str] = Field(default_factory=list)
    vendor_codes: list[str] = Field(default_factory=list)
    skus: list[str] = Field(default_factory=list)
    customer_tiers: list[str] = Field(default_factory=list)
    product_types: list[str] = Field(default_factory=list)
    reason_codes: list[str] = Field(default_factory=list)
    # Every unit of these SKUs carries a serial number / every line of these a lot number.
    serial_controlled_skus: list[str] = Field(default_factory=list)
    lot_controlled_skus: list[str] = Field(default_factory=list)
    # Units of measure the ERPs' unit tables know (lines and exchange items).
    units_of_measure: list[str] = Field(default_factory=list)


_SET_KEYS: Final = (
    "locations",
    "cost_centers",
    "vendor_codes",
    "skus",
    "customer_tiers",
    "product_types",
    "reason_codes",
    "serial_controlled_skus",
    "lot_controlled_skus",
    "units_of_measure",
)


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """Known codes; an empty set means "not checked". ``tenants`` holds per-tenant replacements of the sets."""

    locations: frozenset[str] = frozenset()
    cost_centers: frozenset[str] = frozenset()
    vendor_codes: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    customer_tiers: frozenset[str] = frozenset()
    product_types: frozenset[str] = frozenset()
    reason_codes: frozenset[str] = frozenset()
    serial_controlled_skus: frozenset[str] = frozenset()
    lot_controlled_skus: frozenset[str] = frozenset()
    units_of_measure: frozenset[str] = frozenset()
    currencies: Mapping[str, int] = field(default_factory=lambda: ISO_4217)
    tenants: Mapping[str, ReferenceData] = field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> ReferenceData:
        """The sets that apply to ``tenant_id``: its own where it has them, the global ones otherwise."""
        return self.tenants.get(tenant_id, self)

    @classmethod
    def from_config(cls, config: ReferenceDataConfig) -> ReferenceData:
        """Inline lists from the config, merged with (and overridden per key by) the YAML file if one is named.

        Raises:
            ConfigError: the file is unreadable or malformed; the message names the file and key.
        """
        base = cls(**{key: frozenset(getattr(config, key)) for key in _SET_KEYS})  # type: ignore[arg-type]
        if config.file is None:
            return base
        return base._merge_file(config.file)

    @classmethod
    def from_yaml(cls, path: Path) -> ReferenceData:
        return cls()._merge_file(path)

    def _merge_file(self, path: Path) -> ReferenceData:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"reference data {path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"reference data {path}: invalid YAML: {exc}") from exc
        if raw is None:
            return self
        if not isinstance(raw, dict):
            raise ConfigError(f"reference data {path}: top level must be a mapping")
        unknown = sorted(set(raw) - {*_SET_KEYS, "currencies", "tenants"})
        if unknown:
            raise ConfigError(f"reference data {path}: unknown keys {unknown}")
        merged = _apply_sets(self, raw, f"{path}")
        currencies = dict(self.currencies)
        for code, digits in (raw.get("currencies") or {}).items():
            if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
                raise ConfigError(
                    f"reference data {path}: currencies: {code!r} is not a 3-letter upper-case code"
                )
            if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 4:
                raise ConfigError(f"reference data {path}: currencies.{code}: minor units must be 0..4")
            currencies[code] = digits
        merged = replace(merged, currencies=MappingProxyType(currencies))
        tenants_raw = raw.get("tenants") or {}
        if not isinstance(tenants_raw, dict):
            raise ConfigError(f"reference data {path}: tenants must map tenant ids to sets")
        tenants = dict(self.tenants)
        for tenant, sets in tenants_raw.items():
            if not isinstance(sets, dict):
                raise ConfigError(f"reference data {path}: tenants.{tenant} must be a mapping")
            extra = sorted(set(sets) - set(_SET_KEYS))
            if extra:
                raise ConfigError(f"reference data {path}: tenants.{tenant}: unknown keys {extra}")
            tenants[str(tenant)] = replace(_apply_sets(merged, sets, f"{path}: tenants.{tenant}"), tenants={})
        return replace(merged, tenants=MappingProxyType(tenants))


def _apply_sets(base: ReferenceData, raw: Mapping[str, Any], where: str) -> ReferenceData:
    values: dict[str, frozenset[str]] = {}
    for key in _SET_KEYS:
        if key not in raw:
            continue
        items = raw[key] or []
        if not isinstance(items, list) or not all(
            isinstance(i, str | int) and not isinstance(i, bool) for i in items
        ):
            raise ConfigError(f"reference data {where}: {key} must be a list of codes")
        values[key] = frozenset(str(i) for i in items)
    return replace(base, **values)  # type: ignore[arg-type]


MAX_LINES: Final = 2000
MAX_ID_LENGTH: Final = 64
MAX_TEXT_LENGTH: Final = 2000
# The ERP documents carry "<rma_number>-<version>" as their external reference, and SAP/NetSuite cap it at 35.
MAX_EXTERNAL_REFERENCE: Final = 35
QUANTITY_DECIMALS: Final = 3
# Magnitudes no ERP field takes and no return has: amounts below 10^13 (SAP's CURR 15,2 has 13 integer digits),
# at most a million units per line.
MAX_AMOUNT: Final = Decimal(10) ** 13
MAX_QUANTITY: Final = Decimal(1_000_000)
# Units that count pieces: their quantities are whole numbers (1.5 EA cannot be received or serialized).
COUNT_UNITS: Final = frozenset(
    {"EA", "EACH", "PC", "PCE", "PCS", "ST", "UN", "UNIT", "C62", "H87", "PR", "PAIR", "PK", "PAK", "BOX", "BX",
     "CS", "CT", "DZ", "SET"}
)  # fmt: skip
RULE_MAGNITUDE: Final = "contract.magnitude"
RULE_IDENTIFIER: Final = "contract.identifier"
RULE_WHOLE_UNITS: Final = "contract.whole_units"
RULE_UNIT: Final = "reference.unit_of_measure"
RULE_PRICE_REQUIRED: Final = "invariant.unit_price_required"
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")

RT = returns_pb2.ReturnType
EV = returns_pb2.LifecycleEvent
_EXCHANGE_TYPES: Final = frozenset({RT.RETURN_TYPE_EXCHANGE, RT.RETURN_TYPE_REPLACEMENT})
_REFUND_TYPES: Final = frozenset(
    {RT.RETURN_TYPE_REFUND, RT.RETURN_TYPE_CREDIT_MEMO, RT.RETURN_TYPE_STORE_CREDIT}
)
_PRICED_EVENTS: Final = frozenset({EV.LIFECYCLE_EVENT_AUTHORIZED, EV.LIFECYCLE_EVENT_REFUNDED})


class _Collector:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field: str, description: str, rule: str = "") -> None:
        self.violations.append(FieldViolation(field, description, rule))


def _decimal(text: str) -> Decimal | None:
    return parse_decimal(text)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _check_id(
    out: _Collector, path: str, value: str, *, required: bool = True, max_length: int = MAX_ID_LENGTH
) -> None:
    if not value:
        if required:
            out.add(path, "required")
        return
    if len(value) > max_length:
        out.add(path, f"at most {max_length} characters")
    if _CONTROL.search(value) or value != value.strip():
        out.add(path, "must not contain control characters or surrounding whitespace")


def _check_code(out: _Collector, path: str, value: str, known: frozenset[str], what: str) -> None:
    if value and known and value not in known:
        out.add(path, f"unknown {what} {value!r}", "reference." + what.lower().replace(" ", "_"))


def _check_money(
    out: _Collector,
    path: str,
    money: common_pb2.Money,
    currency: str,
    minor_units: int | None,
    *,
    allow_negative: bool = False,
    positive: bool = False,
) -> Decimal | None:
    """Validate one Money; returns its amount when it is valid (None otherwise, so totals skip it)."""
    amount = _decimal(money.amount)
    if amount is None:
        out.add(f"{path}.amount", "required decimal string such as '12.50'" if not money.amount else
                f"{money.amount!r} is not a decimal string such as '12.50'")  # fmt: skip
    else:
        problems = len(out.violations)
        if minor_units is not None and _places(amount) > minor_units:
            out.add(f"{path}.amount", f"{currency} allows at most {minor_units} decimal places")
        if positive and amount <= 0:
            out.add(f"{path}.amount", "must be greater than 0")
        elif not allow_negative and amount < 0:
            out.add(f"{path}.amount", "must not be negative")
        elif abs(amount) >= MAX_AMOUNT:
            out.add(
                f"{path}.amount",
                f"must be below {MAX_AMOUNT:,} (no ERP amount field takes more)",
                RULE_MAGNITUDE,
            )
        if len(out.violations) > problems:
            amount = None
    if money.currency and money.currency != currency:
        out.add(f"{path}.currency", f"must be the order currency {currency!r} (or empty)")
    return amount


def _check_quantity(out: _Collector, path: str, text: str, unit: str = "") -> Decimal | None:
    if not text:
        out.add(path, "required")
        return None
    quantity = _decimal(text)
    if quantity is None:
        out.add(path, f"{text!r} is not a decimal string such as '2' or '1.5'")
        return None
    if quantity <= 0:
        out.add(path, "must be greater than 0")
        return None
    if _places(quantity) > QUANTITY_DECIMALS:
        out.add(path, f"at most {QUANTITY_DECIMALS} decimal places")
        return None
    if quantity > MAX_QUANTITY:
        out.add(path, f"at most {MAX_QUANTITY:,} units per line", RULE_MAGNITUDE)
        return None
    if unit.upper() in COUNT_UNITS and quantity != quantity.to_integral_value():
        out.add(path, f"{unit!r} counts pieces: the quantity must be a whole number", RULE_WHOLE_UNITS)
        return None
    return quantity


def _check_custom(out: _Collector, path: str, fields: Iterable[tuple[str, common_pb2.CustomValue]]) -> None:
    for key, value in fields:
        kind = value.WhichOneof("kind")
        here = f"{path}[{key!r}]"
        if kind == "decimal_value" and _decimal(value.decimal_value) is None:
            out.add(here, f"{value.decimal_value!r} is not a decimal string")
        elif kind == "date_value" and parse_date(value.date_value) is None:
            out.add(here, f"{value.date_value!r} is not an ISO 8601 date 'YYYY-MM-DD'")
        elif kind == "list_value":
            _check_custom(out, here, ((str(i), v) for i, v in enumerate(value.list_value.values)))
        elif kind == "struct_value":
            _check_custom(out, here, value.struct_value.fields.items())


def validate_return_order(
    order: returns_pb2.ReturnOrder,
    reference: ReferenceData,
    *,
    prefix: str = "return_order",
    tenant_id: str | None = None,
) -> None:
    """Check a return event completely and raise once with every violation.

    Money: amounts are decimal strings with at most the currency's minor units; every Money's currency is empty or
    the order currency. Totals: when ``total_amount`` is set it must equal the sum over lines of
    quantity x unit price (each rounded half-up to the currency's minor units), plus tax (``tax_total``, or the sum
    of line taxes when ``tax_total`` is unset), minus ``restocking_fee``.

    Reference sets are those of ``tenant_id`` (default: the caller's tenant, else the body's).

    Raises:
        ValidationError: with one ``FieldViolation`` per problem, paths such as ``return_order.lines[2].quantity``.
    """
    out = _Collector()
    p = prefix
    principal = maybe_principal()
    tenant = tenant_id or (principal.tenant_id if principal is not None else "") or order.tenant_id
    ref = reference.for_tenant(tenant)
    _check_id(out, f"{p}.return_id", order.return_id)
    _check_id(out, f"{p}.rma_number", order.rma_number)
    if order.rma_number and not (order.rma_number.isascii() and order.rma_number.isprintable()):
        # The ERP documents' external reference: look-alike letters (Cyrillic "Ԁ" for "D") would make a second
        # reference that reads like the first.
        out.add(f"{p}.rma_number", "printable ASCII only: it is the ERP documents' external reference",
                RULE_IDENTIFIER)  # fmt: skip
    if order.version <= 0:
        out.add(f"{p}.version", "must be greater than 0")
    if order.rma_number and len(f"{order.rma_number}-{order.version}") > MAX_EXTERNAL_REFERENCE:
        out.add(
            f"{p}.rma_number",
            f"'<rma_number>-<version>' must fit the ERP external reference ({MAX_EXTERNAL_REFERENCE} characters)",
        )
    if order.return_type == RT.RETURN_TYPE_UNSPECIFIED:
        out.add(f"{p}.return_type", "required")
    elif order.return_type not in RT.values():
        out.add(f"{p}.return_type", f"unknown value {order.return_type}")
    if order.event == EV.LIFECYCLE_EVENT_UNSPECIFIED:
        out.add(f"{p}.event", "required")
    elif order.event not in EV.values():
        out.add(f"{p}.event", f"unknown value {order.event}")
    _check_id(out, f"{p}.notes", order.notes, required=False, max_length=MAX_TEXT_LENGTH)
    # Every ERP document is dated by the event (return date, goods movement date, credit memo date).
    if not order.HasField("event_time"):
        out.add(f"{p}.event_time", "required: when the lifecycle event happened in the RMS")
    if order.original_order.order_date:
        if parse_date(order.original_order.order_date) is None:
            out.add(f"{p}.original_order.order_date", "must be an ISO 8601 date 'YYYY-MM-DD'")

    currency = order.currency
    minor: int | None = None
    if not currency:
        out.add(f"{p}.currency", "required (ISO 4217 code such as 'EUR')")
    elif not _CURRENCY.match(currency) or currency not in ref.currencies:
        out.add(f"{p}.currency", f"{currency!r} is not an ISO 4217 currency code")
    else:
        minor = ref.currencies[currency]

    cancel = order.event == EV.LIFECYCLE_EVENT_CANCELLED
    if not order.lines and not cancel:
        out.add(f"{p}.lines", "at least one line required")
    if len(order.lines) > MAX_LINES:
        out.add(f"{p}.lines", f"at most {MAX_LINES} lines per return")

    line_ids: dict[str, int] = {}
    serial_owner: dict[str, int] = {}
    line_total = Decimal(0)
    line_tax = Decimal(0)
    # Invalid amounts already carry their own violation; the total is then not checked at all.
    totals_computable = True
    unpriced: list[int] = []
    any_line_tax = False
    for index, line in enumerate(order.lines):
        lp = f"{p}.lines[{index}]"
        _check_id(out, f"{lp}.line_id", line.line_id)
        if line.line_id:
            if line.line_id in line_ids:
                out.add(f"{lp}.line_id", f"duplicate of lines[{line_ids[line.line_id]}].line_id")
            else:
                line_ids[line.line_id] = index
        _check_id(out, f"{lp}.sku", line.sku)
        _check_code(out, f"{lp}.sku", line.sku, ref.skus, "SKU")
        quantity = _check_quantity(out, f"{lp}.quantity", line.quantity, line.unit_of_measure)
        if not line.unit_of_measure:
            out.add(f"{lp}.unit_of_measure", "required")
        _check_code(
            out, f"{lp}.unit_of_measure", line.unit_of_measure, ref.units_of_measure, "unit of measure"
        )

        price: Decimal | None = None
        if line.HasField("unit_price"):
            # A returned line has a value: a price of 0 makes the refund, tax and fee bounds meaningless.
            price = _check_money(out, f"{lp}.unit_price", line.unit_price, currency, minor, positive=True)
        elif order.return_type in _REFUND_TYPES and order.event in _PRICED_EVENTS:
            out.add(
                f"{lp}.unit_price",
                "required: the refund or credit is checked against, and posted from, the lines' prices",
                RULE_PRICE_REQUIRED,
            )
        if line.HasField("tax_amount"):
            any_line_tax = True
            tax = _check_money(out, f"{lp}.tax_amount", line.tax_amount, currency, minor)
            if tax is None:
                totals_computable = False
            else:
                line_tax += tax
        if quantity is None or (line.HasField("unit_price") and price is None):
            totals_computable = False
        elif price is None:
            unpriced.append(index)
        else:
            line_total += line_amount(quantity, price, minor or 0)

        serials = list(line.serial_numbers)
        if line.serialized:
            if quantity is not None and quantity != quantity.to_integral_value():
                out.add(f"{lp}.quantity", "a serialized product needs a whole quantity")
            elif quantity is not None and len(serials) != int(quantity):
                out.add(
                    f"{lp}.serial_numbers",
                    f"serialized product: {len(serials)} serial numbers for quantity {line.quantity}",
                )
        elif serials and quantity is not None and len(serials) > quantity:
            out.add(
                f"{lp}.serial_numbers", f"more serial numbers ({len(serials)}) than quantity {line.quantity}"
            )
        for s_index, serial in enumerate(serials):
            sp = f"{lp}.serial_numbers[{s_index}]"
            if not serial or serial != serial.strip() or _CONTROL.search(serial):
                out.add(sp, "empty or malformed serial number")
            elif serial in serial_owner:
                out.add(sp, f"duplicate serial number {serial!r} (also on lines[{serial_owner[serial]}])")
            else:
                serial_owner[serial] = index

        if line.HasField("location"):
            if not line.location.site:
                out.add(f"{lp}.location.site", "required when a location is given")
            _check_code(out, f"{lp}.location.site", line.location.site, ref.locations, "location")
        _check_code(out, f"{lp}.cost_center", line.cost_center, ref.cost_centers, "cost center")
        _check_code(out, f"{lp}.vendor_code", line.vendor_code, ref.vendor_codes, "vendor code")
        if line.disposition == returns_pb2.DISPOSITION_RETURN_TO_VENDOR and not line.vendor_code:
            out.add(f"{lp}.vendor_code", "required for return-to-vendor")
        if (
            order.event == EV.LIFECYCLE_EVENT_DISPOSITIONED
            and line.disposition == returns_pb2.DISPOSITION_UNSPECIFIED
        ):
            out.add(f"{lp}.disposition", "required for a DISPOSITIONED event")
        _check_custom(out, f"{lp}.custom_fields", line.custom_fields.items())

    _check_custom(out, f"{p}.custom_fields", order.custom_fields.items())

    fee = Decimal(0)
    if order.HasField("restocking_fee"):
        checked = _check_money(out, f"{p}.restocking_fee", order.restocking_fee, currency, minor)
        fee = checked if checked is not None else fee
        totals_computable = totals_computable and checked is not None
    tax_total: Decimal | None = None
    if order.HasField("tax_total"):
        tax_total = _check_money(out, f"{p}.tax_total", order.tax_total, currency, minor)
        totals_computable = totals_computable and tax_total is not None
        if tax_total is not None and any_line_tax and tax_total != line_tax:
            out.add(f"{p}.tax_total", f"{tax_total} differs from the sum of line taxes {line_tax}")
    if order.HasField("total_amount"):
        total = _check_money(out, f"{p}.total_amount", order.total_amount, currency, minor)
        if total is not None and minor is not None:
            if unpriced:
                out.add(
                    f"{p}.total_amount", f"set, but lines{unpriced} have no unit_price to check it against"
                )
            elif totals_computable:
                expected = line_total + (tax_total if tax_total is not None else line_tax) - fee
                if total != expected:
                    out.add(
                        f"{p}.total_amount",
                        f"{total} does not match lines {line_total} + tax "
                        f"{tax_total if tax_total is not None else line_tax} - restocking fee {fee} = {expected}",
                    )

    _check_event_consistency(out, p, order, currency, minor, ref)
    if out.violations:
        raise ValidationError(f"invalid {p}: {len(out.violations)} problem(s)", out.violations)


def _check_event_consistency(
    out: _Collector,
    p: str,
    order: returns_pb2.ReturnOrder,
    currency: str,
    minor: int | None,
    ref: ReferenceData,
) -> None:
    if order.event == EV.LIFECYCLE_EVENT_EXCHANGED:
        if order.return_type not in _EXCHANGE_TYPES:
            out.add(
                f"{p}.return_type", "an EXCHANGED event needs RETURN_TYPE_EXCHANGE or RETURN_TYPE_REPLACEMENT"
            )
        if not order.exchange.items:
            out.add(f"{p}.exchange.items", "an EXCHANGED event needs exchange items")
    if order.event == EV.LIFECYCLE_EVENT_REFUNDED:
        if order.return_type not in _REFUND_TYPES:
            out.add(
                f"{p}.return_type", "a REFUNDED event needs a refund, credit memo or store credit return type"
            )
        if not order.HasField("refund"):
            out.add(f"{p}.refund", "a REFUNDED event needs refund details")
        elif order.refund.method == returns_pb2.REFUND_METHOD_UNSPECIFIED:
            out.add(f"{p}.refund.method", "required")
        if order.HasField("refund") and not order.refund.HasField("amount"):
            out.add(f"{p}.refund.amount", "required")
    if order.HasField("refund") and order.refund.HasField("amount"):
        _check_money(out, f"{p}.refund.amount", order.refund.amount, currency, minor, positive=True)
    if order.HasField("exchange"):
        for index, item in enumerate(order.exchange.items):
            ip = f"{p}.exchange.items[{index}]"
            _check_id(out, f"{ip}.sku", item.sku)
            _check_code(out, f"{ip}.sku", item.sku, ref.skus, "SKU")
            _check_quantity(out, f"{ip}.quantity", item.quantity, item.unit_of_measure)
            if not item.unit_of_measure:
                out.add(f"{ip}.unit_of_measure", "required")
            _check_code(
                out, f"{ip}.unit_of_measure", item.unit_of_measure, ref.units_of_measure, "unit of measure"
            )
            if item.HasField("unit_price"):
                _check_money(out, f"{ip}.unit_price", item.unit_price, currency, minor)
            if item.HasField("ship_from"):
                _check_code(out, f"{ip}.ship_from.site", item.ship_from.site, ref.locations, "location")
        if order.exchange.HasField("price_difference"):
            _check_money(
                out, f"{p}.exchange.price_difference", order.exchange.price_difference, currency, minor,
                allow_negative=True,
            )  # fmt: skip


def refuse_server_owned(order: returns_pb2.ReturnOrder, *, prefix: str = "return_order") -> None:
    """Refuse fields only the server may set: ``erp_references``, and a tenant other than the caller's.

    Raises:
        AuthError: the call is not authenticated.
        ValidationError: one violation per server-owned field the client set.
    """
    principal = current_principal()
    out = _Collector()
    if order.erp_references:
        out.add(f"{prefix}.erp_references", "owned by the server; must be empty in requests")
    system_call = "system" in principal.roles and not principal.tenant_id
    if order.tenant_id and order.tenant_id != principal.tenant_id and not system_call:
        out.add(f"{prefix}.tenant_id", "owned by the server: leave empty or set to the credential's tenant")
    if out.violations:
        raise ValidationError(f"server-owned fields set on {prefix}", out.violations)


def validate_submit_request(request: returns_pb2.SubmitReturnRequest, reference: ReferenceData) -> None:
    """Everything SubmitReturn checks before writing, with server-owned and content violations together."""
    violations: list[FieldViolation] = []
    if not request.HasField("return_order"):
        raise ValidationError("return_order is required", [FieldViolation("return_order", "required")])
    checks: list[Callable[[], None]] = [
        lambda: refuse_server_owned(request.return_order),
        lambda: validate_return_order(request.return_order, reference),
    ]
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            violations.extend(exc.violations)
    if len(request.client_reference) > 128:
        violations.append(FieldViolation("client_reference", "at most 128 characters"))
    if violations:
        raise ValidationError(f"invalid return_order: {len(violations)} problem(s)", violations)


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
            ok = bool(_POSITIVE_DECIMAL.fullmatch(line.quantity)) and Decimal(line.quantity) > 0
        except InvalidOperation:
            ok = False
        if not ok:
            problems.append(
                FieldViolation(f"return_order.lines[{index}].quantity", "must be a decimal string > 0")
            )
    if problems:
        raise ValidationError("invalid return order", problems)


def default_validator() -> Validator:
    """The structural checks only; ``serve`` passes ``full_validator(reference_data)`` instead."""
    return minimal_validate


def full_validator(reference: ReferenceData, policy: ReturnPolicyConfig | None = None) -> Validator:
    """The complete validation and the strict checks (every violation at once), then the pipeline's own.

    The strict checks (``domain.strict``) run first: with the "strip" text policy they clean free text before
    it is validated.
    """
    policy = policy or ReturnPolicyConfig()

    def validate(order: returns_pb2.ReturnOrder) -> None:
        ref = reference.for_tenant(order.tenant_id)
        places = ref.currencies.get(order.currency)
        violations = strict_violations(order, policy.for_tenant(order.tenant_id), places, ref)
        try:
            validate_return_order(order, reference, tenant_id=order.tenant_id)
        except ValidationError as exc:
            violations = merge_violations(violations, exc.violations)
        if violations:
            raise ValidationError(f"invalid return_order: {len(violations)} problem(s)", violations)
        minimal_validate(order)

    return validate
