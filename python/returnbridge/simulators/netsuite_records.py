"""The NetSuite simulator's books: reference data, transaction records, their validation and their effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from aiohttp import web

from returnbridge import exactjson
from returnbridge.simulators.kit import SimulatorKit
from returnbridge.simulators.netsuite_suiteql import Row

RECORD = "/services/rest/record/v1"

if TYPE_CHECKING:
    from returnbridge.simulators.netsuite_config import NetSuiteSimulatorConfig

RA_STATUS = {
    "A": "Pending Approval",
    "B": "Pending Receipt",
    "C": "Cancelled",
    "D": "Partially Received",
    "E": "Pending Refund/Partially Received",
    "F": "Pending Refund",
    "G": "Refunded",
    "H": "Closed",
}
CREDIT_MEMO_STATUS = {"A": "Open", "B": "Fully Applied"}
TYPE_CODES = {
    "returnAuthorization": "RtnAuth",
    "itemReceipt": "ItemRcpt",
    "creditMemo": "CustCred",
    "cashRefund": "CashRfnd",
    "salesOrder": "SalesOrd",
}
TRAN_PREFIX = {
    "returnAuthorization": "RMA",
    "itemReceipt": "IR",
    "creditMemo": "CM",
    "cashRefund": "CR",
    "salesOrder": "SO",
}
# Which creates each record type accepts: POST/PUT of a standalone record, or a transform from these sources.
STANDALONE = frozenset({"returnAuthorization", "creditMemo", "salesOrder"})
TRANSFORMS = {
    ("salesOrder", "returnAuthorization"),
    ("cashSale", "returnAuthorization"),
    ("invoice", "returnAuthorization"),
    ("returnAuthorization", "itemReceipt"),
    ("returnAuthorization", "creditMemo"),
    ("returnAuthorization", "cashRefund"),
}
ACCOUNT_SALES_RETURNS = "4010 Sales Returns"
ACCOUNT_RECEIVABLE = "1200 Accounts Receivable"
ACCOUNT_UNDEPOSITED = "1000 Undeposited Funds"
ACCOUNT_SALES_TAX = "2200 Sales Tax Payable"
ACCOUNT_RESTOCKING = "4090 Restocking Fees"
CENT = Decimal("0.01")


class NetSuiteError(Exception):
    """An error answered in NetSuite's JSON shape."""

    TITLES = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        429: "Too Many Requests",
    }

    def __init__(
        self, status: int, code: str, detail: str, path: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.path = status, code, detail, path
        self.headers = headers or {}

    def response(self) -> web.Response:
        item: dict[str, Any] = {"detail": self.detail, "o:errorCode": self.code}
        if self.path:
            item["o:errorPath"] = self.path
        body = {
            "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#section-15.{5 if self.status < 500 else 6}.{_section(self.status)}",
            "title": self.TITLES.get(self.status, "Error"),
            "status": self.status,
            "o:errorDetails": [item],
        }
        return json_response(body, status=self.status, headers=self.headers)


def _section(status: int) -> int:
    return {400: 1, 401: 2, 403: 4, 404: 5, 405: 6, 429: 1, 500: 1, 503: 4}.get(status, 1)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=exactjson.dumps_bytes(body), status=status, content_type="application/json", headers=headers
    )


def user_error(detail: str, path: str = "") -> NetSuiteError:
    return NetSuiteError(400, "USER_ERROR", detail, path)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    sku: str
    name: str
    base_price: Decimal
    serialized: bool = False


@dataclass
class ReferenceData:
    customers: dict[str, str] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    currencies: dict[str, str] = field(default_factory=dict)
    payment_methods: dict[str, str] = field(default_factory=dict)
    # Discount items (header discountItem) and SuiteTax tax types / codes (taxDetails lines).
    discount_items: dict[str, str] = field(default_factory=dict)
    tax_types: dict[str, str] = field(default_factory=dict)
    tax_codes: dict[str, str] = field(default_factory=dict)


