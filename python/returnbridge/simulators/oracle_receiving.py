"""Oracle simulator: RMA receiving (receivingReceiptRequests, rmaLinesForReceiving)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from returnbridge.simulators.oracle_data import (
    LINE_TYPE_CREDIT_AND_RETURN,
    ORGANIZATIONS,
    SUBINVENTORIES,
    Validator,
)
from returnbridge.simulators.oracle_rest import (
    RECEIPT_HEADER,
    RECEIPT_LINE,
    RECEIPT_LOT,
    RECEIPT_SERIAL,
    FusionError,
    FusionHost,
    Rest,
    check_attributes,
    check_children,
)

ORDERS = "salesOrdersForOrderHub"
RECEIPTS = "receivingReceiptRequests"
CREDIT_MEMOS = "receivablesCreditMemos"
RMA_LINES = "rmaLinesForReceiving"
RMA_LINE_ATTRIBUTES = frozenset(
    {
        "RMA", "RMALineNumber", "OrganizationCode", "CustomerPartyNumber", "ItemNumber", "QuantityExpected",
        "UOMCode", "SourceTransactionLineId",
    }
)  # fmt: skip


class Receiving(FusionHost):
    """Receipts against RMA lines; DELIVER puts the goods on hand."""

    async def _create_receipt(self, request: web.Request, rest: Rest) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = Validator(errors)
        check_attributes(body, RECEIPT_HEADER, "", errors)
        source = v.string(body, "ReceiptSourceCode", 25, required=True)
        if source is not None and source != "CUSTOMER":
            errors.append(
                ("RCV_INVALID_SOURCE", f"Only ReceiptSourceCode CUSTOMER is supported here, not {source}.")
            )
        shipment = v.string(body, "ShipmentNumber", 50)
        header_org = v.string(body, "OrganizationCode", 18)
        if (
            shipment
            and self.config.duplicates == "refuse"
            and any(r.get("ShipmentNumber") == shipment for r in self.state.documents[RECEIPTS].values())
        ):
            errors.append(("RCV_DUPLICATE_SHIPMENT", f"The shipment number {shipment} already exists."))
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append(("RCV_MISSING_LINES", "The receipt request must have at least one line."))
            raw_lines = []
        plan: list[tuple[dict[str, Any], dict[str, Any], Decimal, str, str | None]] = []
        pending: dict[int, Decimal] = {}
        for i, raw in enumerate(raw_lines, start=1):
            where = f"line {i}"
            if not isinstance(raw, dict):
                errors.append(("RCV_INVALID_LINE", f"{where}: a line must be an object"))
                continue
            check_attributes(raw, RECEIPT_LINE, where, errors)
            check_children(raw, "lotItemLots", RECEIPT_LOT, where, errors)
            doc_code = v.string(raw, "SourceDocumentCode", 25, required=True, where=where)
            if doc_code is not None and doc_code != "RMA":
                errors.append(
                    ("RCV_INVALID_DOCUMENT", f"{where}: SourceDocumentCode must be RMA, not {doc_code}.")
                )
            ttype = v.string(raw, "TransactionType", 25, required=True, where=where)
            if ttype is not None and ttype != "RECEIVE":
                errors.append(("RCV_INVALID_TRANSACTION", f"{where}: TransactionType must be RECEIVE."))
            org = v.string(raw, "OrganizationCode", 18, where=where) or header_org
            if org is None:
                errors.append(
                    ("RCV_MISSING_ORGANIZATION", f"{where}: OrganizationCode or OrganizationId is required.")
                )
            elif org not in ORGANIZATIONS:
                errors.append(("RCV_INVALID_ORGANIZATION", f"{where}: the organization {org} isn't valid."))
            number = v.string(raw, "DocumentNumber", 50, required=True, where=where)
            line_number = v.string(raw, "DocumentLineNumber", 50, required=True, where=where, coerce=True)
            sku = v.string(raw, "ItemNumber", 300, required=True, where=where)
            qty = v.decimal(raw, "Quantity", required=True, positive=True, where=where)
            uom = v.string(raw, "UnitOfMeasure", 25, required=True, where=where)
            auto = raw.get("AutoTransactCode")
            sub = v.string(raw, "Subinventory", 10, where=where)
            if auto == "DELIVER" and not sub:
                errors.append(("RCV_SUBINVENTORY_REQUIRED", f"{where}: Subinventory is required to deliver."))
            elif sub and sub not in SUBINVENTORIES:
                errors.append(("RCV_INVALID_SUBINVENTORY", f"{where}: the subinventory {sub} isn't valid."))
            serials = check_children(raw, "serialItemSerials", RECEIPT_SERIAL, where, errors)
            if serials and qty is not None and Decimal(len(serials)) != qty:
                errors.append(
                    ("RCV_SERIAL_COUNT", f"{where}: {len(serials)} serial numbers for quantity {qty}.")
                )
            for s in serials:
                v.string(s, "FromSerialNumber", 80, required=True, where=where)
                v.string(s, "ToSerialNumber", 80, where=where)
            order = next(
                (o for o in self.state.documents[ORDERS].values() if o["OrderNumber"] == number), None
            )
            if number is not None and order is None:
                errors.append(("RCV_INVALID_RMA", f"{where}: the RMA {number} doesn't exist."))
                continue
            if order is None or line_number is None:
                continue
            line = next((ln for ln in order["lines"] if str(ln["LineNumber"]) == line_number), None)
            if line is None:
                errors.append(
                    ("RCV_INVALID_RMA_LINE", f"{where}: the RMA {number} has no line {line_number}.")
                )
                continue
            if (
                line.get("TransactionCategoryCode") != "RETURN"
                or line["TransactionLineTypeCode"] != LINE_TYPE_CREDIT_AND_RETURN
            ):
                errors.append(
                    ("RCV_LINE_NOT_RECEIVABLE", f"{where}: RMA line {line_number} expects no goods back.")
                )
                continue
            if order["StatusCode"] not in ("OPEN", "PARTIALLY_RECEIVED"):
                errors.append(("RCV_RMA_NOT_OPEN", f"{where}: the RMA {number} is {order['StatusCode']}."))
            if sku and sku != line.get("ProductNumber"):
                errors.append(("RCV_ITEM_MISMATCH", f"{where}: item {sku} isn't on RMA line {line_number}."))
            if uom and uom not in ("Ea", "Each", line.get("OrderedUOMCode")):
                errors.append(("RCV_INVALID_UOM", f"{where}: the unit of measure {uom} isn't valid."))
            if qty is not None:
                already = line["ReceivedQuantity"] + pending.get(line["LineId"], Decimal(0))
                if already + qty > line["OrderedQuantity"]:
                    errors.append(
                        (
                            "RCV_QTY_EXCEEDS_RMA",
                            f"{where}: quantity {qty} exceeds the open RMA quantity {line['OrderedQuantity'] - already}.",
                        )
                    )
                pending[line["LineId"]] = pending.get(line["LineId"], Decimal(0)) + qty
                # Without DELIVER the goods sit in receiving: received on the RMA, not yet on hand.
                plan.append((order, line, qty, org or "", sub if auto == "DELIVER" else None))
        if errors:
            raise FusionError(400, errors)
        self.counters.receipts += 1
        header_interface_id = 300000200000 + self.counters.receipts
        ts = self.now()
        for _order, line, qty, org, sub in plan:
            line["ReceivedQuantity"] += qty
            line["StatusCode"] = (
                "RECEIVED" if line["ReceivedQuantity"] >= line["OrderedQuantity"] else "PARTIALLY_RECEIVED"
            )
            if sub is not None:
                self.adjust_stock(line["ProductNumber"], org, sub, qty)
        for order in {id(o): o for o, _, _, _, _ in plan}.values():
            receivable = [
                ln for ln in order["lines"] if ln["TransactionLineTypeCode"] == LINE_TYPE_CREDIT_AND_RETURN
            ]
            done = all(ln["ReceivedQuantity"] >= ln["OrderedQuantity"] for ln in receivable)
            order["StatusCode"] = "RECEIVED" if done else "PARTIALLY_RECEIVED"
            order["LastUpdateDate"] = self.now()
            self.state.put_document(ORDERS, str(order["HeaderId"]), order)
        lines_out = []
        for i, raw in enumerate(raw_lines, start=1):
            lines_out.append(
                {
                    **raw,
                    "InterfaceTransactionId": header_interface_id * 100 + i,
                    "ProcessingStatusCode": "SUCCESS",
                }
            )
        receipt = {
            **{k: val for k, val in body.items() if k != "lines"},
            "HeaderInterfaceId": header_interface_id,
            "ReceiptNumber": str(9000 + self.counters.receipts),
            "ProcessingStatusCode": "SUCCESS",
            "CreationDate": ts,
            "LastUpdateDate": ts,
            "lines": lines_out,
        }
        self.state.put_document(RECEIPTS, str(header_interface_id), receipt)
        return rest.json(
            rest.present(RECEIPTS, str(header_interface_id), receipt, ("lines",)),
            status=201,
            headers={"Location": rest.href(f"{RECEIPTS}/{header_interface_id}")},
        )

    async def _rma_lines(self, request: web.Request, rest: Rest) -> web.Response:
        rows: list[tuple[str, dict[str, Any]]] = []
        for order in self.state.documents[ORDERS].values():
            if order["StatusCode"] not in ("OPEN", "PARTIALLY_RECEIVED"):
                continue
            for line in order["lines"]:
                if (
                    line.get("TransactionCategoryCode") != "RETURN"
                    or line["TransactionLineTypeCode"] != LINE_TYPE_CREDIT_AND_RETURN
                ):
                    continue
                expected = line["OrderedQuantity"] - line["ReceivedQuantity"]
                if expected <= 0:
                    continue
                rows.append(
                    (
                        str(line["LineId"]),
                        {
                            "RMA": order["OrderNumber"],
                            "RMALineNumber": line["LineNumber"],
                            "OrganizationCode": line.get("RequestedFulfillmentOrganizationCode"),
                            "CustomerPartyNumber": order.get("BuyingPartyNumber"),
                            "ItemNumber": line["ProductNumber"],
                            "QuantityExpected": expected,
                            "UOMCode": line.get("OrderedUOMCode"),
                            "SourceTransactionLineId": line.get("SourceTransactionLineId"),
                        },
                    )
                )
        return rest.page(RMA_LINES, rows, (), RMA_LINE_ATTRIBUTES)
