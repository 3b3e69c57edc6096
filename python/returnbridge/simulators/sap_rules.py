"""SAP simulator rules: master data, settings, the Gateway error shape and the field and customizing checks."""

from __future__ import annotations

import os
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from returnbridge.simulators.sap_metadata import (
    DATETIME,
    DATETIMEOFFSET,
    DECIMAL,
    INT64,
    EntityType,
)
from returnbridge.simulators.sap_odata_query import date_ms

DLV_PATH = "API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"

CR, CMR, DLV = "A_CustomerReturn", "A_CreditMemoRequest", "A_ReturnsDeliveryHeader"

# Seed master data: demo customers, materials (text, unit, price), plants = our sites.
CUSTOMERS = {
    "10100001": "Inlandskunde US 1",
    "10100002": "Domestic US Customer 2",
    "10100003": "UK Customer 3",
}
MATERIALS: dict[str, tuple[str, str, Decimal]] = {
    "SKU-1001": ("Widget", "EA", Decimal("19.99")),
    "SKU-1002": ("Gadget", "EA", Decimal("49.50")),
    "SKU-1003": ("Gizmo", "EA", Decimal("5.25")),
    "SKU-1004": ("Sprocket", "EA", Decimal("120.00")),
    "SKU-1005": ("Cable 2m", "EA", Decimal("7.10")),
    "SKU-1006": ("Adapter", "EA", Decimal("12.49")),
    "SKU-1007": ("Charger", "EA", Decimal("29.00")),
    "SKU-1008": ("Headset", "EA", Decimal("89.90")),
    "SKU-1009": ("Battery pack", "EA", Decimal("39.95")),
    "SKU-1010": ("Mounting kit", "EA", Decimal("15.00")),
}
PLANTS = {"DAL1": ("0001", "RET1"), "RNO2": ("0001", "RET1"), "LHR1": ("0001", "RET1")}
# Customizing the documents are checked against (TCURC, T006, TVAU, the return reasons, CEPC).
CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "JPY"})
UNITS = frozenset({"EA", "PC", "PAK", "BOX", "KG"})
ORDER_REASONS = frozenset({"R01", "R02", "R03", "R04", "R05"})
RETURN_REASONS = frozenset({"101", "102", "103", "104", "105"})
PROFIT_CENTERS = frozenset({"YB101", "YB102", "YB103", "YB104", "YB105"})
SALES_AREAS = {("1710", "10", "00")}
INITIAL_STOCK = Decimal("100")
RETURNS_ACCOUNT, RECEIVABLES_ACCOUNT = "410000", "121000"


class SapSimulatorConfig(BaseModel):
    """Settings of the SAP simulator; the defaults run it with demo data and one API user."""

    username: str = "RB_API_USER"
    password: str = "Welcome1!"
    # OAuth 2.0 bearer tokens accepted in addition to basic auth.
    bearer_tokens: list[str] = Field(default_factory=list)
    # OAuth 2.0 clients (client_id -> secret) for the client-credentials token endpoint.
    oauth_clients: dict[str, str] = Field(default_factory=lambda: {"RB_OAUTH_CLIENT": "oauth-secret"})
    oauth_token_lifetime: int = 3600
    sap_client: str = "100"
    # A repeated PurchaseOrderByCustomer: S/4HANA's default customizing accepts it with warning V4/115
    # ("accept"); "refuse" answers 400 V4/115, as a system customized to forbid duplicates does.
    duplicates: Literal["refuse", "accept"] = "accept"
    # $format values the services answer; anything else is refused (the simulator renders no Atom XML).
    formats: tuple[str, ...] = ("json",)
    # (unconfirmed) document types of the S/4 standard; our payloads may override them.
    customer_return_type: str = "CBAR"
    credit_memo_request_type: str = "CR"
    seed: bool = True
    # A PATCH/MERGE/PUT of an entity with an ETag without If-Match is 428, as S/4HANA Cloud answers (KBA 3514624,
    # SD-SLS-API); false lets such changes through (a stale If-Match is 412 either way).
    require_if_match: bool = True


