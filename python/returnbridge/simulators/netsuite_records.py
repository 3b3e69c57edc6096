"""The NetSuite simulator's books: return authorizations, item receipts and sales orders, and their effects."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from returnbridge.simulators.kit import plain_int
from returnbridge.simulators.netsuite_book import line_amount
from returnbridge.simulators.netsuite_credits import Credits
from returnbridge.simulators.netsuite_data import (
    CENT,
    TRANSFORMS,
    Item,
    _number,
    status_ref,
    user_error,
)
from returnbridge.simulators.netsuite_render import Rendering


class RecordBook(Credits, Rendering):
    """Records and their rules; the simulator (which owns the HTTP side) mixes this in."""

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

    def _update(
        self, record_type: str, record: dict[str, Any], body: dict[str, Any], *, replace_lines: bool = False
    ) -> None:
        """PATCH (and PUT by external id): header fields, and the item sublist as NetSuite merges it; every check
        runs before anything changes. ``replace_lines`` (``?replace=item``): the given lines are the whole list."""
        self._check_header(record_type, body, partial=True)
        given = self._lines(body)
        lines = self._edited_lines(record_type, record, given, replace_lines) if given is not None else None
        for key, value in body.items():
            if key in ("id", "tranId", "status", "createdFrom", "item", "links"):
                continue
            record[key] = value
        if lines is not None:
            record["item"] = lines
        if lines is not None and record_type == "returnAuthorization":
            self._refresh_rastatus_ref(record)  # added or shrunk lines may complete (or reopen) its receipt
        else:
            self._store(record_type, record["id"], record)

    def _edited_lines(
        self, record_type: str, record: dict[str, Any], given: list[dict[str, Any]], replace: bool
    ) -> list[dict[str, Any]]:
        """The item sublist after a PATCH gave lines ``given``: a line naming its ``line`` is edited, one without
        is added, and with ``replace`` the lines not named are removed. Lines keep their numbers (receipts and
        credits name them)."""
        if record_type != "returnAuthorization":
            # Editing a receipt's or a credit's lines moves stock and the ledger; the simulator posts those only
            # through new transactions (docs/erp/netsuite.md), and must not answer 204 having changed nothing.
            raise user_error(
                f"This simulator does not edit the item sublist of a {record_type}; "
                "post a new transaction instead.",
                "item",
            )
        if record["status"]["id"] in ("C", "H"):
            raise user_error(
                "The lines of a closed or cancelled return authorization cannot be changed.", "item"
            )
        source = self._ra_source(record)
        current = {line["line"]: line for line in record["item"]}
        result = {} if replace else {number: dict(line) for number, line in current.items()}
        next_number = max(current, default=0) + 1
        named: set[int] = set()
        for i, line in enumerate(given):
            path = f"item.items[{i}]"
            if "line" not in line:
                result[next_number] = {**self._new_ra_line(line, path, source), "line": next_number}
                next_number += 1
                continue
            raw = line["line"]
            number = plain_int(str(raw)) if isinstance(raw, int | str) and not isinstance(raw, bool) else None
            if number is None or number not in current:
                raise user_error(f"The transaction has no line {line['line']}.", f"{path}.line")
            if number in named:
                raise user_error(f"Line {number} is given twice.", f"{path}.line")
            named.add(number)
            result[number] = self._edited_ra_line(current[number], line, path, source)
        for number, line in current.items():
            if number not in result and (line["quantityReceived"] or line["quantityCredited"]):
                raise user_error(
                    f"Line {number} has been received or credited and cannot be removed.", "item"
                )
        if not result:
            raise user_error("You must enter at least one line item for this transaction.", "item")
        return [result[number] for number in sorted(result)]

    def _edited_ra_line(
        self, line: dict[str, Any], edit: dict[str, Any], path: str, source: dict[str, Any] | None
    ) -> dict[str, Any]:
        values = self._line_values(edit, path, default_rate=line["rate"])
        done = max(line["quantityReceived"], line["quantityCredited"])
        if "item" in values and values["item"]["id"] != line["item"]["id"] and done:
            raise user_error("The item of a received or credited line cannot be changed.", f"{path}.item")
        edited = {**line, **values}
        if edited["quantity"] < done:
            raise user_error(
                f"The quantity cannot be less than the {done} already received or credited.",
                f"{path}.quantity",
            )
        if source is not None:
            ordered = self._match_source_line(source, {"item": edited["item"]}, path)
            if edited["quantity"] > ordered["quantity"]:
                raise user_error("You cannot return more than was ordered.", f"{path}.quantity")
        if "amount" not in values:
            edited["amount"] = line_amount(edited["quantity"], edited["rate"], f"{path}.amount")
        return edited

    def _ra_source(self, ra: dict[str, Any]) -> dict[str, Any] | None:
        """The transaction a return authorization was created from, if any."""
        source_id = (ra.get("createdFrom") or {}).get("id")
        if source_id is None:
            return None
        for source_type, target in TRANSFORMS:
            if target == "returnAuthorization" and (found := self.documents(source_type).get(source_id)):
                return found
        return None

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
            for line in lines:
                line.update(quantityReceived=Decimal(0), quantityCredited=Decimal(0))
        else:
            if not given:
                raise user_error("You must enter at least one line item for this transaction.", "item")
            lines = [
                self._new_ra_line(line, f"item.items[{i}]", source_record) for i, line in enumerate(given)
            ]
        for n, line in enumerate(lines, start=1):
            line["line"] = n
        initial = "A" if self.config.ra_initial_status == "Pending Approval" else "B"
        record = {
            "entity": {"id": entity},
            "status": status_ref("returnAuthorization", initial),
            "item": lines,
        }
        return record, []

    def _new_ra_line(
        self, line: dict[str, Any], path: str, source_record: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A new return authorization line (without its number), matched to the source transaction's line."""
        base: dict[str, Any] = {}
        if source_record is not None:
            base = self._match_source_line(source_record, line, path)
        values = self._line_values(line, path, default_rate=base.get("rate"))
        # The source line's amount belongs to its own quantity; it is recomputed below.
        merged = {**{k: v for k, v in base.items() if k not in ("line", "amount")}, **values}
        if "item" not in merged:
            raise user_error("Please enter value(s) for: Item", f"{path}.item")
        if "quantity" not in merged:
            raise user_error("Please enter value(s) for: Quantity", f"{path}.quantity")
        if source_record is not None and merged["quantity"] > base.get("quantity", merged["quantity"]):
            raise user_error("You cannot return more than was ordered.", f"{path}.quantity")
        merged.setdefault("rate", self.ref.items[merged["item"]["id"]].base_price)
        merged.setdefault("amount", line_amount(merged["quantity"], merged["rate"], f"{path}.amount"))
        merged.update(quantityReceived=Decimal(0), quantityCredited=Decimal(0))
        return merged

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
