"""Oracle simulator master data (items, organizations, customers, business units) and field validation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any


@dataclass(frozen=True, slots=True)
class Item:
    """One item master row: item number, ids and the flags Fusion validates returns against."""

    number: str
    inventory_item_id: int
    ebs_item_id: int
    description: str
    returnable: bool = True
    shippable: bool = True
    uom: str = "Ea"


@dataclass(frozen=True, slots=True)
class Organization:
    code: str
    fusion_id: int
    ebs_id: int
    business_unit: str


BUSINESS_UNITS: dict[str, int] = {"US1 Business Unit": 300000046987012, "UK1 Business Unit": 300000046987013}
CUSTOMERS: dict[str, dict[str, Any]] = {
    "1001": {"name": "Acme Retail", "party_id": 300000010001, "ebs_account_id": 1001},
    "1002": {"name": "Globex Stores", "party_id": 300000010002, "ebs_account_id": 1002},
    "1003": {"name": "Initech Outlet", "party_id": 300000010003, "ebs_account_id": 1003},
}
ITEMS: dict[str, Item] = {
    f"SKU-{n}": Item(
        number=f"SKU-{n}",
        inventory_item_id=300000000000 + n,
        ebs_item_id=2000 + (n - 1000),
        description=f"Demo item {n}",
        shippable=n != 1009,
        returnable=n != 1010,
    )
    for n in range(1001, 1011)
}
ORGANIZATIONS: dict[str, Organization] = {
    "DAL1": Organization("DAL1", 300000000207, 207, "US1 Business Unit"),
    "RNO2": Organization("RNO2", 300000000208, 208, "US1 Business Unit"),
    "LHR1": Organization("LHR1", 300000000209, 209, "UK1 Business Unit"),
}
SUBINVENTORIES = ("Stores", "RETURNS", "QUARANTINE")
UOMS = {"Ea": Decimal(1), "Bx": Decimal(12)}
TRANSACTION_SOURCES = ("Manual",)
TRANSACTION_TYPES = ("Credit Memo",)
LINE_TYPE_CREDIT_AND_RETURN = "ORA_RETURN_CREDIT_AND_RETURN_ITEM"
LINE_TYPE_CREDIT_ONLY = "ORA_RETURN_CREDIT_ONLY"
# GL accounts the AR credit memo posts to.
ACCOUNT_SALES_RETURNS = "4100"
ACCOUNT_RECEIVABLES = "1200"


class Validator:
    """Collects every field problem at once, in Fusion's wording."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors

    def string(
        self,
        obj: dict[str, Any],
        name: str,
        size: int,
        *,
        required: bool = False,
        where: str = "",
        coerce: bool = False,
    ) -> str | None:
        prefix = f"{where}: " if where else ""
        value = obj.get(name)
        if value is None or value == "":
            if required:
                self.errors.append(("ADF_MISSING_ATTRIBUTE", f"{prefix}The attribute {name} is required."))
            return None
        if coerce and isinstance(value, int | Decimal) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.errors.append(
                ("ADF_INVALID_TYPE", f"{prefix}The value of the attribute {name} must be a string.")
            )
            return None
        if len(value) > size:
            self.errors.append(
                (
                    "ADF_MAX_LENGTH",
                    f"{prefix}The value of the attribute {name} exceeds the maximum length of {size} characters.",
                )
            )
            return None
        return value

    def decimal(
        self,
        obj: dict[str, Any],
        name: str,
        *,
        required: bool = False,
        positive: bool = False,
        where: str = "",
    ) -> Decimal | None:
        prefix = f"{where}: " if where else ""
        value = obj.get(name)
        if value is None:
            if required:
                self.errors.append(("ADF_MISSING_ATTRIBUTE", f"{prefix}The attribute {name} is required."))
            return None
        if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
            self.errors.append(
                ("ADF_INVALID_TYPE", f"{prefix}The value of the attribute {name} must be a number.")
            )
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            self.errors.append(
                ("ADF_INVALID_NUMBER", f"{prefix}The value {value} of the attribute {name} isn't a number.")
            )
            return None
        if not number.is_finite() or number.adjusted() > 17:
            # Fusion NUMBER attributes hold 18 integer digits; beyond that is an error, not an overflow.
            self.errors.append(
                ("ADF_INVALID_NUMBER", f"{prefix}The value {value} of the attribute {name} isn't a number.")
            )
            return None
        if positive and number <= 0:
            self.errors.append(
                ("ADF_INVALID_NUMBER", f"{prefix}The attribute {name} must be greater than zero.")
            )
            return None
        return number

    def integer(
        self,
        obj: dict[str, Any],
        name: str,
        *,
        required: bool = False,
        positive: bool = False,
        where: str = "",
    ) -> int | None:
        """A whole number (a JSON number or numeric string, as ADF converts them); 1.5 is refused."""
        number = self.decimal(obj, name, required=required, positive=positive, where=where)
        if number is None:
            return None
        if number != number.to_integral_value():
            prefix = f"{where}: " if where else ""
            self.errors.append(
                (
                    "ADF_INVALID_NUMBER",
                    f"{prefix}The value {obj[name]} of the attribute {name} isn't a whole number.",
                )
            )
            return None
        return int(number)


def seed_summary() -> dict[str, Iterable[str]]:
    """Seed master data names, for docs and the CLI's `serve` banner."""
    return {
        "business_units": list(BUSINESS_UNITS),
        "customers": list(CUSTOMERS),
        "items": list(ITEMS),
        "organizations": list(ORGANIZATIONS),
        "subinventories": list(SUBINVENTORIES),
    }
