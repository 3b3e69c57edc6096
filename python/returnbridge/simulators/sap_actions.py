"""SAP simulator ERP-side actions: goods movements, billing documents and their cancellation, return rejection.

What a warehouse clerk or an accountant does inside S/4HANA, through the APIs S/4 offers for it
(API_MATERIAL_DOCUMENT_SRV, API_BILLING_DOCUMENT_SRV, PATCH of a customer return item). Every action goes
through ``SimulatorState.adjust_stock`` / ``put_document`` / ``record_change``, so the change feed (polls and
pushes) sees it, and posts balanced ledger entries where S/4 posts to FI.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from returnbridge.simulators.kit import SimulatorState
from returnbridge.simulators.sap_metadata import SERVICES
from returnbridge.simulators.sap_metadata_mm import BILLING, MATDOC, MM_SERVICES
from returnbridge.simulators.sap_odata_query import date_ms, day_ms, to_date
from returnbridge.simulators.sap_rules import (
    CMR,
    CR,
    MATERIALS,
    PLANTS,
    RECEIVABLES_ACCOUNT,
    RETURNS_ACCOUNT,
    UNITS,
    ODataError,
    _nav_list,
    _Violations,
    check_properties,
    fmt_qty,
)
from returnbridge.simulators.sim_actions import ActionHandler, ActionRefused, quantity, text


class _Backend(Protocol):
    """What the actions use of ``SapBackend`` (which owns them)."""

    @property
    def state(self) -> SimulatorState: ...

    def now_ms(self) -> int: ...

    def touch(self, doc_type: str, doc: dict[str, Any], now: int) -> None: ...


INVENTORY_ACCOUNT = "300000"


@dataclass(frozen=True, slots=True)
class MovementType:
    """One movement type of the customizing (T156): its goods movement code, stock direction, FI offset."""

    code: str
    direction: int  # +1 receipt, -1 issue, 0 transfer within the plant
    offset_account: str  # "" = no FI posting (a storage-location transfer keeps the valuation)
    needs_cost_center: bool = False


# (unconfirmed) the pairs of movement type and goods movement code follow the standard customizing.
MOVEMENT_TYPES: dict[str, MovementType] = {
    "701": MovementType("05", +1, "233000"),  # inventory difference, surplus
    "702": MovementType("03", -1, "233000"),  # inventory difference, deficit
    "501": MovementType("05", +1, "399999"),  # receipt without purchase order
    "561": MovementType("05", +1, "399999"),  # initial entry of stock
    "201": MovementType("03", -1, "400000", needs_cost_center=True),  # issue to cost center
    "551": MovementType("03", -1, "290000"),  # scrapping
    "311": MovementType("04", 0, ""),  # transfer between storage locations of one plant
}
GOODS_MOVEMENT_CODES = frozenset({"01", "02", "03", "04", "05", "06", "07"})
# Reasons for rejection (TVAG) a return item may carry.
REJECTION_REASONS = frozenset({"01", "02", "03", "04", "05", "10", "11", "50"})


# One checked item of a material document: its values, movement type and quantity.
Movement = tuple[dict[str, Any], MovementType, Decimal]


class SapActions:
    """The ERP-side actions on the back end's state; the OData face and ``/_sim/`` routes call these."""

    def __init__(self, backend: _Backend) -> None:
        self.backend = backend

    @property
    def state(self) -> SimulatorState:
        return self.backend.state

    # -- goods movements (API_MATERIAL_DOCUMENT_SRV) ------------------------------------------------

    def post_material_document(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """Validate a deep insert of a material document and post it: stock, change feed, FI."""
        header, items = self.prepare_material_document(body)
        return self.commit_material_document(header, items, user)

    def prepare_material_document(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Movement]]:
        """Every check of a material document, nothing posted (BAPI_GOODSMVT_CREATE posts at COMMIT)."""
        svc = MM_SERVICES["API_MATERIAL_DOCUMENT_SRV"]
        header_et, item_et = svc.type("A_MaterialDocumentHeaderType"), svc.type("A_MaterialDocumentItemType")
        items_in = _nav_list(body, "to_MaterialDocumentItem")
        if not items_in:
            raise ODataError(
                400,
                "M7/097",
                "Deep insert required: a material document needs its items (to_MaterialDocumentItem)",
            )
        v = _Violations()
        header = check_properties(body, header_et, v, path="", creating=True)
        code = header.get("GoodsMovementCode", "")
        if not code:
            v.add("M7/097", "Enter a goods movement code (GoodsMovementCode)", "GoodsMovementCode")
        elif code not in GOODS_MOVEMENT_CODES:
            v.add("M7/097", f"Goods movement code {code} is not defined", "GoodsMovementCode")
        elif code in ("01", "02", "06", "07"):
            v.add(
                "M7/097",
                f"Goods movement code {code} needs a reference document (not simulated)",
                "GoodsMovementCode",
            )
        items: list[Movement] = []
        # Stock as it will be after the earlier items of this document, so two issues cannot both pass.
        pending: dict[tuple[str, str, str], Decimal] = {}
        for index, raw in enumerate(items_in):
            path = f"to_MaterialDocumentItem[{index}]/"
            item = check_properties(raw, item_et, v, path=path, creating=True)
            checked = self._check_item(item, code, path, v, pending)
            if checked is not None:
                items.append((item, *checked))
        v.raise_if_any()
        return header, items

    def next_material_document(self, pending: int = 0) -> str:
        return str(4900000000 + len(self.state.documents[MATDOC]) + 1 + pending)

    def _check_item(
        self,
        item: dict[str, Any],
        code: str,
        path: str,
        v: _Violations,
        pending: dict[tuple[str, str, str], Decimal],
    ) -> tuple[MovementType, Decimal] | None:
        for name in ("Material", "Plant", "StorageLocation", "GoodsMovementType", "QuantityInEntryUnit"):
            if not item.get(name):
                v.add("M7/018", f"Enter a value for {name}", f"{path}{name}")
        mtype_code, material = item.get("GoodsMovementType", ""), item.get("Material", "")
        plant, sloc = item.get("Plant", ""), item.get("StorageLocation", "")
        mtype = MOVEMENT_TYPES.get(mtype_code)
        if mtype_code and mtype is None:
            v.add("M7/092", f"Movement type {mtype_code} is not defined", f"{path}GoodsMovementType")
        elif mtype is not None and code and mtype.code != code:
            v.add(
                "M7/098",
                f"Movement type {mtype_code} is not allowed with goods movement code {code}",
                f"{path}GoodsMovementType",
            )
        if material and material not in MATERIALS:
            v.add("M3/305", f"Material {material} does not exist", f"{path}Material")
        if plant and plant not in PLANTS:
            v.add("ME/064", f"Plant {plant} does not exist", f"{path}Plant")
        elif plant and sloc and sloc not in PLANTS[plant]:
            v.add("M7/001", f"Storage location {plant} {sloc} does not exist", f"{path}StorageLocation")
        unit = item.get("EntryUnit")
        if unit and (unit not in UNITS or (material in MATERIALS and unit != MATERIALS[material][1])):
            v.add("M7/134", f"Unit {unit} is not the base unit of material {material}", f"{path}EntryUnit")
        qty = Decimal(item["QuantityInEntryUnit"]) if item.get("QuantityInEntryUnit") else None
        if qty is not None and qty <= 0:
            # The direction comes from the movement type; SAP never takes a signed quantity.
            v.add("M7/018", "Quantity must be greater than zero", f"{path}QuantityInEntryUnit")
            qty = None
        if mtype is None or qty is None or material not in MATERIALS or plant not in PLANTS:
            return None
        if mtype.needs_cost_center and not item.get("CostCenter"):
            v.add(
                "KI/235",
                f"Movement type {mtype_code} needs an account assignment (CostCenter)",
                f"{path}CostCenter",
            )
        if mtype.direction == 0:
            to_plant = item.get("IssuingOrReceivingPlant") or plant
            to_sloc = item.get("IssuingOrReceivingStorageLoc", "")
            if to_plant != plant:
                v.add(
                    "M7/323",
                    "Movement type 311 moves stock within one plant (use 301 between plants)",
                    f"{path}IssuingOrReceivingPlant",
                )
            elif not to_sloc:
                v.add("M7/018", "Enter a receiving storage location", f"{path}IssuingOrReceivingStorageLoc")
            elif to_sloc not in PLANTS[plant]:
                v.add(
                    "M7/001",
                    f"Storage location {plant} {to_sloc} does not exist",
                    f"{path}IssuingOrReceivingStorageLoc",
                )
            elif to_sloc == sloc:
                v.add(
                    "M7/325",
                    "Issuing and receiving storage location are the same",
                    f"{path}IssuingOrReceivingStorageLoc",
                )
        if mtype.direction <= 0 and sloc in PLANTS.get(plant, ()):
            key = (material, plant, sloc)
            on_hand = pending.get(key, self.state.stock.get(key, Decimal(0)))
            if on_hand < qty:
                unit_text = MATERIALS[material][1]
                v.add(
                    "M7/021",
                    f"Deficit of SL Unrestricted-use {fmt_qty(qty - on_hand)} {unit_text} : {material} {plant} {sloc}",
                    f"{path}QuantityInEntryUnit",
                )
                return None
            pending[key] = on_hand - qty
        return mtype, qty

    def commit_material_document(
        self, header: dict[str, Any], items: list[Movement], user: str, number: str = ""
    ) -> dict[str, Any]:
        """Post a prepared material document (stock, change feed, FI) under ``number`` or the next one."""
        now = self.backend.now_ms()
        year = str(_year(header.get("PostingDate"), now))
        number = number or self.next_material_document()
        doc_items = []
        value = Decimal(0)
        lines: list[tuple[str, Decimal, Decimal]] = []
        for n, (item, mtype, qty) in enumerate(items, start=1):
            material, plant, sloc = item["Material"], item["Plant"], item["StorageLocation"]
            if mtype.direction == 0:
                self.state.adjust_stock(material, plant, sloc, -qty)
                self.state.adjust_stock(material, plant, item["IssuingOrReceivingStorageLoc"], qty)
            else:
                self.state.adjust_stock(material, plant, sloc, mtype.direction * qty)
            if mtype.offset_account:
                amount = (qty * MATERIALS[material][2]).quantize(Decimal("0.01"))
                value += amount
                inventory = (INVENTORY_ACCOUNT, amount, Decimal(0))
                offset = (mtype.offset_account, Decimal(0), amount)
                if mtype.direction < 0:
                    inventory, offset = (
                        (INVENTORY_ACCOUNT, Decimal(0), amount),
                        (mtype.offset_account, amount, Decimal(0)),
                    )
                lines += [inventory, offset]
            doc_items.append(
                {
                    **item,
                    "MaterialDocumentYear": year,
                    "MaterialDocument": number,
                    "MaterialDocumentItem": str(n),
                    "EntryUnit": item.get("EntryUnit") or MATERIALS[material][1],
                    "MaterialBaseUnit": MATERIALS[material][1],
                    "QuantityInBaseUnit": fmt_qty(qty),
                    "GoodsMovementIsCancelled": False,
                    "ReversedMaterialDocument": "",
                }
            )
        doc = {
            **header,
            "MaterialDocumentYear": year,
            "MaterialDocument": number,
            "InventoryTransactionType": "WA" if header.get("GoodsMovementCode") == "03" else "WE",
            "PostingDate": header.get("PostingDate") or to_date(day_ms(now)),
            "DocumentDate": header.get("DocumentDate") or to_date(day_ms(now)),
            "CreationDate": to_date(day_ms(now)),
            "CreatedByUser": user[:12],
            "to_MaterialDocumentItem": doc_items,
        }
        if lines:
            self.state.post(MATDOC, f"{year}/{number}", "USD", lines)
        self.state.put_document(MATDOC, f"{year}/{number}", doc)
        return doc

    # -- billing documents (API_BILLING_DOCUMENT_SRV) -------------------------------------------------

    def bill(self, cmr: dict[str, Any]) -> dict[str, Any]:
        """The credit memo (billing type G2) S/4 creates when a credit memo request is billed."""
        number = str(90000000 + len(self.state.documents[BILLING]) + 1)
        now = self.backend.now_ms()
        doc = {
            "BillingDocument": number,
            "SDDocumentCategory": "O",
            "BillingDocumentCategory": "L",
            "BillingDocumentType": "G2",
            "SalesOrganization": cmr.get("SalesOrganization", ""),
            "SoldToParty": cmr.get("SoldToParty", ""),
            "PurchaseOrderByCustomer": cmr.get("PurchaseOrderByCustomer", ""),
            "ReferenceSDDocument": cmr["CreditMemoRequest"],
            "BillingDocumentDate": to_date(day_ms(now)),
            "BillingDocumentIsCancelled": False,
            "CancelledBillingDocument": "",
            "TotalNetAmount": cmr["TotalNetAmount"],
            "TransactionCurrency": cmr["TransactionCurrency"],
            "AccountingPostingStatus": "C",
        }
        self.state.put_document(BILLING, number, doc)
        cmr["OverallOrdReltdBillgStatus"] = "C"
        return doc

    def cancel_billing(self, number: str) -> dict[str, Any]:
        """VF11: a cancellation document (S2) reverses the credit memo in FI; the request is open again."""
        doc = self.state.documents[BILLING].get(number)
        if doc is None:
            raise ODataError(404, "VF/020", f"Billing document {number} does not exist")
        if doc["BillingDocumentIsCancelled"] or doc["BillingDocumentType"] == "S2":
            raise ODataError(400, "VF/021", f"Billing document {number} has already been cancelled")
        amount = Decimal(doc["TotalNetAmount"])
        cancellation = str(90000000 + len(self.state.documents[BILLING]) + 1)
        now = self.backend.now_ms()
        self.state.post(
            BILLING,
            cancellation,
            doc["TransactionCurrency"],
            [(RECEIVABLES_ACCOUNT, amount, Decimal(0)), (RETURNS_ACCOUNT, Decimal(0), amount)],
        )
        self.state.put_document(
            BILLING,
            cancellation,
            {
                **doc,
                "BillingDocument": cancellation,
                "BillingDocumentType": "S2",
                "CancelledBillingDocument": number,
                "BillingDocumentDate": to_date(day_ms(now)),
            },
        )
        doc["BillingDocumentIsCancelled"] = True
        self.state.put_document(BILLING, number, doc)
        cmr = self.state.documents[CMR].get(doc["ReferenceSDDocument"])
        if cmr is not None:
            # Billing is open again: the credit is no longer posted.
            cmr["OverallOrdReltdBillgStatus"] = "A"
            cmr["OverallSDProcessStatus"] = "B"
            self.backend.touch(CMR, cmr, now)
        return {
            "BillingDocument": number,
            "CancellationBillingDocument": cancellation,
            "SystemMessageIdentification": "VF",
            "SystemMessageNumber": "311",
            "SystemMessageType": "S",
            "SystemMessageText": f"Document {cancellation} has been saved",
        }

    def billing_of(self, cmr_number: str) -> dict[str, Any]:
        for doc in self.state.documents[BILLING].values():
            if doc["ReferenceSDDocument"] == cmr_number and doc["BillingDocumentType"] != "S2":
                if not doc["BillingDocumentIsCancelled"]:
                    return dict(doc)
        raise ODataError(404, "VF/020", f"Credit memo request {cmr_number} has no open billing document")

    # -- customer return items: rejection -------------------------------------------------------------

    def patch_return_item(self, number: str, item_no: str, body: dict[str, Any]) -> None:
        """A reason for rejection closes the item; when every item is rejected the return is complete."""
        doc = self.state.documents[CR].get(number)
        if doc is None:
            raise ODataError(404, "V1/302", f"Customer return {number} does not exist")
        item = next((i for i in doc["to_Item"] if i["CustomerReturnItem"] == item_no), None)
        if item is None:
            raise ODataError(404, "V1/321", f"Item {item_no} of customer return {number} does not exist")
        v = _Violations()
        et = SERVICES["API_CUSTOMER_RETURN_SRV"].type("A_CustomerReturnItemType")
        values = check_properties(body, et, v, path="", creating=False)
        unsupported = sorted(set(values) - {"SalesDocumentRjcnReason", "ItemBillingBlockReason"})
        if unsupported:
            v.add("V1/112", f"Field {unsupported[0]} cannot be changed in this status", unsupported[0])
        reason = values.get("SalesDocumentRjcnReason")
        if reason and reason not in REJECTION_REASONS:
            v.add("V1/458", f"Reason for rejection {reason} is not defined", "SalesDocumentRjcnReason")
        if reason and item.get("ReturnsMaterialHasBeenReceived") == "X":
            v.add(
                "V1/080",
                f"Item {item_no} has been received; it can no longer be rejected",
                "SalesDocumentRjcnReason",
            )
        v.raise_if_any()
        item.update(values)
        item["SDProcessStatus"] = "C" if item.get("SalesDocumentRjcnReason") else item["SDProcessStatus"]
        rejected = [bool(i.get("SalesDocumentRjcnReason")) for i in doc["to_Item"]]
        doc["OverallSDDocumentRejectionSts"] = "C" if all(rejected) else ("B" if any(rejected) else "A")
        if all(rejected):
            doc["OverallSDProcessStatus"] = "C"
            for delivery in self.state.documents["A_ReturnsDeliveryHeader"].values():
                items = delivery["to_DeliveryDocumentItem"]
                if (
                    items
                    and items[0]["ReferenceSDDocument"] == number
                    and delivery["OverallGoodsMovementStatus"] != "C"
                ):
                    delivery["OverallSDProcessStatus"] = "C"
                    self.state.record_change(
                        "document", f"A_ReturnsDeliveryHeader/{delivery['DeliveryDocument']}"
                    )
        self.backend.touch(CR, doc, self.backend.now_ms())

    def reject_return(self, number: str, reason: str) -> None:
        doc = self.state.documents[CR].get(number)
        if doc is None:
            raise ODataError(404, "V1/302", f"Customer return {number} does not exist")
        for item in doc["to_Item"]:
            if not item.get("SalesDocumentRjcnReason"):
                self.patch_return_item(
                    number, item["CustomerReturnItem"], {"SalesDocumentRjcnReason": reason}
                )

    def close_return(self, number: str) -> None:
        """Completes a return by hand (VA02 'complete'): nothing further is expected for it."""
        doc = self.state.documents[CR].get(number)
        if doc is None:
            raise ODataError(404, "V1/302", f"Customer return {number} does not exist")
        if doc["OverallSDProcessStatus"] == "C":
            raise ODataError(400, "V1/081", f"Customer return {number} is already completed")
        doc["OverallSDProcessStatus"] = "C"
        self.backend.touch(CR, doc, self.backend.now_ms())