def seed_reference_data() -> ReferenceData:
    data = ReferenceData(
        customers={"101": "Acme Retail", "102": "Globex Stores", "103": "Initech Outlet"},
        locations={"1": "DAL1", "2": "RNO2", "3": "LHR1"},
        currencies={"1": "USD", "2": "GBP", "3": "EUR", "4": "CAD"},
        payment_methods={"1": "Cash", "2": "Check", "3": "Credit Card"},
        discount_items={"701": "Restocking Fee"},
        tax_types={"1": "US Sales Tax", "2": "CA GST/HST", "3": "VAT"},
        tax_codes={"10": "US-RMS", "20": "CA-RMS", "30": "GB-RMS", "31": "EU-RMS"},
    )
    for n in range(10):
        item_id, sku = str(501 + n), f"SKU-{1001 + n}"
        price = Decimal("19.99") + Decimal(n * 10)
        data.items[item_id] = Item(
            item_id, sku, f"Returnable item {sku}", price, serialized=sku in ("SKU-1003", "SKU-1004")
        )
    return data


def utc_now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def status_ref(record_type: str, code: str) -> dict[str, str]:
    names = RA_STATUS if record_type == "returnAuthorization" else CREDIT_MEMO_STATUS
    return {"id": code, "refName": names[code]}


