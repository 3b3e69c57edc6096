"""Oracle simulator: AR credit memos (receivablesCreditMemos) and their ledger postings."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web

from returnbridge.simulators.oracle_data import (
    ACCOUNT_RECEIVABLES,
    ACCOUNT_SALES_RETURNS,
    BUSINESS_UNITS,
    CUSTOMERS,
    ITEMS,
    TRANSACTION_SOURCES,
    TRANSACTION_TYPES,
    Validator,
)
from returnbridge.simulators.oracle_rest import (
    CREDIT_MEMO_HEADER,
    CREDIT_MEMO_LINE,
    FusionError,
    FusionHost,
    Rest,
    check_attributes,
)

ORDERS = "salesOrdersForOrderHub"
RECEIPTS = "receivingReceiptRequests"
CREDIT_MEMOS = "receivablesCreditMemos"
RMA_LINES = "rmaLinesForReceiving"


class Receivables(FusionHost):
    """On-account credit memos with negative unit prices; each posts balanced entries."""

    async def _memo_lines(self, request: web.Request, rest: Rest) -> web.Response:
        key = request.match_info["key"]
        memo = self.state.documents[CREDIT_MEMOS].get(key)
        if memo is None:
            raise FusionError(
                404, [("NOT_FOUND", f"The requested resource {CREDIT_MEMOS}/{key} was not found.")]
            )
        rows = [(str(ln["CustomerTransactionLineId"]), ln) for ln in memo["receivablesCreditMemoLines"]]
        return rest.page(
            f"{CREDIT_MEMOS}/{key}/child/receivablesCreditMemoLines", rows, (), CREDIT_MEMO_LINE.attributes
        )

    async def _create_credit_memo(self, request: web.Request, rest: Rest) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = Validator(errors)
        check_attributes(body, CREDIT_MEMO_HEADER, "", errors)
        bu = v.string(body, "BusinessUnit", 240, required=True)
        if bu is not None and bu not in BUSINESS_UNITS:
            errors.append(("AR_INVALID_BU", f"The business unit {bu} isn't valid."))
        source = v.string(body, "TransactionSource", 50, required=True)
        if source is not None and source not in TRANSACTION_SOURCES:
            errors.append(("AR_INVALID_SOURCE", f"The transaction source {source} isn't valid."))
        ttype = v.string(body, "TransactionType", 20, required=True)
        if ttype is not None and ttype not in TRANSACTION_TYPES:
            errors.append(("AR_INVALID_TRX_TYPE", f"The transaction type {ttype} isn't valid."))
        trx_date = v.string(body, "TransactionDate", 10, required=True)
        if trx_date is not None:
            try:
                date.fromisoformat(trx_date)
            except ValueError:
                errors.append(
                    ("AR_INVALID_DATE", f"The transaction date {trx_date} isn't a valid date (YYYY-MM-DD).")
                )
        currency = v.string(body, "CreditMemoCurrency", 15, required=True)
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(("AR_INVALID_CURRENCY", f"The currency {currency} isn't valid."))
        v.string(body, "CreditMemoComments", 240)
        reference = v.string(body, "PurchaseOrder", 50)
        customer_number = v.string(body, "BillToCustomerNumber", 30)
        customer_name = v.string(body, "BillToCustomerName", 360)
        if customer_number is not None:
            if customer_number not in CUSTOMERS:
                errors.append(
                    ("AR_INVALID_CUSTOMER", f"The bill-to customer number {customer_number} isn't valid.")
                )
        elif customer_name is not None:
            match = [n for n, c in CUSTOMERS.items() if c["name"] == customer_name]
            if not match:
                errors.append(("AR_INVALID_CUSTOMER", f"The bill-to customer {customer_name} isn't valid."))
            else:
                customer_number = match[0]
        else:
            errors.append(("AR_MISSING_ATTRIBUTE", "The attribute BillToCustomerNumber is required."))
        if reference and source and self.config.duplicates == "refuse":
            for existing in self.state.documents[CREDIT_MEMOS].values():
                if existing.get("PurchaseOrder") == reference and existing["TransactionSource"] == source:
                    errors.append(
                        (
                            "AR_DUPLICATE_REFERENCE",
                            f"A credit memo with purchase order {reference} already exists.",
                        )
                    )
                    break
        raw_lines = body.get("receivablesCreditMemoLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append(("AR_MISSING_LINES", "The credit memo must have at least one line."))
            raw_lines = []
        total = Decimal(0)
        lines: list[dict[str, Any]] = []
        seen_numbers: set[int] = set()
        for i, raw in enumerate(raw_lines, start=1):
            where = f"line {i}"
            if not isinstance(raw, dict):
                errors.append(("AR_INVALID_LINE", f"{where}: a line must be an object"))
                continue
            check_attributes(raw, CREDIT_MEMO_LINE, where, errors)
            if raw.get("LineNumber") is None:
                errors.append(("AR_MISSING_ATTRIBUTE", f"{where}: the attribute LineNumber is required."))
            # A positive whole number (it was any value: "abc", 1.5 or {} passed); "1" and 1 are the same line.
            number = v.integer(raw, "LineNumber", positive=True, where=where)
            if number is not None and number in seen_numbers:
                errors.append(("AR_DUPLICATE_LINE", f"{where}: the line number {number} is used twice."))
            if number is not None:
                seen_numbers.add(number)
            v.string(raw, "LineDescription", 240, required=True, where=where)
            sku = v.string(raw, "ItemNumber", 300, where=where)
            if sku and sku not in ITEMS:
                errors.append(("AR_INVALID_ITEM", f"{where}: the item {sku} isn't valid."))
            qty = v.decimal(raw, "LineQuantityCredit", required=True, positive=True, where=where)
            price = v.decimal(raw, "UnitSellingPrice", required=True, where=where)
            if price is not None and price >= 0:
                errors.append(
                    (
                        "AR_PRICE_SIGN",
                        f"{where}: the unit selling price of a credit memo line must be negative.",
                    )
                )
            if qty is not None and price is not None:
                amount = (qty * price).quantize(Decimal("0.01"))
                total += amount
                lines.append(
                    {**raw, "LineQuantityCredit": qty, "UnitSellingPrice": price, "LineAmountCredit": amount}
                )
        if errors:
            raise FusionError(400, errors)
        self.counters.memos += 1
        trx_id = 300000300000 + self.counters.memos
        ts = self.now()
        for i, line in enumerate(lines, start=1):
            line["CustomerTransactionLineId"] = trx_id * 100 + i
        memo = {
            **{k: val for k, val in body.items() if k != "receivablesCreditMemoLines"},
            "BillToCustomerNumber": customer_number,
            "CustomerTransactionId": trx_id,
            "TransactionNumber": str(10040 + self.counters.memos),
            "TransactionStatus": "Complete",
            "EnteredAmount": total,
            "CreationDate": ts,
            "LastUpdateDate": ts,
            "receivablesCreditMemoLines": lines,
        }
        assert currency is not None
        self.state.post(
            CREDIT_MEMOS,
            str(trx_id),
            currency,
            [(ACCOUNT_SALES_RETURNS, -total, Decimal(0)), (ACCOUNT_RECEIVABLES, Decimal(0), -total)],
        )
        self.state.put_document(CREDIT_MEMOS, str(trx_id), memo)
        return rest.json(
            rest.present(CREDIT_MEMOS, str(trx_id), memo, ("receivablesCreditMemoLines",)),
            status=201,
            headers={"Location": rest.href(f"{CREDIT_MEMOS}/{trx_id}")},
        )
