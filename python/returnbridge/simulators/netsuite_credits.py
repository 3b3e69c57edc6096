"""NetSuite simulator: credit memos and cash refunds from a return authorization (discounts, SuiteTax)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from returnbridge.simulators.netsuite_book import BookCore, line_amount
from returnbridge.simulators.netsuite_data import (
    ACCOUNT_RECEIVABLE,
    ACCOUNT_RESTOCKING,
    ACCOUNT_SALES_RETURNS,
    ACCOUNT_SALES_TAX,
    ACCOUNT_UNDEPOSITED,
    CENT,
    _number,
    in_range,
    status_ref,
    user_error,
)


class Credits(BookCore):
    """Credit memo and cash refund building: lines, discount, tax details, ledger postings."""

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
            line.setdefault(
                "amount", line_amount(line["quantity"], line["rate"], f"item.items[{n - 1}].amount")
            )
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
        in_range(value, "discountRate")
        if percent:
            return in_range(subtotal * value / 100, "discountRate").quantize(CENT, ROUND_HALF_UP)
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