class SapUiActions:
    """``/_sim/actions/`` for SAP: each builds what the clerk's transaction would and calls the API's logic."""

    def __init__(self, actions: SapActions) -> None:
        self.actions = actions

    def handlers(self) -> dict[str, ActionHandler]:
        return {
            "stock/adjust": self.adjust,
            "stock/transfer": self.transfer,
            "credit/void": self.void_credit,
            "order/cancel": self.cancel_return,
            "order/close": self.close_return,
            "document/status": self.set_status,
        }

    def adjust(self, body: dict[str, Any]) -> dict[str, Any]:
        """MI07-style inventory difference: 701 for a surplus, 702 for a deficit."""
        delta = quantity(body, "delta", positive=False)
        item = {
            "Material": text(body, "sku"),
            "Plant": text(body, "site"),
            "StorageLocation": text(body, "sub_location", "0001"),
            "GoodsMovementType": "701" if delta > 0 else "702",
            "QuantityInEntryUnit": str(abs(delta)),
        }
        if "reason" in body:
            item["MaterialDocumentItemText"] = text(body, "reason")[:50]
        doc = self.actions.post_material_document(
            {"GoodsMovementCode": "05" if delta > 0 else "03", "to_MaterialDocumentItem": [item]}, "SIM_UI"
        )
        return {"document_type": MATDOC, "document_id": doc["MaterialDocument"]}

    def transfer(self, body: dict[str, Any]) -> dict[str, Any]:
        """311: from one storage location of a plant to another."""
        item = {
            "Material": text(body, "sku"),
            "Plant": text(body, "site"),
            "StorageLocation": text(body, "sub_location", "0001"),
            "GoodsMovementType": "311",
            "QuantityInEntryUnit": str(quantity(body, "quantity", positive=True)),
            "IssuingOrReceivingPlant": text(body, "to_site", text(body, "site")),
            "IssuingOrReceivingStorageLoc": text(body, "to_sub_location"),
        }
        doc = self.actions.post_material_document(
            {"GoodsMovementCode": "04", "to_MaterialDocumentItem": [item]}, "SIM_UI"
        )
        return {"document_type": MATDOC, "document_id": doc["MaterialDocument"]}

    def void_credit(self, body: dict[str, Any]) -> dict[str, Any]:
        """VF11 on the credit memo billed for a credit memo request (``document_id``)."""
        kind = text(body, "document_type", CMR)
        if kind != CMR:
            raise ActionRefused(400, "INVALID_FIELD", f"document_type must be {CMR}")
        billing = self.actions.billing_of(text(body, "document_id"))
        result = self.actions.cancel_billing(billing["BillingDocument"])
        return {"document_type": CMR, "document_id": body["document_id"], **result}

    def cancel_return(self, body: dict[str, Any]) -> dict[str, Any]:
        self.actions.reject_return(text(body, "document_id"), text(body, "reason", "50"))
        return {"document_type": CR, "document_id": body["document_id"]}

    def close_return(self, body: dict[str, Any]) -> dict[str, Any]:
        self.actions.close_return(text(body, "document_id"))
        return {"document_type": CR, "document_id": body["document_id"]}

    def set_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """A workflow setting a sales document's overall processing status (A open, B in process, C complete)."""
        kind, number, status = text(body, "document_type"), text(body, "document_id"), text(body, "status")
        if kind not in (CR, CMR):
            raise ActionRefused(400, "INVALID_FIELD", f"document_type must be {CR} or {CMR}")
        if status not in ("A", "B", "C"):
            raise ActionRefused(400, "INVALID_FIELD", "status must be A, B or C (OverallSDProcessStatus)")
        doc = self.actions.state.documents[kind].get(number)
        if doc is None:
            raise ActionRefused(404, "V1/302", f"{kind} {number} does not exist")
        doc["OverallSDProcessStatus"] = status
        self.actions.backend.touch(kind, doc, self.actions.backend.now_ms())
        return {"document_type": kind, "document_id": number, "status": status}


def refusal(exc: Exception) -> ActionRefused | None:
    """An OData error of an action as the ``/_sim/`` refusal (same status, code and message)."""
    if isinstance(exc, ODataError):
        return ActionRefused(exc.status, exc.code, exc.message)
    return None


def _year(posting_date: str | None, now_ms: int) -> int:
    from datetime import UTC, datetime

    ms = date_ms(posting_date) if posting_date else None
    return datetime.fromtimestamp((ms if ms is not None else now_ms) / 1000, UTC).year


__all__ = ["MOVEMENT_TYPES", "REJECTION_REASONS", "SapActions", "SapUiActions", "refusal"]
