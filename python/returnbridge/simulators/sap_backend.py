"""SAP simulator back end: the sales-and-distribution document logic (returns, deliveries, credit memo requests)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from returnbridge.simulators.kit import SimulatorKit, SimulatorState
from returnbridge.simulators.sap_actions import SapActions
from returnbridge.simulators.sap_metadata import SERVICES
from returnbridge.simulators.sap_odata_query import day_ms, to_date, to_datetimeoffset
from returnbridge.simulators.sap_rules import (
    CMR,
    CR,
    CURRENCIES,
    CUSTOMERS,
    DLV,
    DLV_PATH,
    INITIAL_STOCK,
    MATERIALS,
    ORDER_REASONS,
    PLANTS,
    RECEIVABLES_ACCOUNT,
    RETURNS_ACCOUNT,
    SALES_AREAS,
    ODataError,
    SapSimulatorConfig,
    _nav_list,
    _Violations,
    check_item_master_data,
    check_item_number,
    check_properties,
    fmt_amount,
    fmt_qty,
    price_item,
)


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
        self.actions = SapActions(self)
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
        items: list[dict[str, Any]] = self.delivery(number)["to_DeliveryDocumentItem"]
        for item in items:
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
            self.touch(CR, ret, now)
        return doc

    def touch(self, doc_type: str, doc: dict[str, Any], now: int) -> None:
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
        self.actions.bill(doc)
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
            self.touch(CR, ret, self.now_ms())
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


# Re-exported: the OData and RFC faces import these from the back end.
__all__ = [
    "CMR",
    "CR",
    "CUSTOMERS",
    "DLV",
    "DLV_PATH",
    "MATERIALS",
    "PLANTS",
    "ODataError",
    "PreparedReturn",
    "SapBackend",
    "SapSimulatorConfig",
    "fmt_qty",
]
