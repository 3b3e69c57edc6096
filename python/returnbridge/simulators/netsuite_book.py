"""The NetSuite simulator's record core: storage, external ids, field and reference checks, lines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from returnbridge.simulators.kit import SimulatorKit
from returnbridge.simulators.netsuite_data import (
    ASSIGNMENT_FIELDS,
    CENT,
    HEADER_FIELDS,
    LINE_FIELDS,
    READ_ONLY_HEADER,
    READ_ONLY_LINE,
    TAX_DETAIL_FIELDS,
    TRAN_PREFIX,
    NetSuiteError,
    ReferenceData,
    _number,
    in_range,
    status_ref,
    user_error,
)

if TYPE_CHECKING:
    from returnbridge.simulators.netsuite_config import NetSuiteSimulatorConfig


class BookCore:
    """Records, their storage and the field checks every record type shares."""

    kit: SimulatorKit
    config: NetSuiteSimulatorConfig
    clock: Callable[[], datetime]
    ref: ReferenceData
    # Last stock change per (item id, location id), for the inventory feed.
    modified: dict[tuple[str, str], datetime]
    # Serial numbers on hand: item id -> {serial: location id}.
    serials: dict[str, dict[str, str]]
    _tran_numbers: dict[str, int]
    # externalId -> {(record type, id)}: every stored record under the external id it was last stored with.
    by_external_id: dict[str, set[tuple[str, str]]]

    def documents(self, record_type: str) -> dict[str, dict[str, Any]]:
        return self.kit.state.documents[record_type]

    def find_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        for kind, record_id in sorted(self.by_external_id.get(external_id, ())):
            record = self.documents(kind).get(record_id) if kind == record_type else None
            # The index may hold a record whose external id has changed since; the record decides.
            if record is not None and record.get("externalId") == external_id:
                return record
        return None

    def on_hand(self, sku: str, site: str) -> Decimal:
        return self.kit.state.stock.get((sku, site, ""), Decimal(0))

    def adjust_stock(self, sku: str, site: str, delta: Decimal) -> Decimal:
        """Change on-hand stock as an inventory adjustment would (visible to the inventory feed)."""
        item = next((i for i in self.ref.items.values() if i.sku == sku), None)
        loc = next((lid for lid, name in self.ref.locations.items() if name == site), None)
        if item is None or loc is None:
            raise KeyError(f"unknown item/location {sku}/{site}")
        self.modified[(item.id, loc)] = self.clock()
        return self.kit.state.adjust_stock(sku, site, "", delta)

    def _new_id(self) -> str:
        return str(1000 + self.kit.state.next_id())

    def _tran_id(self, record_type: str) -> str:
        n = self._tran_numbers.get(record_type, 1000) + 1
        self._tran_numbers[record_type] = n
        return f"{TRAN_PREFIX.get(record_type, 'TX')}{n}"

    def _new_record(self, record_type: str, record_id: str) -> dict[str, Any]:
        now = self.clock()
        return {
            "id": record_id,
            "tranId": self._tran_id(record_type),
            "tranDate": now.date().isoformat(),
            "createdDate": now,
            "lastModifiedDate": now,
            "currency": {"id": "1"},
        }

    def _store(self, record_type: str, record_id: str, record: dict[str, Any]) -> None:
        record["lastModifiedDate"] = self.clock()
        self.kit.state.put_document(record_type, record_id, record)
        if record.get("externalId"):
            self.by_external_id.setdefault(str(record["externalId"]), set()).add((record_type, record_id))

    def _duplicate(self, external_id: str) -> NetSuiteError:
        return NetSuiteError(
            400,
            self.config.duplicate_error_code,
            f"A record with the external ID {external_id} already exists. This record already exists.",
            "externalId",
        )

    def check_fields(self, body: dict[str, Any], validation: str) -> None:
        """Read-only fields are always refused; unknown ones only under property name validation "Error".

        ``validation`` is the X-NetSuite-PropertyNameValidation value (Error, Warning or Ignore).
        """
        strict = validation == "Error"
        _check_names(body, HEADER_FIELDS, READ_ONLY_HEADER, "custbody", "", strict)
        sublist = body.get("item")
        lines = sublist.get("items") if isinstance(sublist, dict) else None
        for i, line in enumerate(lines if isinstance(lines, list) else []):
            if not isinstance(line, dict):
                continue
            path = f"item.items[{i}]"
            _check_names(line, LINE_FIELDS, READ_ONLY_LINE, "custcol", path, strict)
            detail = line.get("inventoryDetail")
            assignment = detail.get("inventoryAssignment") if isinstance(detail, dict) else None
            rows = assignment.get("items") if isinstance(assignment, dict) else None
            for j, row in enumerate(rows if isinstance(rows, list) else []):
                if isinstance(row, dict):
                    where = f"{path}.inventoryDetail.inventoryAssignment.items[{j}]"
                    _check_names(row, ASSIGNMENT_FIELDS, frozenset(), None, where, strict)
        taxes = body.get("taxDetails")
        rows = taxes.get("items") if isinstance(taxes, dict) else None
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            if isinstance(row, dict):
                _check_names(row, TAX_DETAIL_FIELDS, frozenset(), None, f"taxDetails.items[{i}]", strict)

    def _check_header(self, record_type: str, body: dict[str, Any], *, partial: bool = False) -> None:
        lengths = self.config.field_lengths
        if "tranDate" in body:
            _check_date(body["tranDate"], "tranDate")
        for key in ("externalId", "memo", "otherRefNum"):
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise user_error(f"Invalid value for field {key}: a string is required.", key)
            self._check_length(key, value, lengths.get(key), key)
        for key, value in body.items():
            if key.startswith("custbody"):
                if not isinstance(value, str | bool | int | Decimal):
                    raise user_error(f"Invalid value for field {key}.", key)
                self._check_length(key, str(value), lengths.get("custom"), key)
        for key, table in (
            ("entity", self.ref.customers),
            ("location", self.ref.locations),
            ("currency", self.ref.currencies),
            ("paymentMethod", self.ref.payment_methods),
            ("discountItem", self.ref.discount_items),
            ("department", self.ref.departments),
            ("class", self.ref.classes),
        ):
            if key in body:
                self._reference(body[key], table, key, key)

    @staticmethod
    def _check_length(name: str, value: str, limit: int | None, path: str) -> None:
        if limit is not None and len(value) > limit:
            raise user_error(
                f"The field {name} contained more than the maximum number ( {limit} ) of characters allowed.",
                path,
            )

    @staticmethod
    def _reference(value: Any, table: dict[str, Any], name: str, path: str) -> str:
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("id"), str | int)
            or str(value.get("id")) == ""
        ):
            raise user_error(
                f'Invalid value for field {name}: a reference object {{"id": ...}} is required.', path
            )
        ref_id = str(value["id"])
        if ref_id not in table:
            raise NetSuiteError(400, "INVALID_KEY_OR_REF", f"Invalid {name} reference key {ref_id}.", path)
        return ref_id

    def _lines(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The body's ``item.items`` list, or None when the body has no item sublist."""
        if "item" not in body:
            return None
        sublist = body["item"]
        if not isinstance(sublist, dict) or not isinstance(sublist.get("items"), list):
            raise user_error('The item sublist must be an object {"items": [...]}.', "item")
        for i, line in enumerate(sublist["items"]):
            if not isinstance(line, dict):
                raise user_error("Each item line must be an object.", f"item.items[{i}]")
        return list(sublist["items"])

    def _line_values(
        self, line: dict[str, Any], path: str, *, default_rate: Decimal | None
    ) -> dict[str, Any]:
        """Validate one priced line (item, quantity, rate, amount, location, custom fields)."""
        item_id = (
            self._reference(line.get("item"), self.ref.items, "item", f"{path}.item")
            if "item" in line
            else None
        )
        quantity = (
            _number(line.get("quantity"), f"{path}.quantity", positive=True) if "quantity" in line else None
        )
        rate = _number(line["rate"], f"{path}.rate") if "rate" in line else default_rate
        amount = _number(line["amount"], f"{path}.amount") if "amount" in line else None
        values: dict[str, Any] = {}
        if item_id is not None:
            values["item"] = {"id": item_id}
        if quantity is not None:
            values["quantity"] = quantity
        if rate is not None:
            values["rate"] = rate
        if amount is not None:
            if (
                quantity is not None
                and rate is not None
                and amount not in (quantity * rate, line_amount(quantity, rate, f"{path}.amount"))
            ):
                raise user_error(
                    f"The amount {amount} does not equal quantity {quantity} x rate {rate}.", f"{path}.amount"
                )
            values["amount"] = amount
        if "location" in line:
            values["location"] = {
                "id": self._reference(line["location"], self.ref.locations, "location", f"{path}.location")
            }
        if "description" in line:
            if not isinstance(line["description"], str):
                raise user_error("Invalid value for field description.", f"{path}.description")
            self._check_length(
                "description",
                line["description"],
                self.config.field_lengths.get("description"),
                f"{path}.description",
            )
            values["description"] = line["description"]
        if "taxDetailsReference" in line:
            reference = line["taxDetailsReference"]
            if not isinstance(reference, str) or not reference:
                raise user_error(
                    "Invalid value for field taxDetailsReference.", f"{path}.taxDetailsReference"
                )
            values["taxDetailsReference"] = reference
        for key, value in line.items():
            if key.startswith("custcol"):
                self._check_length(key, str(value), self.config.field_lengths.get("custom"), f"{path}.{key}")
                values[key] = value
        return values

    def _match_source_line(self, source: dict[str, Any], line: dict[str, Any], path: str) -> dict[str, Any]:
        candidates: list[dict[str, Any]] = source["item"]
        if "orderLine" in line:
            try:
                number = int(line["orderLine"])
            except (TypeError, ValueError):
                raise user_error("orderLine must be a line number.", f"{path}.orderLine") from None
            for candidate in candidates:
                if candidate["line"] == number:
                    return candidate
            raise user_error(f"The source transaction has no line {number}.", f"{path}.orderLine")
        item = line.get("item")
        if isinstance(item, dict):
            for candidate in candidates:
                if candidate["item"]["id"] == str(item.get("id")):
                    return candidate
            raise user_error(f"Item {item.get('id')} is not on the source transaction.", f"{path}.item")
        raise user_error("Please enter value(s) for: Item", f"{path}.item")

    def _select_ra_lines(
        self, ra: dict[str, Any], body: dict[str, Any], done_key: str
    ) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
        """(RA line, request line, path) pairs; without an item sublist every open RA line, in full."""
        given = self._lines(body)
        if given is None:
            return [
                (ln, {"quantity": ln["quantity"] - ln[done_key]}, f"item.items[{i}]")
                for i, ln in enumerate(ra["item"])
                if ln["quantity"] > ln[done_key]
            ]
        pairs = []
        taken: dict[int, Decimal] = {}
        for i, line in enumerate(given):
            path = f"item.items[{i}]"
            if line.get("itemReceive") is False:
                continue
            if "orderLine" in line:
                ra_line = self._match_source_line(ra, line, path)
            else:
                item = line.get("item")
                if not isinstance(item, dict):
                    raise user_error("Please enter value(s) for: Item", f"{path}.item")
                wanted = (
                    _number(line.get("quantity", 0), f"{path}.quantity") if "quantity" in line else Decimal(0)
                )
                candidates = [ln for ln in ra["item"] if ln["item"]["id"] == str(item.get("id"))]
                if not candidates:
                    raise user_error(
                        f"Item {item.get('id')} is not on the return authorization.", f"{path}.item"
                    )
                open_lines = [
                    ln
                    for ln in candidates
                    if ln["quantity"] - ln[done_key] - taken.get(ln["line"], Decimal(0)) >= wanted
                ]
                ra_line = (open_lines or candidates)[0]
            if "item" in line and not isinstance(line["item"], dict):
                self._reference(line["item"], self.ref.items, "item", f"{path}.item")
            if "item" in line and str(line["item"].get("id")) != ra_line["item"]["id"]:
                raise user_error("The item does not match the return authorization line.", f"{path}.item")
            pairs.append((ra_line, line, path))
            taken[ra_line["line"]] = taken.get(ra_line["line"], Decimal(0)) + (
                _number(line["quantity"], f"{path}.quantity", positive=True)
                if "quantity" in line
                else Decimal(0)
            )
        if not pairs:
            raise user_error("You must enter at least one line item for this transaction.", "item")
        return pairs

    def _refresh_rastatus_ref(self, ra: dict[str, Any]) -> None:
        if ra["status"]["id"] not in ("A", "C"):
            lines = ra["item"]
            received_all = all(ln["quantityReceived"] >= ln["quantity"] for ln in lines)
            received_any = any(ln["quantityReceived"] > 0 for ln in lines)
            credited_all = all(ln["quantityCredited"] >= ln["quantity"] for ln in lines)
            if credited_all:
                code = "H" if received_all else "G"
            elif received_all:
                code = "F"
            elif received_any:
                code = "E"
            else:
                code = "B"
            ra["status"] = status_ref("returnAuthorization", code)
        self._store("returnAuthorization", ra["id"], ra)


