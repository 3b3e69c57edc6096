"""NetSuite simulator ERP-side actions: inventory adjustments and transfers, voids, closing return authorizations.

Inventory adjustments and transfers are REST records (``POST record/v1/inventoryAdjustment`` /
``inventoryTransfer``); voiding a credit memo or cash refund and closing or cancelling a return authorization
are buttons in the NetSuite UI, offered here as ``/_sim/actions/``. All of them store through ``_store`` and
``adjust_stock``, so the change feed and SuiteQL's ``lastmodifieddate`` see them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from returnbridge.simulators.netsuite_book import BookCore, _check_date
from returnbridge.simulators.netsuite_data import (
    CENT,
    NetSuiteError,
    _number,
    in_range,
    status_ref,
    user_error,
)
from returnbridge.simulators.sim_actions import ActionHandler, ActionRefused, quantity, text

INVENTORY_TYPES = frozenset({"inventoryAdjustment", "inventoryTransfer"})
ACCOUNT_INVENTORY = "1300 Inventory Asset"
# Accounts an adjustment may post against (the adjustment account of the form), and subsidiaries.
ADJUSTMENT_ACCOUNTS = {"510": "5100 Inventory Adjustments", "520": "5200 Shrinkage"}
SUBSIDIARIES = {"1": "Parent Company"}
_HEADER = {
    "inventoryAdjustment": frozenset(
        {
            "subsidiary",
            "account",
            "adjLocation",
            "tranDate",
            "memo",
            "externalId",
            "department",
            "class",
            "inventory",
        }
    ),
    "inventoryTransfer": frozenset(
        {
            "subsidiary",
            "location",
            "transferLocation",
            "tranDate",
            "memo",
            "externalId",
            "department",
            "class",
            "inventory",
        }
    ),
}
_LINE = {
    "inventoryAdjustment": frozenset({"item", "location", "adjustQtyBy", "unitCost", "memo", "line"}),
    "inventoryTransfer": frozenset({"item", "adjustQtyBy", "line"}),
}
_INTERNAL = frozenset({"record", "sku", "site", "delta"})
_READ_ONLY = frozenset({"id", "tranId", "createdDate", "lastModifiedDate", "links", "estimatedTotalValue"})


class InventoryActions(BookCore):
    """Inventory records and UI actions; mixed into the simulator beside the return records."""

    def create_inventory_record(self, record_type: str, body: dict[str, Any], validation: str) -> str:
        """Validate and post an inventory adjustment or transfer; nothing changes unless all checks pass."""
        self._check_inventory_fields(record_type, body, validation)
        for key in ("externalId", "memo"):
            if key in body and not isinstance(body[key], str):
                raise user_error(f"Invalid value for field {key}: a string is required.", key)
        if "tranDate" in body:
            _check_date(body["tranDate"], "tranDate")
        if "subsidiary" not in body:
            raise user_error("Please enter value(s) for: Subsidiary", "subsidiary")
        self._reference(body["subsidiary"], SUBSIDIARIES, "subsidiary", "subsidiary")
        for key, table in (("department", self.ref.departments), ("class", self.ref.classes)):
            if key in body:
                self._reference(body[key], table, key, key)
        if record_type == "inventoryAdjustment":
            moves, entries = self._adjustment(body)
        else:
            moves, entries = self._transfer(body)
        record_id = self._new_id()
        record: dict[str, Any] = {
            **self._new_record(record_type, record_id),
            **{k: v for k, v in body.items() if k != "inventory"},
            "inventory": [
                {**{k: v for k, v in m.items() if k not in _INTERNAL}, "line": n}
                for n, m in enumerate((m for m in moves if m["record"]), start=1)
            ],
        }
        record["tranId"] = f"{'ADJ' if record_type == 'inventoryAdjustment' else 'TRF'}{record_id}"
        for move in moves:
            self.adjust_stock(move["sku"], move["site"], move["delta"])
        self._store(record_type, record_id, record)
        if entries:
            self.kit.state.post(record_type, record_id, "USD", entries)
        return record_id

    def render_inventory_record(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "links": [],
            **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()},
        }

    def _check_inventory_fields(self, record_type: str, body: dict[str, Any], validation: str) -> None:
        strict = validation == "Error"
        for name in body:
            if name in _READ_ONLY:
                raise user_error(f"You cannot set the read-only field {name}.", name)
            if strict and name not in _HEADER[record_type] and not name.startswith("custbody"):
                raise NetSuiteError(
                    400, "INVALID_FIELD", f"Invalid field name {name}: the record has no such field.", name
                )
        sublist = body.get("inventory")
        if (
            not isinstance(sublist, dict)
            or not isinstance(sublist.get("items"), list)
            or not sublist["items"]
        ):
            raise user_error("You must enter at least one line item for this transaction.", "inventory")
        for i, line in enumerate(sublist["items"]):
            if not isinstance(line, dict):
                raise user_error("Each inventory line must be an object.", f"inventory.items[{i}]")
            for name in line:
                if strict and name not in _LINE[record_type] and not name.startswith("custcol"):
                    raise NetSuiteError(
                        400,
                        "INVALID_FIELD",
                        f"Invalid field name {name}: the sublist has no such field.",
                        f"inventory.items[{i}].{name}",
                    )

    def _line_item(self, line: dict[str, Any], path: str) -> tuple[str, Decimal]:
        if "item" not in line or "adjustQtyBy" not in line:
            raise user_error("Please enter value(s) for: Item, Adjust Qty. By", path)
        item = self.ref.items[self._reference(line["item"], self.ref.items, "item", f"{path}.item")]
        raw = line["adjustQtyBy"]
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
            raise user_error("Invalid number for field adjustQtyBy.", f"{path}.adjustQtyBy")
        qty = in_range(Decimal(raw), f"{path}.adjustQtyBy")
        if qty == 0 or qty != qty.to_integral_value():
            raise user_error(
                "Adjust Qty. By must be a non-zero whole number for this item.", f"{path}.adjustQtyBy"
            )
        if item.serialized:
            # Numbered items need an inventory detail subrecord, which these records do not carry here.
            raise user_error(
                f"Please configure the inventory detail for item {item.sku}.", f"{path}.inventoryDetail"
            )
        return item.id, qty

    def _adjustment(
        self, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, Decimal, Decimal]]]:
        if "account" not in body:
            raise user_error("Please enter value(s) for: Adjustment Account", "account")
        account = ADJUSTMENT_ACCOUNTS[
            self._reference(body["account"], ADJUSTMENT_ACCOUNTS, "account", "account")
        ]
        default_loc = (
            self._reference(body["adjLocation"], self.ref.locations, "adjLocation", "adjLocation")
            if "adjLocation" in body
            else None
        )
        moves: list[dict[str, Any]] = []
        pending: dict[tuple[str, str], Decimal] = {}
        entries: list[tuple[str, Decimal, Decimal]] = []
        for i, line in enumerate(body["inventory"]["items"]):
            path = f"inventory.items[{i}]"
            item_id, qty = self._line_item(line, path)
            loc = (
                self._reference(line["location"], self.ref.locations, "location", f"{path}.location")
                if "location" in line
                else default_loc
            )
            if loc is None:
                raise user_error("Please enter value(s) for: Location", f"{path}.location")
            item, site = self.ref.items[item_id], self.ref.locations[loc]
            cost = _number(line["unitCost"], f"{path}.unitCost") if "unitCost" in line else item.base_price
            after = pending.get((item.sku, site), self.on_hand(item.sku, site)) + qty
            if after < 0:
                raise user_error(
                    f"You cannot adjust {item.sku} at {site} below zero: {after + -qty} on hand.",
                    f"{path}.adjustQtyBy",
                )
            pending[(item.sku, site)] = after
            value = in_range(abs(qty) * cost, f"{path}.unitCost").quantize(CENT)
            if qty > 0:
                entries += [(ACCOUNT_INVENTORY, value, Decimal(0)), (account, Decimal(0), value)]
            else:
                entries += [(account, value, Decimal(0)), (ACCOUNT_INVENTORY, Decimal(0), value)]
            moves.append(
                {"record": True, "item": {"id": item_id}, "location": {"id": loc}, "adjustQtyBy": qty,
                 "unitCost": cost, "sku": item.sku, "site": site, "delta": qty}
            )  # fmt: skip
        return moves, entries

    def _transfer(
        self, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[tuple[str, Decimal, Decimal]]]:
        for key in ("location", "transferLocation"):
            if key not in body:
                raise user_error(
                    f"Please enter value(s) for: {'From Location' if key == 'location' else 'To Location'}",
                    key,
                )
        source = self._reference(body["location"], self.ref.locations, "location", "location")
        target = self._reference(
            body["transferLocation"], self.ref.locations, "transferLocation", "transferLocation"
        )
        if source == target:
            raise user_error("The from and to locations must be different.", "transferLocation")
        moves: list[dict[str, Any]] = []
        pending: dict[str, Decimal] = {}
        for i, line in enumerate(body["inventory"]["items"]):
            path = f"inventory.items[{i}]"
            item_id, qty = self._line_item(line, path)
            if qty < 0:
                raise user_error("The quantity to transfer must be greater than zero.", f"{path}.adjustQtyBy")
            item = self.ref.items[item_id]
            site, to_site = self.ref.locations[source], self.ref.locations[target]
            left = pending.get(item.sku, self.on_hand(item.sku, site)) - qty
            if left < 0:
                raise user_error(
                    f"You cannot transfer more {item.sku} than the {left + qty} on hand at {site}.",
                    f"{path}.adjustQtyBy",
                )
            pending[item.sku] = left
            moves.append(
                {
                    "record": True,
                    "item": {"id": item_id},
                    "adjustQtyBy": qty,
                    "sku": item.sku,
                    "site": site,
                    "delta": -qty,
                }
            )
            moves.append({"record": False, "sku": item.sku, "site": to_site, "delta": qty})
        # A transfer inside one subsidiary at average cost moves no value between accounts.
        return moves, []

    # -- UI actions ---------------------------------------------------------------------------------

    def void_transaction(self, record_type: str, record_id: str) -> dict[str, Any]:
        """Void a credit memo or cash refund: status Voided, the postings reversed (reversing journal)."""
        if record_type not in ("creditMemo", "cashRefund"):
            raise user_error(f"A {record_type} cannot be voided here: use creditMemo or cashRefund.")
        record = self.documents(record_type).get(record_id)
        if record is None:
            raise NetSuiteError(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        if record.get("status", {}).get("id") == "V":
            raise user_error("This transaction has already been voided.")
        originals = [
            e for e in self.kit.state.ledger if e.document_type == record_type and e.document_id == record_id
        ]
        if originals:
            self.kit.state.post(
                record_type,
                f"{record_id}-void",
                originals[0].currency,
                [(e.account, e.credit, e.debit) for e in originals],
            )
        record["status"] = status_ref(record_type, "V")
        record["voided"] = True
        self._store(record_type, record_id, record)
        return {"document_type": record_type, "document_id": record_id, "status": "V"}

    def set_ra_status(self, record_id: str, code: str, allowed_from: frozenset[str]) -> dict[str, Any]:
        record = self.documents("returnAuthorization").get(record_id)
        if record is None:
            raise NetSuiteError(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        current = record["status"]["id"]
        if current not in allowed_from:
            raise user_error(
                f"A return authorization in status {record['status']['refName']} cannot change to that status."
            )
        record["status"] = status_ref("returnAuthorization", code)
        self._store("returnAuthorization", record_id, record)
        return {"document_type": "returnAuthorization", "document_id": record_id, "status": code}

    def ui_handlers(self) -> dict[str, ActionHandler]:
        def adjust(body: dict[str, Any]) -> dict[str, Any]:
            record_id = self.create_inventory_record(
                "inventoryAdjustment",
                {
                    "subsidiary": {"id": "1"},
                    "account": {"id": "510"},
                    "inventory": {"items": [{"item": {"id": self._item_id(text(body, "sku"))},
                                             "location": {"id": self._location_id(text(body, "site"))},
                                             "adjustQtyBy": quantity(body, "delta", positive=False)}]},
                    **({"memo": text(body, "reason")} if "reason" in body else {}),
                },
                "Error",
            )  # fmt: skip
            return {"document_type": "inventoryAdjustment", "document_id": record_id}

        def transfer(body: dict[str, Any]) -> dict[str, Any]:
            record_id = self.create_inventory_record(
                "inventoryTransfer",
                {
                    "subsidiary": {"id": "1"},
                    "location": {"id": self._location_id(text(body, "site"))},
                    "transferLocation": {"id": self._location_id(text(body, "to_site", text(body, "to_sub_location")))},
                    "inventory": {"items": [{"item": {"id": self._item_id(text(body, "sku"))},
                                             "adjustQtyBy": quantity(body, "quantity", positive=True)}]},
                },
                "Error",
            )  # fmt: skip
            return {"document_type": "inventoryTransfer", "document_id": record_id}

        def void(body: dict[str, Any]) -> dict[str, Any]:
            return self.void_transaction(text(body, "document_type", "creditMemo"), text(body, "document_id"))

        def cancel(body: dict[str, Any]) -> dict[str, Any]:
            return self.set_ra_status(text(body, "document_id"), "C", frozenset({"A", "B"}))

        def close(body: dict[str, Any]) -> dict[str, Any]:
            return self.set_ra_status(
                text(body, "document_id"), "H", frozenset({"A", "B", "D", "E", "F", "G"})
            )

        def status(body: dict[str, Any]) -> dict[str, Any]:
            kind, code = text(body, "document_type"), text(body, "status")
            if kind != "returnAuthorization":
                raise ActionRefused(400, "INVALID_FIELD", "document_type must be returnAuthorization")
            if code not in "ABCDEFGH" or len(code) != 1:
                raise ActionRefused(400, "INVALID_FIELD", "status must be one of A..H (RtnAuth status codes)")
            return self.set_ra_status(text(body, "document_id"), code, frozenset("ABCDEFGH"))

        return {
            "stock/adjust": adjust,
            "stock/transfer": transfer,
            "credit/void": void,
            "order/cancel": cancel,
            "order/close": close,
            "document/status": status,
        }

    def _item_id(self, sku: str) -> str:
        found = next((i.id for i in self.ref.items.values() if i.sku == sku), None)
        if found is None:
            raise ActionRefused(400, "INVALID_KEY_OR_REF", f"Unknown item {sku}.")
        return found

    def _location_id(self, site: str) -> str:
        found = next((lid for lid, name in self.ref.locations.items() if name == site), None)
        if found is None:
            raise ActionRefused(400, "INVALID_KEY_OR_REF", f"Unknown location {site}.")
        return found


def refusal(exc: Exception) -> ActionRefused | None:
    if isinstance(exc, NetSuiteError):
        return ActionRefused(exc.status, exc.code, exc.detail)
    return None