class ODataError(Exception):
    """An SAP Gateway error response: ``{"error": {"code", "message": {"lang","value"}, "innererror"}}``."""

    def __init__(
        self, status: int, code: str, message: str, details: list[tuple[str, str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # (code, message, target property)
        self.details = details or []

    def body(self, service: str) -> dict[str, Any]:
        errordetails = [
            {"code": c, "message": m, "propertyref": t, "severity": "error", "target": t}
            for c, m, t in (self.details or [(self.code, self.message, "")])
        ]
        return {
            "error": {
                "code": self.code,
                "message": {"lang": "en", "value": self.message},
                "innererror": {
                    "application": {
                        "component_id": "SD-SLS-API",
                        "service_namespace": "/SAP/",
                        "service_id": service,
                        "service_version": "0001",
                    },
                    "transactionid": os.urandom(16).hex().upper(),
                    "timestamp": time.strftime("%Y%m%d%H%M%S", time.gmtime()) + ".0000000",
                    "Error_Resolution": {
                        "SAP_Transaction": 'For backend administrators: use ADT feed reader "SAP Gateway Error Log" or run transaction /IWFND/ERROR_LOG',
                        "SAP_Note": "See SAP Note 1797736 for error analysis (https://service.sap.com/sap/support/notes/1797736)",
                    },
                    "errordetails": errordetails,
                },
            }
        }


class _Violations:
    """Collects field errors so one response lists all of them, like SAP's message container."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, code: str, message: str, target: str = "") -> None:
        self.items.append((code, message, target))

    def raise_if_any(self) -> None:
        if self.items:
            code, message, _ = self.items[0]
            raise ODataError(400, code, message, self.items)


def fmt_qty(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.001")))


def fmt_amount(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def parse_decimal(
    value: Any, name: str, scale: int, violations: _Violations, *, precision: int = 15
) -> Decimal | None:
    """Edm.Decimal arrives as a JSON string in OData v2; numbers or junk are refused like SAP Gateway does."""
    if not isinstance(value, str):
        violations.add(
            "/IWBEP/CM_MGW_RT/022", f"Invalid format (JSON string expected) for property '{name}'", name
        )
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        violations.add("/IWBEP/CM_MGW_RT/022", f"Value '{value}' is invalid for property '{name}'", name)
        return None
    exponent = number.as_tuple().exponent
    if not number.is_finite() or (isinstance(exponent, int) and -exponent > scale):
        violations.add(
            "/IWBEP/CM_MGW_RT/022", f"Value '{value}' has more than {scale} decimals for '{name}'", name
        )
        return None
    if abs(number) >= Decimal(10) ** (precision - scale):
        violations.add("/IWBEP/CM_MGW_RT/022", f"Value '{value}' is too large for property '{name}'", name)
        return None
    return number


def check_properties(
    body: dict[str, Any], et: EntityType, violations: _Violations, *, path: str, creating: bool
) -> dict[str, Any]:
    """Type/length-check the scalar properties of a request body; returns them in wire format."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name == "__metadata" or et.nav(name) is not None:
            continue
        prop = et.prop(name)
        if prop is None:
            violations.add("/IWBEP/CM_MGW_RT/021", f"Property '{name}' is invalid", f"{path}{name}")
            continue
        if not (prop.creatable if creating else prop.updatable) and not prop.key:
            # SAP ignores read-only properties on input; so does the simulator.
            continue
        if value is None:
            continue
        if prop.type == DECIMAL:
            number = parse_decimal(value, name, prop.scale, violations, precision=prop.precision)
            if number is not None:
                values[name] = fmt_qty(number) if prop.scale == 3 else str(number)
        elif prop.type in (DATETIME, DATETIMEOFFSET):
            if not isinstance(value, str) or date_ms(value) is None:
                violations.add(
                    "/IWBEP/CM_MGW_RT/022",
                    f"Invalid date value '{value}' for property '{name}'",
                    f"{path}{name}",
                )
            else:
                values[name] = value
        elif prop.type == INT64:
            values[name] = value
        else:
            if not isinstance(value, str):
                violations.add(
                    "/IWBEP/CM_MGW_RT/022",
                    f"Invalid value for property '{name}' (string expected)",
                    f"{path}{name}",
                )
            elif prop.max_length and len(value) > prop.max_length:
                violations.add(
                    "/IWBEP/CM_MGW_RT/020",
                    f"Value '{value}' of property '{name}' exceeds the maximum length of {prop.max_length}",
                    f"{path}{name}",
                )
            else:
                values[name] = value
    return values


def check_item_number(number: str, target: str, v: _Violations) -> None:
    """Item numbers are NUMC(6): digits only (SAP refuses "A1" at conversion, before any logic)."""
    if not (isinstance(number, str) and number.isdigit() and len(number) <= 6 and int(number) > 0):
        v.add("/IWBEP/CM_MGW_RT/022", f"Invalid item number '{number}' (up to 6 digits, not 0)", target)


def check_item_master_data(item: dict[str, Any], path: str, v: _Violations) -> None:
    """Unit, return reason and profit center must exist in customizing, as the sales document checks."""
    unit = item.get("RequestedQuantityUnit")
    if unit and unit not in UNITS:
        v.add("SG/411", f"Unit {unit} is not defined", f"{path}RequestedQuantityUnit")
    reason = item.get("ReturnReason")
    if reason and reason not in RETURN_REASONS:
        v.add("V1/458", f"Return reason {reason} is not defined", f"{path}ReturnReason")
    profit_center = item.get("ProfitCenter")
    if profit_center and profit_center not in PROFIT_CENTERS:
        v.add("KM/021", f"Profit center {profit_center} does not exist", f"{path}ProfitCenter")


def _nav_list(body: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
    """Deep-insert children arrive as a plain array or as ``{"results": [...]}``."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        value = value["results"]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ODataError(
            400, "/IWBEP/CM_MGW_RT/021", f"Navigation property '{name}' must be an array of entities"
        )
    return value


def price_item(
    raw: dict[str, Any], material: str, currency: str, price_et: EntityType, path: str, v: _Violations
) -> tuple[Decimal, Decimal, list[dict[str, Any]]]:
    """(unit price, pricing unit, pricing elements): a PR00 element overrides the material master price."""
    price, per = MATERIALS[material][2], Decimal(1)
    elements = []
    for index, p_raw in enumerate(_nav_list(raw, "to_PricingElement") or []):
        p = check_properties(p_raw, price_et, v, path=f"{path}to_PricingElement[{index}]/", creating=True)
        elements.append(p)
        if p.get("ConditionType") == "PR00" and "ConditionRateValue" in p:
            price = Decimal(p["ConditionRateValue"])
            per = Decimal(p.get("ConditionQuantity") or "1") or Decimal(1)
            if p.get("ConditionCurrency") and p["ConditionCurrency"] != currency:
                v.add(
                    "V1/519",
                    f"Condition currency {p['ConditionCurrency']} differs from {currency}",
                    f"{path}to_PricingElement",
                )
    return price, per, elements
