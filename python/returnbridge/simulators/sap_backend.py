"""SAP simulator back end: seed master data, validation and the sales-and-distribution document logic."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from returnbridge.simulators.kit import SimulatorKit, SimulatorState
from returnbridge.simulators.sap_metadata import (
    DATETIME,
    DATETIMEOFFSET,
    DECIMAL,
    INT64,
    SERVICES,
    EntityType,
)
from returnbridge.simulators.sap_odata_query import date_ms, day_ms, to_date, to_datetimeoffset

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


@dataclass
class PreparedReturn:
    """A validated customer return and its returns delivery, not yet saved (RFC holds it until COMMIT)."""

    document: dict[str, Any]
    delivery: dict[str, Any]
    warnings: list[tuple[str, str]] = field(default_factory=list)


class SapBackend:
    """The sales-and-distribution logic behind both the OData services and the RFC stand-in."""

    def __init__(self, kit: SimulatorKit, config: SapSimulatorConfig) -> None:
        self.kit = kit
        self.config = config
        self._last_change_ms = 0
        self._pending_numbers: set[str] = set()
        # The RFC stand-in calls in from worker threads; it holds this lock around each function module.
        self.lock = threading.RLock()
        if config.seed:
            self.seed(kit.state)

    @property
    def state(self) -> SimulatorState:
        return self.kit.state

    def seed(self, state: SimulatorState) -> None:
        for plant, (main, _returns) in PLANTS.items():
            for material in MATERIALS:
                state.adjust_stock(material, plant, main, INITIAL_STOCK)

    # -- numbering and clocks ---------------------------------------------------------------------

    def _number(self, doc_type: str, base: int) -> str:
        """SAP-style internal number ranges: returns 6..., credit memo requests 7..., deliveries 8...."""
        n = base + len(self.state.documents[doc_type]) + 1
        while str(n) in self.state.documents[doc_type] or str(n) in self._pending_numbers:
            n += 1
        self._pending_numbers.add(str(n))
        return str(n)

    def now_ms(self) -> int:
        # Strictly increasing, so change-feed cursors never see two changes at one instant from one simulator.
        self._last_change_ms = max(int(time.time() * 1000), self._last_change_ms + 1)
        return self._last_change_ms

    def find_by_po(self, doc_type: str, po: str) -> dict[str, Any] | None:
        for doc in self.state.documents[doc_type].values():
            if po and doc.get("PurchaseOrderByCustomer") == po:
                return doc
        return None

    # -- customer returns ---------------------------------------------------------------------------

    def prepare_customer_return(self, body: dict[str, Any], user: str) -> PreparedReturn:
        """Validate a deep-insert body and build the return plus its returns delivery."""
        svc = SERVICES["API_CUSTOMER_RETURN_SRV"]
        et, item_et = svc.type("A_CustomerReturnType"), svc.type("A_CustomerReturnItemType")
        serial_et = svc.type("A_CustomerReturnSerialNumberType")
        price_et = svc.type("A_CustomerReturnItemPrcgElmntType")
        v = _Violations()
        items_in = _nav_list(body, "to_Item")
        if not items_in:
            raise ODataError(
                400,
                "SD_SLS_API/011",
                "Deep insert required: a customer return must be created together with its items (to_Item)",
            )
        header = check_properties(body, et, v, path="", creating=True)
        header.setdefault("CustomerReturnType", self.config.customer_return_type)
        self._check_sales_header(header, v)
        currency = header.get("TransactionCurrency") or "USD"
        items: list[dict[str, Any]] = []
        total = Decimal(0)
        for index, raw in enumerate(items_in):
            path = f"to_Item[{index}]/"
            item = check_properties(raw, item_et, v, path=path, creating=True)
            number = item.get("CustomerReturnItem") or str(10 * (index + 1))
            item["CustomerReturnItem"] = number
            check_item_number(number, f"{path}CustomerReturnItem", v)
            check_item_master_data(item, path, v)
            material = item.get("Material", "")
            if material not in MATERIALS:
                v.add("V1/320", f"Material {material or '(empty)'} does not exist", f"{path}Material")
            if "RequestedQuantity" not in item:
                v.add("V1/391", f"Item {number}: enter a requested quantity", f"{path}RequestedQuantity")
            elif Decimal(item["RequestedQuantity"]) <= 0:
                v.add(
                    "V1/391",
                    f"Item {number}: the requested quantity must be positive",
                    f"{path}RequestedQuantity",
                )
            plant = item.get("ProductionPlant", "")
            if plant and plant not in PLANTS:
                v.add("ME/064", f"Plant {plant} does not exist", f"{path}ProductionPlant")
            sloc = item.get("StorageLocation", "")
            if sloc and plant in PLANTS and sloc not in PLANTS[plant]:
                v.add("M7/001", f"Storage location {plant} {sloc} does not exist", f"{path}StorageLocation")
            serials: list[dict[str, Any]] = []
            for s_index, s_raw in enumerate(_nav_list(raw, "to_SerialNumber") or []):
                s = check_properties(
                    s_raw, serial_et, v, path=f"{path}to_SerialNumber[{s_index}]/", creating=True
                )
                if s.get("SerialNumber"):
                    serials.append({"SerialNumber": s["SerialNumber"]})
            item["to_PricingElement"] = []
            if material in MATERIALS and "RequestedQuantity" in item:
                unit_text, unit, _ = MATERIALS[material]
                price, per, elements = price_item(raw, material, currency, price_et, path, v)
                item.setdefault("RequestedQuantityUnit", unit)
                item.setdefault("CustomerReturnItemText", unit_text)
                net = (Decimal(item["RequestedQuantity"]) * price / per).quantize(Decimal("0.01"))
                item["NetAmount"] = fmt_amount(net)
                item["to_PricingElement"] = elements
                total += net
            item["TransactionCurrency"] = currency
            item["SDProcessStatus"] = "A"
            item["ReturnsMaterialHasBeenReceived"] = ""
            item["to_SerialNumber"] = serials
            items.append(item)
        numbers = [i["CustomerReturnItem"] for i in items]
        if len(set(numbers)) != len(numbers):
            v.add("V1/394", "Item numbers in to_Item must be unique", "to_Item")
        v.raise_if_any()

        warnings: list[tuple[str, str]] = []
        po = header.get("PurchaseOrderByCustomer", "")
        existing = self.find_by_po(CR, po) if po else None
        if existing is not None:
            text = f"Purchase order number {po} already exists in sales document {existing['CustomerReturn']}"
            if self.config.duplicates == "refuse":
                raise ODataError(400, "V4/115", text, [("V4/115", text, "PurchaseOrderByCustomer")])
            warnings.append(("V4/115", text))

        number = self._number(CR, 60000000)
        now = self.now_ms()
        document = {
            **header,
            "CustomerReturn": number,
            "TransactionCurrency": currency,
            "CreationDate": to_date(day_ms(now)),
            "CreatedByUser": user[:12],
            "LastChangeDate": to_date(day_ms(now)),
            "LastChangeDateTime": to_datetimeoffset(now),
            "TotalNetAmount": fmt_amount(total),
            "RetsMgmtProcess": str(int(number) + 4000000000)[-10:],
            "RetsMgmtProcessingStatus": "A",
            "OverallSDProcessStatus": "A",
            "TotalCreditCheckStatus": "",
            "OverallSDDocumentRejectionSts": "A",
            "to_Item": [{**i, "CustomerReturn": number} for i in items],
        }
        for item in document["to_Item"]:
            for serial in item["to_SerialNumber"]:
                serial.update(CustomerReturn=number, CustomerReturnItem=item["CustomerReturnItem"])
        return PreparedReturn(document, self._returns_delivery_for(document, now), warnings)

    def commit_customer_return(self, prepared: PreparedReturn) -> dict[str, Any]:
        doc, delivery = prepared.document, prepared.delivery
        self._pending_numbers.discard(doc["CustomerReturn"])
        self._pending_numbers.discard(delivery["DeliveryDocument"])
        self.state.put_document(CR, doc["CustomerReturn"], doc)
        self.state.put_document(DLV, delivery["DeliveryDocument"], delivery)
        return doc

    def discard(self, prepared: PreparedReturn) -> None:
        self._pending_numbers.discard(prepared.document["CustomerReturn"])
        self._pending_numbers.discard(prepared.delivery["DeliveryDocument"])

    def _check_sales_header(self, header: dict[str, Any], v: _Violations) -> None:
        for name in ("SalesOrganization", "DistributionChannel", "OrganizationDivision", "SoldToParty"):
            if not header.get(name):
                v.add("V1/384", f"Enter a value for {name}", name)
        area = (
            header.get("SalesOrganization"),
            header.get("DistributionChannel"),
            header.get("OrganizationDivision"),
        )
        if all(area) and area not in SALES_AREAS:
            v.add(
                "V1/312", f"Sales area {'/'.join(str(a) for a in area)} is not defined", "SalesOrganization"
            )
        party = header.get("SoldToParty")
        if party and party not in CUSTOMERS:
            v.add("V1/302", f"Sold-to party {party} does not exist", "SoldToParty")
        currency = header.get("TransactionCurrency")
        if currency and currency not in CURRENCIES:
            v.add("SG/105", f"Currency {currency} is not defined", "TransactionCurrency")
        reason = header.get("SDDocumentReason")
        if reason and reason not in ORDER_REASONS:
            v.add("V1/457", f"Order reason {reason} is not defined", "SDDocumentReason")

    def _returns_delivery_for(self, document: dict[str, Any], now: int) -> dict[str, Any]:
        """The follow-up returns delivery S/4 creates for a customer return (one item per return item)."""
        number = self._number(DLV, 80000000)
        items = []
        for index, item in enumerate(document["to_Item"]):
            item_no = f"{10 * (index + 1):06d}"
            list_id = int(number) * 1000 + index + 1
            items.append(
                {
                    "DeliveryDocument": number,
                    "DeliveryDocumentItem": item_no,
                    "Material": item.get("Material", ""),
                    "Plant": item.get("ProductionPlant") or "DAL1",
                    "StorageLocation": item.get("StorageLocation") or "RET1",
                    "ActualDeliveryQuantity": item["RequestedQuantity"],
                    "DeliveryQuantityUnit": item.get("RequestedQuantityUnit", "EA"),
                    "Batch": "",
                    "CostCenter": "",
                    "ProfitCenter": item.get("ProfitCenter", ""),
                    "GLAccount": "",
                    "ControllingArea": "",
                    "GoodsMovementType": "653",
                    "GoodsMovementReasonCode": "",
                    "WarehouseStockCategory": "",
                    "GoodsMovementStatus": "A",
                    "ReferenceSDDocument": document["CustomerReturn"],
                    "ReferenceSDDocumentItem": f"{int(item['CustomerReturnItem']):06d}",
                    "to_SerialDeliveryItem": {
                        "MaintenanceItemObjectList": list_id,
                        "DeliveryDocument": number,
                        "DeliveryDocumentItem": item_no,
                        "to_MaintenanceItemObject": [
                            {
                                "MaintenanceItemObjectList": list_id,
                                "MaintenanceItemObject": n + 1,
                                "SerialNumber": s["SerialNumber"],
                                "Material": item.get("Material", ""),
                                "Equipment": "",
                            }
                            for n, s in enumerate(item["to_SerialNumber"])
                        ],
                    },
                }
            )
        return {
            "DeliveryDocument": number,
            "DeliveryDocumentType": "LR",
            "DeliveryDocumentBySupplier": "",
            "SoldToParty": document.get("SoldToParty", ""),
            "ShipToParty": document.get("SoldToParty", ""),
            "ShippingPoint": items[0]["Plant"] if items else "",
            "SalesOrganization": document.get("SalesOrganization", ""),
            "ActualGoodsMovementDate": None,
            "OverallGoodsMovementStatus": "A",
            "OverallSDProcessStatus": "A",
            "CreationDate": to_date(day_ms(now)),
            "LastChangeDate": to_date(day_ms(now)),
            "to_DeliveryDocumentItem": items,
        }

    # -- returns delivery -----------------------------------------------------------------------------

    def delivery(self, number: str) -> dict[str, Any]:
        doc = self.state.documents[DLV].get(number)
        if doc is None:
            raise ODataError(404, "VL/001", f"Delivery {number} does not exist")
        return doc

    def delivery_item(self, number: str, item_no: str) -> dict[str, Any]:
        for item in self.delivery(number)["to_DeliveryDocumentItem"]:
            if item["DeliveryDocumentItem"] == item_no:
                return item
        raise ODataError(404, "VL/002", f"Item {item_no} of delivery {number} does not exist")

    def patch_delivery_header(self, number: str, body: dict[str, Any]) -> None:
        doc = self.delivery(number)
        v = _Violations()
        values = check_properties(
            body, SERVICES[DLV_PATH].type("A_ReturnsDeliveryHeaderType"), v, path="", creating=False
        )
        v.raise_if_any()
        doc.update(values)
        doc["LastChangeDate"] = to_date(day_ms(self.now_ms()))
        self.state.record_change("document", f"{DLV}/{number}")

    def patch_delivery_item(self, number: str, item_no: str, body: dict[str, Any]) -> None:
        doc = self.delivery(number)
        item = self.delivery_item(number, item_no)
        if doc["OverallGoodsMovementStatus"] == "C":
            raise ODataError(
                400,
                "VL/609",
                f"Goods movement for delivery {number} has already been posted; no changes possible",
            )
        v = _Violations()
        values = check_properties(
            body, SERVICES[DLV_PATH].type("A_ReturnsDeliveryItemType"), v, path="", creating=False
        )
        if "ActualDeliveryQuantity" in values:
            qty = Decimal(values["ActualDeliveryQuantity"])
            ordered = self._return_item_quantity(item)
            if qty < 0 or (ordered is not None and qty > ordered):
                v.add(
                    "VL/363",
                    f"Quantity {qty} exceeds the returned quantity {ordered} of item {item_no}",
                    "ActualDeliveryQuantity",
                )
        plant = values.get("Plant", item["Plant"])
        if plant not in PLANTS:
            v.add("ME/064", f"Plant {plant} does not exist", "Plant")
        elif values.get("StorageLocation", item["StorageLocation"]) not in PLANTS[plant]:
            v.add(
                "M7/001",
                f"Storage location {plant} {values.get('StorageLocation', item['StorageLocation'])} does not exist",
                "StorageLocation",
            )
        v.raise_if_any()
        item.update(values)
        self.state.record_change("document", f"{DLV}/{number}")

    def _return_item_quantity(self, item: dict[str, Any]) -> Decimal | None:
        ret = self.state.documents[CR].get(item["ReferenceSDDocument"])
        if ret is None:
            return None
        for r_item in ret["to_Item"]:
            if int(r_item["CustomerReturnItem"]) == int(item["ReferenceSDDocumentItem"]):
                return Decimal(r_item["RequestedQuantity"])
        return None

    def serial_list(self, list_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        for doc in self.state.documents[DLV].values():
            for item in doc["to_DeliveryDocumentItem"]:
                if item["to_SerialDeliveryItem"]["MaintenanceItemObjectList"] == list_id:
                    return doc, item
        raise ODataError(404, "IPW1/001", f"Serial number list {list_id} does not exist")

    def add_serial(self, list_id: int, body: dict[str, Any]) -> dict[str, Any]:
        doc, item = self.serial_list(list_id)
        if doc["OverallGoodsMovementStatus"] == "C":
            raise ODataError(
                400,
                "VL/609",
                f"Goods movement for delivery {doc['DeliveryDocument']} has already been posted",
            )
        v = _Violations()
        values = check_properties(
            body, SERVICES[DLV_PATH].type("A_ReturnsDeliveryMaintObjType"), v, path="", creating=True
        )
        serial = values.get("SerialNumber", "")
        if not serial:
            v.add("IO/101", "Enter a serial number", "SerialNumber")
        v.raise_if_any()
        objects = item["to_SerialDeliveryItem"]["to_MaintenanceItemObject"]
        if any(o["SerialNumber"] == serial for o in objects):
            raise ODataError(
                400,
                "IO/120",
                f"Serial number {serial} is already assigned to item {item['DeliveryDocumentItem']}",
            )
        entry = {
            "MaintenanceItemObjectList": list_id,
            "MaintenanceItemObject": len(objects) + 1,
            "SerialNumber": serial,
            "Material": item["Material"],
            "Equipment": "",
        }
        objects.append(entry)
        self.state.record_change("document", f"{DLV}/{doc['DeliveryDocument']}")
        return entry

    def post_goods_receipt(self, number: str, movement_ms: int) -> dict[str, Any]:
        doc = self.delivery(number)
        if doc["OverallGoodsMovementStatus"] == "C":
            raise ODataError(400, "VL/609", f"Goods movement for delivery {number} has already been posted")
        v = _Violations()
        for item in doc["to_DeliveryDocumentItem"]:
            qty = Decimal(item["ActualDeliveryQuantity"])
            serials = item["to_SerialDeliveryItem"]["to_MaintenanceItemObject"]
            if serials and Decimal(len(serials)) != qty:
                v.add(
                    "IO/270",
                    f"Item {item['DeliveryDocumentItem']}: {len(serials)} serial numbers for quantity {qty}",
                    "SerialNumber",
                )
        v.raise_if_any()
        for item in doc["to_DeliveryDocumentItem"]:
            qty = Decimal(item["ActualDeliveryQuantity"])
            if qty > 0:
                self.state.adjust_stock(item["Material"], item["Plant"], item["StorageLocation"], qty)
            item["GoodsMovementStatus"] = "C"
        now = self.now_ms()
        doc.update(
            OverallGoodsMovementStatus="C",
            OverallSDProcessStatus="C",
            ActualGoodsMovementDate=to_date(day_ms(movement_ms)),
            LastChangeDate=to_date(day_ms(now)),
        )
        self.state.record_change("document", f"{DLV}/{number}")
        ret = (
            self.state.documents[CR].get(doc["to_DeliveryDocumentItem"][0]["ReferenceSDDocument"])
            if doc["to_DeliveryDocumentItem"]
            else None
        )
        if ret is not None:
            for r_item in ret["to_Item"]:
                r_item["ReturnsMaterialHasBeenReceived"] = "X"
                r_item["SDProcessStatus"] = "B"
            if ret["OverallSDProcessStatus"] == "A":
                ret["OverallSDProcessStatus"] = "B"
            self._touch(CR, ret, now)
        return doc

    def _touch(self, doc_type: str, doc: dict[str, Any], now: int) -> None:
        doc["LastChangeDateTime"] = to_datetimeoffset(now)
        if "LastChangeDate" in doc:
            doc["LastChangeDate"] = to_date(day_ms(now))
        key = doc.get("CustomerReturn") or doc.get("CreditMemoRequest")
        self.state.record_change("document", f"{doc_type}/{key}")

    # -- credit memo requests -----------------------------------------------------------------------

    def create_credit_memo_request(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = SERVICES["API_CREDIT_MEMO_REQUEST_SRV"]
        et, item_et = svc.type("A_CreditMemoRequestType"), svc.type("A_CreditMemoRequestItemType")
        price_et = svc.type("A_CreditMemoReqItemPrcgElmntType")
        items_in = _nav_list(body, "to_Item")
        if not items_in:
            raise ODataError(
                400, "SD_SLS_API/011", "Deep insert required: a credit memo request needs its items (to_Item)"
            )
        v = _Violations()
        header = check_properties(body, et, v, path="", creating=True)
        header.setdefault("CreditMemoRequestType", self.config.credit_memo_request_type)
        self._check_sales_header(header, v)
        currency = header.get("TransactionCurrency") or "USD"
        reference = header.get("ReferenceSDDocument", "")
        if reference and reference not in self.state.documents[CR]:
            v.add("V1/302", f"Reference document {reference} does not exist", "ReferenceSDDocument")
        items: list[dict[str, Any]] = []
        total = Decimal(0)
        for index, raw in enumerate(items_in):
            path = f"to_Item[{index}]/"
            item = check_properties(raw, item_et, v, path=path, creating=True)
            number = item.get("CreditMemoRequestItem") or str(10 * (index + 1))
            item["CreditMemoRequestItem"] = number
            check_item_number(number, f"{path}CreditMemoRequestItem", v)
            check_item_master_data(item, path, v)
            plant = item.get("Plant", "")
            if plant and plant not in PLANTS:
                v.add("ME/064", f"Plant {plant} does not exist", f"{path}Plant")
            material = item.get("Material", "")
            if material not in MATERIALS:
                v.add("V1/320", f"Material {material or '(empty)'} does not exist", f"{path}Material")
                continue
            if "RequestedQuantity" not in item or Decimal(item["RequestedQuantity"]) <= 0:
                v.add(
                    "V1/391",
                    f"Item {number}: enter a positive requested quantity",
                    f"{path}RequestedQuantity",
                )
                continue
            price, per, elements = price_item(raw, material, currency, price_et, path, v)
            net = (Decimal(item["RequestedQuantity"]) * price / per).quantize(Decimal("0.01"))
            item.setdefault("RequestedQuantityUnit", MATERIALS[material][1])
            item["NetAmount"] = fmt_amount(net)
            item["TransactionCurrency"] = currency
            item["to_PricingElement"] = elements
            total += net
            items.append(item)
        v.raise_if_any()
        po = header.get("PurchaseOrderByCustomer", "")
        existing = self.find_by_po(CMR, po) if po else None
        if existing is not None and self.config.duplicates == "refuse":
            text = (
                f"Purchase order number {po} already exists in sales document {existing['CreditMemoRequest']}"
            )
            raise ODataError(400, "V4/115", text, [("V4/115", text, "PurchaseOrderByCustomer")])
        number = self._number(CMR, 70000000)
        self._pending_numbers.discard(number)
        now = self.now_ms()
        doc = {
            **header,
            "CreditMemoRequest": number,
            "TransactionCurrency": currency,
            "TotalNetAmount": fmt_amount(total),
            # The simulator bills the request at once, so it is complete and posted to FI.
            "OverallSDProcessStatus": "C",
            "CreationDate": to_date(day_ms(now)),
            "LastChangeDateTime": to_datetimeoffset(now),
            "to_Item": [{**i, "CreditMemoRequest": number} for i in items],
        }
        self.state.post(
            CMR,
            number,
            currency,
            [(RETURNS_ACCOUNT, total, Decimal(0)), (RECEIVABLES_ACCOUNT, Decimal(0), total)],
        )
        self.state.put_document(CMR, number, doc)
        ret = self.state.documents[CR].get(reference) if reference else None
        if ret is not None:
            ret["OverallSDProcessStatus"] = "C"
            self._touch(CR, ret, self.now_ms())
        return doc

    # -- stock ------------------------------------------------------------------------------------------

    def stock_rows(self) -> list[dict[str, Any]]:
        rows = []
        for (material, plant, sloc), qty in sorted(self.state.stock.items()):
            rows.append(
                {
                    "Material": material,
                    "Plant": plant,
                    "StorageLocation": sloc,
                    "Batch": "",
                    "Supplier": "",
                    "Customer": "",
                    "WBSElementInternalID": "00000000",
                    "SDDocument": "",
                    "SDDocumentItem": "000000",
                    "InventorySpecialStockType": "",
                    "InventoryStockType": "01",
                    "MaterialBaseUnit": MATERIALS.get(material, ("", "EA", Decimal(0)))[1],
                    "MatlWrhsStkQtyInMatlBaseUnit": fmt_qty(qty),
                }
            )
        return rows