def _number(value: Any, path: str, *, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise user_error(f"Invalid number for field {path.rsplit('.', 1)[-1]}.", path)
    try:
        number = Decimal(value) if isinstance(value, int | str) else value
    except InvalidOperation:
        raise user_error(f"Invalid number for field {path.rsplit('.', 1)[-1]}: {value!r}.", path) from None
    if not isinstance(number, Decimal) or not number.is_finite():
        raise user_error(f"Invalid number for field {path.rsplit('.', 1)[-1]}.", path)
    if number < 0 or (positive and number == 0):
        raise user_error(f"The field {path.rsplit('.', 1)[-1]} must be greater than zero.", path)
    return number


class RecordBook:
    """Records and their rules; the simulator (which owns the HTTP side) mixes this in."""

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

    def _seed(self) -> None:
        for n, item in enumerate(self.ref.items.values()):
            for m, (loc_id, site) in enumerate(self.ref.locations.items()):
                self.kit.state.adjust_stock(item.sku, site, "", Decimal(10 + (n + m * 7) % 31))
                self.modified[(item.id, loc_id)] = self.clock()
        # 9001 holds every item in bulk, so demo returns of any SKU can reference it.
        bulk = [(item.id, "100", str(item.base_price), "1") for item in list(self.ref.items.values())[2:]]
        for so_id, customer, lines in (
            ("9001", "101", [("501", "100", "19.99", "1"), ("502", "100", "5.00", "1"), *bulk]),
            (
                "9002",
                "102",
                [
                    ("503", "100", "249.00", "2"),
                    *[(i, q, r, "2") for i, q, r, _ in bulk if i != "503"],
                    ("501", "100", "19.99", "2"),
                    ("502", "100", "29.99", "2"),
                ],
            ),
            (
                "9003",
                "103",
                [(item.id, "100", str(item.base_price), "3") for item in self.ref.items.values()],
            ),
        ):
            record = self._new_record("salesOrder", so_id)
            record["entity"] = {"id": customer}
            record["status"] = {"id": "G", "refName": "Billed"}
            record["item"] = [
                {
                    "line": i + 1,
                    "item": {"id": it},
                    "quantity": Decimal(q),
                    "rate": Decimal(r),
                    "amount": Decimal(q) * Decimal(r),
                    "location": {"id": loc},
                }
                for i, (it, q, r, loc) in enumerate(lines)
            ]
            self._store("salesOrder", so_id, record)

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

    def _create(
        self, record_type: str, body: dict[str, Any], *, source: tuple[str, dict[str, Any]] | None
    ) -> str:
        """Validate and store a new record; all checks run before anything changes."""
        self._check_header(record_type, body)
        if record_type == "returnAuthorization":
            record, effects = self._build_ra(body, source)
        elif record_type == "itemReceipt":
            assert source is not None
            record, effects = self._build_receipt(body, source[1])
        elif record_type in ("creditMemo", "cashRefund"):
            record, effects = self._build_credit(record_type, body, source[1] if source else None)
        else:
            record, effects = self._build_sales_order(body)
        record_id = self._new_id()
        record = {**self._new_record(record_type, record_id), **record}
        for key in (
            "externalId",
            "memo",
            "otherRefNum",
            "tranDate",
            "department",
            "class",
            "location",
            "paymentMethod",
            "account",
        ):
            if key in body:
                record[key] = body[key]
        record.update({k: v for k, v in body.items() if k.startswith("custbody")})
        if "currency" in body:
            record["currency"] = body["currency"]
        if source is not None:
            record["createdFrom"] = {"id": source[1]["id"]}
            if "currency" not in body:
                record["currency"] = dict(source[1].get("currency", {"id": "1"}))
        self._store(record_type, record_id, record)
        for effect in effects:
            effect(record)
        return record_id

    def _update(self, record_type: str, record: dict[str, Any], body: dict[str, Any]) -> None:
        self._check_header(record_type, body, partial=True)
        for key, value in body.items():
            if key in ("id", "tranId", "status", "createdFrom", "item", "links"):
                continue
            record[key] = value
        self._store(record_type, record["id"], record)

    def _check_header(self, record_type: str, body: dict[str, Any], *, partial: bool = False) -> None:
        lengths = self.config.field_lengths
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
                and amount not in (quantity * rate, (quantity * rate).quantize(CENT, ROUND_HALF_UP))
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

    def _build_sales_order(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        record, _ = self._build_ra(body, None)
        record["status"] = {"id": "G", "refName": "Billed"}
        return record, []

    def _build_ra(
        self, body: dict[str, Any], source: tuple[str, dict[str, Any]] | None
    ) -> tuple[dict[str, Any], list[Any]]:
        source_record = source[1] if source else None
        if source_record is not None:
            entity = source_record["entity"]["id"]
            if "entity" in body and str(body["entity"].get("id")) != entity:
                raise user_error("The customer must match the source transaction's customer.", "entity")
        else:
            if "entity" not in body:
                raise user_error("Please enter value(s) for: Customer", "entity")
            entity = str(body["entity"]["id"])
        given = self._lines(body)
        lines: list[dict[str, Any]] = []
        if given is None:
            if source_record is None:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            lines = [{k: v for k, v in ln.items() if k != "line"} for ln in source_record["item"]]
        else:
            if not given:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            for i, line in enumerate(given):
                path = f"item.items[{i}]"
                base: dict[str, Any] = {}
                if source_record is not None:
                    base = self._match_source_line(source_record, line, path)
                default_rate = base.get("rate")
                values = self._line_values(line, path, default_rate=default_rate)
                # The source line's amount belongs to its own quantity; it is recomputed below.
                merged = {**{k: v for k, v in base.items() if k not in ("line", "amount")}, **values}
                if "item" not in merged:
                    raise user_error("Please enter value(s) for: Item", f"{path}.item")
                if "quantity" not in merged:
                    raise user_error("Please enter value(s) for: Quantity", f"{path}.quantity")
                if source_record is not None and merged["quantity"] > base.get(
                    "quantity", merged["quantity"]
                ):
                    raise user_error("You cannot return more than was ordered.", f"{path}.quantity")
                merged.setdefault("rate", self.ref.items[merged["item"]["id"]].base_price)
                lines.append(merged)
        for n, line in enumerate(lines, start=1):
            line["line"] = n
            line.setdefault("amount", (line["quantity"] * line["rate"]).quantize(CENT, ROUND_HALF_UP))
            line["quantityReceived"] = Decimal(0)
            line["quantityCredited"] = Decimal(0)
        initial = "A" if self.config.ra_initial_status == "Pending Approval" else "B"
        record = {
            "entity": {"id": entity},
            "status": status_ref("returnAuthorization", initial),
            "item": lines,
        }
        return record, []

    def _match_source_line(self, source: dict[str, Any], line: dict[str, Any], path: str) -> dict[str, Any]:
        if "orderLine" in line:
            try:
                number = int(line["orderLine"])
            except (TypeError, ValueError):
                raise user_error("orderLine must be a line number.", f"{path}.orderLine") from None
            for candidate in source["item"]:
                if candidate["line"] == number:
                    return candidate
            raise user_error(f"The source transaction has no line {number}.", f"{path}.orderLine")
        item = line.get("item")
        if isinstance(item, dict):
            for candidate in source["item"]:
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

    def _build_receipt(self, body: dict[str, Any], ra: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        if ra["status"]["id"] not in ("B", "D", "E", "G"):
            raise user_error(f"You can not initialize itemreceipt: invalid reference {ra['id']}.")
        body_location = (
            self._reference(body["location"], self.ref.locations, "location", "location")
            if "location" in body
            else None
        )
        lines: list[dict[str, Any]] = []
        receipts: list[tuple[dict[str, Any], Decimal, str, list[str]]] = []
        pending: dict[int, Decimal] = {}
        new_serials: set[tuple[str, str]] = set()
        for ra_line, line, path in self._select_ra_lines(ra, body, "quantityReceived"):
            remaining = (
                ra_line["quantity"] - ra_line["quantityReceived"] - pending.get(ra_line["line"], Decimal(0))
            )
            quantity = (
                _number(line["quantity"], f"{path}.quantity", positive=True)
                if "quantity" in line
                else remaining
            )
            if quantity > remaining:
                raise user_error(
                    f"You cannot receive more than the {remaining} still expected on line {ra_line['line']}.",
                    f"{path}.quantity",
                )
            pending[ra_line["line"]] = pending.get(ra_line["line"], Decimal(0)) + quantity
            if "location" in line:
                location = self._reference(
                    line["location"], self.ref.locations, "location", f"{path}.location"
                )
            else:
                location = (
                    body_location or ra_line.get("location", {}).get("id") or ra.get("location", {}).get("id")
                )
            if not location:
                raise user_error("Please enter value(s) for: Location", f"{path}.location")
            item = self.ref.items[ra_line["item"]["id"]]
            numbers = self._inventory_numbers(line, item, quantity, path)
            for number in numbers:
                if item.serialized and (
                    number in self.serials.get(item.id, {}) or (item.id, number) in new_serials
                ):
                    raise user_error(
                        f"The serial number {number} already exists for item {item.sku}.",
                        f"{path}.inventoryDetail",
                    )
                new_serials.add((item.id, number))
            entry: dict[str, Any] = {
                "line": len(lines) + 1,
                "orderLine": ra_line["line"],
                "item": {"id": item.id},
                "itemReceive": True,
                "quantity": quantity,
                "rate": ra_line["rate"],
                "location": {"id": location},
            }
            if numbers:
                entry["inventoryDetail"] = {
                    "inventoryAssignment": {
                        "items": [
                            {
                                "receiptInventoryNumber": n,
                                "quantity": Decimal(1) if item.serialized else quantity,
                            }
                            for n in numbers
                        ]
                    }
                }
            lines.append(entry)
            receipts.append((ra_line, quantity, location, numbers))
        total = sum((ln["quantity"] * ln["rate"] for ln in lines), Decimal(0)).quantize(CENT, ROUND_HALF_UP)
        record = {"entity": dict(ra["entity"]), "item": lines, "total": total}

        def apply(receipt: dict[str, Any]) -> None:
            for ra_line, quantity, location, numbers in receipts:
                item = self.ref.items[ra_line["item"]["id"]]
                ra_line["quantityReceived"] += quantity
                self.adjust_stock(item.sku, self.ref.locations[location], quantity)
                if item.serialized:
                    for number in numbers:
                        self.serials.setdefault(item.id, {})[number] = location
            self._refresh_rastatus_ref(ra)

        return record, [apply]

    def _inventory_numbers(self, line: dict[str, Any], item: Item, quantity: Decimal, path: str) -> list[str]:
        detail = line.get("inventoryDetail")
        if detail is None:
            if item.serialized:
                raise user_error(
                    f"Please configure the inventory detail for item {item.sku}: {quantity} serial numbers are required.",
                    f"{path}.inventoryDetail",
                )
            return []
        assignments = detail.get("inventoryAssignment", {}).get("items") if isinstance(detail, dict) else None
        if not isinstance(assignments, list) or not assignments:
            raise user_error(
                "inventoryDetail.inventoryAssignment.items must list the inventory numbers.",
                f"{path}.inventoryDetail",
            )
        numbers: list[str] = []
        counted = Decimal(0)
        for j, assignment in enumerate(assignments):
            apath = f"{path}.inventoryDetail.inventoryAssignment.items[{j}]"
            if not isinstance(assignment, dict):
                raise user_error("Each inventory assignment must be an object.", apath)
            if "issueInventoryNumber" in assignment:
                raise user_error(
                    "Incoming stock uses receiptInventoryNumber, not issueInventoryNumber.",
                    f"{apath}.issueInventoryNumber",
                )
            number = assignment.get("receiptInventoryNumber")
            if not isinstance(number, str) or not number.strip():
                raise user_error(
                    "Please enter value(s) for: Serial/Lot Number", f"{apath}.receiptInventoryNumber"
                )
            self._check_length(
                "receiptInventoryNumber",
                number,
                self.config.field_lengths.get("receiptInventoryNumber"),
                f"{apath}.receiptInventoryNumber",
            )
            assigned = _number(assignment.get("quantity", 1), f"{apath}.quantity", positive=True)
            if item.serialized and assigned != 1:
                raise user_error("A serial number always has quantity 1.", f"{apath}.quantity")
            if number in numbers:
                raise user_error(
                    f"The serial number {number} is listed twice.", f"{apath}.receiptInventoryNumber"
                )
            numbers.append(number)
            counted += assigned
        if counted != quantity:
            raise user_error(
                f"The inventory detail quantity {counted} must equal the line quantity {quantity}.",
                f"{path}.inventoryDetail",
            )
        return numbers

    def _build_credit(
        self, record_type: str, body: dict[str, Any], ra: dict[str, Any] | None
    ) -> tuple[dict[str, Any], list[Any]]:
        lines: list[dict[str, Any]] = []
        credited: list[tuple[dict[str, Any], Decimal]] = []
        if ra is None:
            if "entity" not in body:
                raise user_error("Please enter value(s) for: Customer", "entity")
            given = self._lines(body)
            if not given:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            for i, line in enumerate(given):
                path = f"item.items[{i}]"
                values = self._line_values(line, path, default_rate=None)
                if "item" not in values or "quantity" not in values:
                    raise user_error("Please enter value(s) for: Item, Quantity", path)
                values.setdefault("rate", self.ref.items[values["item"]["id"]].base_price)
                lines.append(values)
            entity = {"id": str(body["entity"]["id"])}
        else:
            if ra["status"]["id"] in ("A", "C", "G", "H"):
                raise user_error(
                    f"You can not initialize {record_type.lower()}: invalid reference {ra['id']}."
                )
            pending: dict[int, Decimal] = {}
            for ra_line, line, path in self._select_ra_lines(ra, body, "quantityCredited"):
                remaining = (
                    ra_line["quantity"]
                    - ra_line["quantityCredited"]
                    - pending.get(ra_line["line"], Decimal(0))
                )
                values = self._line_values(line, path, default_rate=ra_line["rate"])
                quantity = values.get("quantity", remaining)
                if quantity > remaining:
                    raise user_error(
                        f"You cannot credit more than the {remaining} still open on line {ra_line['line']}.",
                        f"{path}.quantity",
                    )
                pending[ra_line["line"]] = pending.get(ra_line["line"], Decimal(0)) + quantity
                lines.append(
                    {
                        **values,
                        "item": dict(ra_line["item"]),
                        "quantity": quantity,
                        "orderLine": ra_line["line"],
                    }
                )
                credited.append((ra_line, quantity))
            entity = dict(ra["entity"])
        for n, line in enumerate(lines, start=1):
            line["line"] = n
            line.setdefault("rate", Decimal(0))
            line.setdefault("amount", (line["quantity"] * line["rate"]).quantize(CENT, ROUND_HALF_UP))
        subtotal = sum((ln["amount"] for ln in lines), Decimal(0))
        discount_total = self._discount_total(body, subtotal)
        tax_details, tax_total = self._tax_details(body, lines)
        total = subtotal + discount_total + tax_total
        if total < 0:
            raise user_error(f"The transaction total {total} cannot be negative.", "discountRate")
        record: dict[str, Any] = {
            "entity": entity,
            "item": lines,
            "subtotal": subtotal,
            "discountTotal": discount_total,
            "taxTotal": tax_total,
            "total": total,
        }
        if "discountItem" in body:
            record["discountItem"] = {"id": str(body["discountItem"]["id"])}
            record["discountRate"] = body["discountRate"]
        if tax_details is not None:
            record["taxDetailsOverride"] = True
            record["taxDetails"] = tax_details
        if record_type == "creditMemo":
            record["status"] = status_ref("creditMemo", "A")
        credit_account = ACCOUNT_RECEIVABLE if record_type == "creditMemo" else ACCOUNT_UNDEPOSITED
        # Returned goods and the tax given back are debits; the refund and a fee kept are credits.
        entries = [(ACCOUNT_SALES_RETURNS, subtotal, Decimal(0))]
        if tax_total:
            entries.append((ACCOUNT_SALES_TAX, tax_total, Decimal(0)))
        if discount_total < 0:
            entries.append((ACCOUNT_RESTOCKING, Decimal(0), -discount_total))
        elif discount_total > 0:
            entries.append((ACCOUNT_RESTOCKING, discount_total, Decimal(0)))
        entries.append((credit_account, Decimal(0), total))

        def apply(document: dict[str, Any]) -> None:
            currency = self.ref.currencies.get(str(document.get("currency", {}).get("id", "1")), "USD")
            self.kit.state.post(record_type, document["id"], currency, entries)
            for ra_line, quantity in credited:
                ra_line["quantityCredited"] += quantity
            if ra is not None:
                self._refresh_rastatus_ref(ra)

        return record, [apply]

    def _discount_total(self, body: dict[str, Any], subtotal: Decimal) -> Decimal:
        """The header discount: a flat amount (negative reduces the total) or a percentage of the subtotal."""
        if "discountRate" not in body:
            if "discountItem" in body:
                raise user_error("Please enter value(s) for: Rate", "discountRate")
            return Decimal(0)
        if "discountItem" not in body:
            raise user_error("Please enter value(s) for: Discount Item", "discountItem")
        rate = body["discountRate"]
        percent = isinstance(rate, str) and rate.strip().endswith("%")
        text = rate.strip().removesuffix("%") if isinstance(rate, str) else rate
        try:
            value = Decimal(text) if isinstance(text, int | str) and not isinstance(text, bool) else text
        except InvalidOperation:
            value = None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise user_error(f"Invalid number for field discountRate: {rate!r}.", "discountRate")
        if percent:
            return (subtotal * value / 100).quantize(CENT, ROUND_HALF_UP)
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise user_error(f"The discount amount {value} has more than 2 decimal places.", "discountRate")
        return value

    def _tax_details(
        self, body: dict[str, Any], lines: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]] | None, Decimal]:
        """Overridden SuiteTax tax detail lines and their total; without an override no tax is computed here."""
        override = body.get("taxDetailsOverride", False)
        if not isinstance(override, bool):
            raise user_error("Invalid value for field taxDetailsOverride.", "taxDetailsOverride")
        if "taxDetails" in body and not override:
            raise user_error(
                "Tax details can be entered only when Tax Details Override is checked.", "taxDetails"
            )
        if not override:
            return None, Decimal(0)
        sublist = body.get("taxDetails", {"items": []})
        if not isinstance(sublist, dict) or not isinstance(sublist.get("items"), list):
            raise user_error('The taxDetails sublist must be an object {"items": [...]}.', "taxDetails")
        references = {ln["taxDetailsReference"] for ln in lines if "taxDetailsReference" in ln}
        details: list[dict[str, Any]] = []
        for i, detail in enumerate(sublist["items"]):
            path = f"taxDetails.items[{i}]"
            if not isinstance(detail, dict):
                raise user_error("Each tax detail line must be an object.", path)
            reference = detail.get("taxDetailsReference")
            if reference not in references:
                raise user_error(
                    f"The tax details reference {reference!r} does not match any item line.",
                    f"{path}.taxDetailsReference",
                )
            if "taxAmount" not in detail:
                raise user_error("Please enter value(s) for: Tax Amount", f"{path}.taxAmount")
            amount = _number(detail["taxAmount"], f"{path}.taxAmount")
            if amount != amount.quantize(CENT):
                raise user_error(
                    f"The tax amount {amount} has more than 2 decimal places.", f"{path}.taxAmount"
                )
            entry: dict[str, Any] = {
                "taxDetailsReference": reference,
                "taxType": {
                    "id": self._reference(
                        detail.get("taxType"), self.ref.tax_types, "taxType", f"{path}.taxType"
                    )
                },
                "taxCode": {
                    "id": self._reference(
                        detail.get("taxCode"), self.ref.tax_codes, "taxCode", f"{path}.taxCode"
                    )
                },
                "taxAmount": amount,
            }
            if "taxBasis" in detail:
                entry["taxBasis"] = _number(detail["taxBasis"], f"{path}.taxBasis")
            details.append(entry)
        return details, sum((d["taxAmount"] for d in details), Decimal(0))

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