def _check_names(
    obj: dict[str, Any],
    known: frozenset[str],
    read_only: frozenset[str],
    custom_prefix: str | None,
    path: str,
    strict: bool,
) -> None:
    for name in obj:
        where = f"{path}.{name}" if path else name
        if name in read_only:
            raise user_error(f"You cannot set the read-only field {name}.", where)
        if strict and name not in known and not (custom_prefix and name.startswith(custom_prefix)):
            raise NetSuiteError(
                400,
                "INVALID_FIELD",
                f"Invalid field name {name}: the record has no such field "
                "(X-NetSuite-PropertyNameValidation: Error).",
                where,
            )


def _check_date(value: Any, path: str) -> None:
    """NetSuite dates travel as YYYY-MM-DD; anything else (2026-13-45, 27/11/2026) is refused."""
    try:
        valid = isinstance(value, str) and len(value) == 10 and date.fromisoformat(value) is not None
    except ValueError:
        valid = False
    if not valid:
        raise user_error(f"Invalid date value {value!r} for field {path}: use YYYY-MM-DD.", path)


def line_amount(quantity: Decimal, rate: Decimal, path: str) -> Decimal:
    """quantity x rate to the cent; refused like an over-range amount field when it is 1e15 or more."""
    return in_range(quantity * rate, path).quantize(CENT, ROUND_HALF_UP)
