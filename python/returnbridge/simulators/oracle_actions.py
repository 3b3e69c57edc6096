"""Oracle Fusion simulator ERP-side actions: inventory transactions, credit memo void, order cancel and close.

Miscellaneous receipts and issues and subinventory transfers go through ``inventoryStagedTransactions`` in
online mode (processed at once); voiding a credit memo and cancelling or closing a return order are UI work
in Fusion, offered as ``/_sim/actions/``. Everything changes stock through ``adjust_stock`` and documents
through ``put_document`` with a fresh ``LastUpdateDate``, so polls and pushes see it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from returnbridge.simulators.oracle_data import ITEMS, ORGANIZATIONS, SUBINVENTORIES, UOMS, Validator
from returnbridge.simulators.oracle_rest import FusionError, FusionHost, Rest, Schema, check_attributes
from returnbridge.simulators.sim_actions import ActionHandler, ActionRefused, quantity, text

STAGED = "inventoryStagedTransactions"
ORDERS = "salesOrdersForOrderHub"
CREDIT_MEMOS = "receivablesCreditMemos"
ACCOUNT_INVENTORY = "1410"
# (unconfirmed) a standard cost per item; the on-hand REST resource carries no cost.
ITEM_COST = Decimal("10.00")
# Transaction type -> required sign of TransactionQuantity (issues are negative, as in the interface table).
TRANSACTION_TYPES = {"Miscellaneous Receipt": 1, "Miscellaneous Issue": -1, "Subinventory Transfer": 1}
STAGED_TRANSACTION = Schema(
    STAGED,
    frozenset(
        {
            "OrganizationCode", "OrganizationName", "ItemNumber", "SubinventoryCode", "Locator", "TransactionQuantity",
            "TransactionUnitOfMeasure", "TransactionUOMCode", "TransactionTypeName", "TransactionDate",
            "TransferSubinventory", "TransferOrganization", "AccountCombination", "AccountAliasCombination",
            "TransactionReference", "SourceCode", "SourceHeaderId", "SourceLineId", "TransactionMode",
            "ReasonName", "UseCurrentCostFlag",
        }
    ),
    frozenset({"TransactionInterfaceId", "TransactionHeaderId", "ProcessStatus", "ErrorCode", "ErrorExplanation", "CreationDate", "LastUpdateDate"}),
)  # fmt: skip
ORDER_STATUSES = frozenset({"DOO_DRAFT", "OPEN", "PARTIALLY_RECEIVED", "RECEIVED", "CLOSED", "CANCELED"})


class InventoryTransactions(FusionHost):
    """Inventory transactions and the UI actions; mixed into ``OracleSimulator``."""

    async def _create_staged_transaction(self, request: web.Request, rest: Rest) -> web.Response:
        body = await self._body(request)
        record = self.post_inventory_transaction(body)
        key = str(record["TransactionInterfaceId"])
        return rest.json(
            rest.present(STAGED, key, record, ()),
            status=201,
            headers={"Location": rest.href(f"{STAGED}/{key}")},
        )

    def post_inventory_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        """Validate every attribute at once, then process the transaction online."""
        errors: list[tuple[str, str]] = []
        v = Validator(errors)
        check_attributes(body, STAGED_TRANSACTION, "", errors)
        org = v.string(body, "OrganizationCode", 18, required=True)
        sku = v.string(body, "ItemNumber", 300, required=True)
        sub = v.string(body, "SubinventoryCode", 10, required=True)
        kind = v.string(body, "TransactionTypeName", 80, required=True)
        uom = v.string(body, "TransactionUnitOfMeasure", 25, required=True)
        stamp = v.string(body, "TransactionDate", 40, required=True)
        qty = v.decimal(body, "TransactionQuantity", required=True)
        to_sub = v.string(body, "TransferSubinventory", 10)
        account = v.string(body, "AccountCombination", 255) or v.string(body, "AccountAliasCombination", 255)
        for name, size in (("TransactionReference", 240), ("SourceCode", 30), ("ReasonName", 30)):
            v.string(body, name, size)
        mode = body.get("TransactionMode")
        if mode is not None and mode not in (1, "1"):
            errors.append(
                ("INV_TXN_MODE", "Only the online transaction mode (1) is processed by this instance.")
            )
        if org is not None and org not in ORGANIZATIONS:
            errors.append(("INV_INVALID_ORG", f"The organization {org} isn't valid."))
        if sku is not None and sku not in ITEMS:
            errors.append(("INV_INVALID_ITEM", f"The item {sku} isn't valid for organization {org}."))
        for subinventory in (sub, to_sub):
            if subinventory is not None and subinventory not in SUBINVENTORIES:
                errors.append(
                    (
                        "INV_INVALID_SUBINV",
                        f"The subinventory {subinventory} isn't valid in organization {org}.",
                    )
                )
        if uom is not None and uom not in UOMS:
            errors.append(("INV_INVALID_UOM", f"The unit of measure {uom} isn't valid."))
        if stamp is not None and not _is_timestamp(stamp):
            errors.append(
                (
                    "ADF_INVALID_DATE",
                    f"The value {stamp} of the attribute TransactionDate isn't a valid date.",
                )
            )
        sign = TRANSACTION_TYPES.get(kind or "")
        if kind is not None and sign is None:
            errors.append(("INV_INVALID_TXN_TYPE", f"The transaction type {kind} isn't valid."))
        if qty is not None and sign is not None and (qty == 0 or (qty > 0) != (sign > 0)):
            direction = "negative" if sign < 0 else "positive"
            errors.append(("INV_QTY_SIGN", f"The transaction quantity of a {kind} must be {direction}."))
        if kind == "Subinventory Transfer":
            if to_sub is None:
                errors.append(("ADF_MISSING_ATTRIBUTE", "The attribute TransferSubinventory is required."))
            elif to_sub == sub:
                errors.append(
                    ("INV_SAME_SUBINV", "The transfer subinventory must differ from the subinventory.")
                )
        elif kind is not None and sign is not None and account is None:
            errors.append(("ADF_MISSING_ATTRIBUTE", "The attribute AccountCombination is required."))
        if errors:
            raise FusionError(400, errors)
        assert org and sku and sub and kind and uom and qty is not None and sign is not None
        primary = qty * UOMS[uom]
        if primary < 0 or kind == "Subinventory Transfer":
            on_hand = self.state.stock.get((sku, org, sub), Decimal(0))
            if on_hand < abs(primary):
                raise FusionError(
                    400,
                    [
                        (
                            "INV_NEG_BALANCE",
                            f"The transaction would drive the on-hand quantity of {sku} in {org} {sub} negative ({on_hand} available).",
                        )
                    ],
                )
        self.counters.lines += 1
        interface_id = 300000400000 + self.counters.lines
        if kind == "Subinventory Transfer":
            assert to_sub is not None
            self.adjust_stock(sku, org, sub, -primary)
            self.adjust_stock(sku, org, to_sub, primary)
        else:
            self.adjust_stock(sku, org, sub, primary)
            cost = (abs(primary) * ITEM_COST).quantize(Decimal("0.01"))
            inventory, offset = (ACCOUNT_INVENTORY, cost, Decimal(0)), (str(account), Decimal(0), cost)
            if primary < 0:
                inventory, offset = (ACCOUNT_INVENTORY, Decimal(0), cost), (str(account), cost, Decimal(0))
            self.state.post(STAGED, str(interface_id), "USD", [inventory, offset])
        ts = self.now()
        record = {
            **body,
            "TransactionInterfaceId": interface_id,
            "TransactionHeaderId": interface_id,
            "ProcessStatus": "PROCESSED",
            "ErrorCode": None,
            "ErrorExplanation": None,
            "CreationDate": ts,
            "LastUpdateDate": ts,
        }
        self.state.put_document(STAGED, str(interface_id), record)
        return record

    # -- UI actions ----------------------------------------------------------------------------------

    def void_credit_memo(self, key: str) -> dict[str, Any]:
        """Void an AR credit memo: status Void, its postings reversed, LastUpdateDate moved."""
        memo = self.state.documents[CREDIT_MEMOS].get(key)
        if memo is None:
            raise ActionRefused(
                404, "NOT_FOUND", f"The requested resource {CREDIT_MEMOS}/{key} was not found."
            )
        if memo["TransactionStatus"] == "Void":
            raise ActionRefused(
                400, "AR_ALREADY_VOID", f"The credit memo {memo['TransactionNumber']} is already void."
            )
        originals = [e for e in self.state.ledger if e.document_type == CREDIT_MEMOS and e.document_id == key]
        if originals:
            self.state.post(
                CREDIT_MEMOS,
                f"{key}-void",
                originals[0].currency,
                [(e.account, e.credit, e.debit) for e in originals],
            )
        memo["TransactionStatus"] = "Void"
        memo["LastUpdateDate"] = self.now()
        self.state.put_document(CREDIT_MEMOS, key, memo)
        return {"document_type": CREDIT_MEMOS, "document_id": key, "status": "Void"}

    def set_order_status(self, key: str, status: str, allowed_from: frozenset[str]) -> dict[str, Any]:
        order = self.state.documents[ORDERS].get(key)
        if order is None:
            raise ActionRefused(404, "NOT_FOUND", f"The requested resource {ORDERS}/{key} was not found.")
        if order["StatusCode"] not in allowed_from:
            raise ActionRefused(
                400,
                "DOO_INVALID_STATUS_CHANGE",
                f"The order in status {order['StatusCode']} can't change to {status}.",
            )
        order["StatusCode"] = status
        order["LastUpdateDate"] = self.now()
        self.state.put_document(ORDERS, key, order)
        return {"document_type": ORDERS, "document_id": key, "status": status}

    def ui_handlers(self) -> dict[str, ActionHandler]:
        def txn(body: dict[str, Any], kind: str, qty: Decimal, **extra: str) -> dict[str, Any]:
            record = self.post_inventory_transaction(
                {
                    "OrganizationCode": text(body, "site"),
                    "ItemNumber": text(body, "sku"),
                    "SubinventoryCode": text(body, "sub_location", "Stores"),
                    "TransactionTypeName": kind,
                    "TransactionQuantity": qty,
                    "TransactionUnitOfMeasure": "Ea",
                    "TransactionDate": self.now(),
                    **extra,
                }
            )
            return {"document_type": STAGED, "document_id": str(record["TransactionInterfaceId"])}

        def adjust(body: dict[str, Any]) -> dict[str, Any]:
            delta = quantity(body, "delta", positive=False)
            kind = "Miscellaneous Receipt" if delta > 0 else "Miscellaneous Issue"
            return txn(body, kind, delta, AccountCombination="101.10.59000.000")

        def transfer(body: dict[str, Any]) -> dict[str, Any]:
            if text(body, "to_site", text(body, "site")) != text(body, "site"):
                raise ActionRefused(
                    400, "INV_INTERORG", "An inter-organization transfer isn't a subinventory transfer."
                )
            qty = quantity(body, "quantity", positive=True)
            return txn(body, "Subinventory Transfer", qty, TransferSubinventory=text(body, "to_sub_location"))

        def void(body: dict[str, Any]) -> dict[str, Any]:
            if text(body, "document_type", CREDIT_MEMOS) != CREDIT_MEMOS:
                raise ActionRefused(400, "INVALID_FIELD", f"document_type must be {CREDIT_MEMOS}")
            return self.void_credit_memo(text(body, "document_id"))

        def cancel(body: dict[str, Any]) -> dict[str, Any]:
            return self.set_order_status(
                text(body, "document_id"), "CANCELED", frozenset({"DOO_DRAFT", "OPEN"})
            )

        def close(body: dict[str, Any]) -> dict[str, Any]:
            allowed = frozenset({"OPEN", "PARTIALLY_RECEIVED", "RECEIVED"})
            return self.set_order_status(text(body, "document_id"), "CLOSED", allowed)

        def status(body: dict[str, Any]) -> dict[str, Any]:
            kind, code = text(body, "document_type"), text(body, "status")
            if kind != ORDERS or code not in ORDER_STATUSES:
                raise ActionRefused(
                    400,
                    "INVALID_FIELD",
                    f"document_type must be {ORDERS}, status one of {', '.join(sorted(ORDER_STATUSES))}",
                )
            return self.set_order_status(text(body, "document_id"), code, ORDER_STATUSES)

        return {
            "stock/adjust": adjust,
            "stock/transfer": transfer,
            "credit/void": void,
            "order/cancel": cancel,
            "order/close": close,
            "document/status": status,
        }


def refusal(exc: Exception) -> ActionRefused | None:
    if isinstance(exc, FusionError):
        code = exc.details[0][0]
        return ActionRefused(exc.status, code, "; ".join(d for _, d in exc.details))
    return None


def _is_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
