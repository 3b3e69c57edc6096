"""NetSuite simulator: records as the REST API shows them, and rows as SuiteQL sees them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from returnbridge.simulators.netsuite_book import BookCore
from returnbridge.simulators.netsuite_data import (
    CREDIT_MEMO_STATUS,
    RA_STATUS,
    RECORD,
    TYPE_CODES,
    Item,
)
from returnbridge.simulators.netsuite_suiteql import Row


class Rendering(BookCore):
    """JSON rendering (refName, sublist links) and SuiteQL row views of records and stock."""

    def render(
        self, record_type: str, record: dict[str, Any], *, base: str, expand: bool = False
    ) -> dict[str, Any]:
        """A record as the REST API returns it: references with refName, sublist as link unless expanded."""
        href = f"{base}{RECORD}/{record_type}/{record['id']}"
        out: dict[str, Any] = {"links": [{"rel": "self", "href": href}]}
        for key, value in record.items():
            if key == "item":
                if expand:
                    out["item"] = {
                        "links": [{"rel": "self", "href": href + "/item"}],
                        "items": [self._render_refs(ln) for ln in value],
                        "totalResults": len(value),
                    }
                else:
                    out["item"] = {"links": [{"rel": "self", "href": href + "/item"}]}
            elif isinstance(value, datetime):
                out[key] = value.strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                out[key] = self._render_ref(key, value)
        return out

    def _render_refs(self, line: dict[str, Any]) -> dict[str, Any]:
        return {k: self._render_ref(k, v) for k, v in line.items()}

    def _render_ref(self, key: str, value: Any) -> Any:
        if not (isinstance(value, dict) and set(value) == {"id"}):
            return value
        table = {
            "entity": self.ref.customers,
            "location": self.ref.locations,
            "currency": self.ref.currencies,
            "paymentMethod": self.ref.payment_methods,
            "department": self.ref.departments,
            "class": self.ref.classes,
        }.get(key)
        if key == "item":
            item = self.ref.items.get(value["id"])
            return {**value, "refName": item.sku if item else value["id"]}
        if table is not None:
            return {**value, "refName": table.get(value["id"], value["id"])}
        if key == "createdFrom":
            return {**value, "refName": self._tran_ref(value["id"])}
        return value

    def _tran_ref(self, record_id: str) -> str:
        for record_type, docs in self.kit.state.documents.items():
            if record_id in docs:
                return f"{record_type} #{docs[record_id].get('tranId', record_id)}"
        return record_id

    def _transaction_column(self, record_type: str, record: dict[str, Any]) -> Callable[[str], Any]:
        status = record.get("status", {}).get("id", "") if isinstance(record.get("status"), dict) else ""
        values: dict[str, Any] = {
            "id": int(record["id"]),
            "tranid": record.get("tranId", ""),
            "externalid": record.get("externalId", ""),
            "type": TYPE_CODES[record_type],
            "recordtype": record_type.lower(),
            "status": status,
            "entity": record.get("entity", {}).get("id", ""),
            "currency": record.get("currency", {}).get("id", ""),
            "foreigntotal": record.get("total", ""),
            "createdfrom": record.get("createdFrom", {}).get("id", ""),
            "trandate": record.get("tranDate", ""),
            "lastmodifieddate": record["lastModifiedDate"],
            "memo": record.get("memo", ""),
        }
        display = {
            "status": (
                RA_STATUS
                if record_type == "returnAuthorization"
                else CREDIT_MEMO_STATUS
                if record_type == "creditMemo"
                else {}
            ).get(status, ""),
            "entity": self.ref.customers.get(values["entity"], ""),
            "currency": self.ref.currencies.get(values["currency"], ""),
            "createdfrom": self._tran_ref(values["createdfrom"]) if values["createdfrom"] else "",
        }
        if record_type == "salesOrder":
            display["status"] = record.get("status", {}).get("refName", "")
        return Row(values, display, "transaction")

    def _stock_column(self, item: Item, location: str) -> Callable[[str], Any]:
        on_hand = self.on_hand(item.sku, self.ref.locations[location])
        values = {
            "item": int(item.id),
            "location": int(location),
            "quantityonhand": on_hand,
            "quantityavailable": on_hand,
            "quantitycommitted": Decimal(0),
            "quantityonorder": Decimal(0),
            "lastmodifieddate": self.modified.get((item.id, location), datetime(2020, 1, 1, tzinfo=UTC)),
        }
        display = {"item": item.sku, "location": self.ref.locations[location]}
        return Row(values, display, "aggregateItemLocation")
