"""NetSuite simulator constants, reference data, error shape and field rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from returnbridge import exactjson

RECORD = "/services/rest/record/v1"

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
CREDIT_MEMO_STATUS = {"A": "Open", "B": "Fully Applied", "V": "Voided"}
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
# NetSuite holds currency and quantity fields as doubles (15 significant digits); a value of 1e15 or more
# cannot be stored to the cent and is refused as invalid, like a non-number. Every JSON number the
# simulator turns into a Decimal, and every amount it computes from them, stays below this.
MAX_NUMBER = Decimal("1E15")


class NetSuiteError(Exception):
    """An error answered in NetSuite's JSON shape."""

    TITLES = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        415: "Unsupported Media Type",
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
    return {400: 1, 401: 2, 403: 4, 404: 5, 405: 6, 415: 16, 429: 1, 500: 1, 503: 4}.get(status, 1)


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
    # Segments: departments and classes (the packs map cost centers to them).
    departments: dict[str, str] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)


# Body and line fields a transaction record takes (custbody*/custcol* custom fields pass by prefix), and the
# ones the system sets: a request that sets those is refused.
HEADER_FIELDS = frozenset(
    {
        "externalId", "memo", "otherRefNum", "tranDate", "entity", "currency", "exchangeRate", "location",
        "department", "class", "subsidiary", "paymentMethod", "account", "discountItem", "discountRate",
        "taxDetailsOverride", "taxDetails", "item", "orderStatus", "email",
    }
)  # fmt: skip
READ_ONLY_HEADER = frozenset(
    {
        "id", "tranId", "createdDate", "lastModifiedDate", "total", "subtotal", "taxTotal", "discountTotal",
        "status", "createdFrom", "links", "amountRemaining", "applied", "unapplied",
    }
)  # fmt: skip
LINE_FIELDS = frozenset(
    {
        "item", "quantity", "rate", "amount", "location", "description", "taxDetailsReference",
        "inventoryDetail", "itemReceive", "orderLine", "line", "department", "class", "price", "units",
    }
)  # fmt: skip
READ_ONLY_LINE = frozenset({"quantityReceived", "quantityCredited", "quantityBilled", "links"})
TAX_DETAIL_FIELDS = frozenset(
    {"taxDetailsReference", "taxType", "taxCode", "taxBasis", "taxAmount", "taxRate"}
)
ASSIGNMENT_FIELDS = frozenset(
    {"receiptInventoryNumber", "issueInventoryNumber", "quantity", "binNumber", "inventoryStatus"}
)


def seed_reference_data() -> ReferenceData:
    data = ReferenceData(
        customers={"101": "Acme Retail", "102": "Globex Stores", "103": "Initech Outlet"},
        locations={"1": "DAL1", "2": "RNO2", "3": "LHR1"},
        currencies={"1": "USD", "2": "GBP", "3": "EUR", "4": "CAD"},
        payment_methods={"1": "Cash", "2": "Check", "3": "Credit Card"},
        discount_items={"701": "Restocking Fee"},
        tax_types={"1": "US Sales Tax", "2": "CA GST/HST", "3": "VAT"},
        tax_codes={"10": "US-RMS", "20": "CA-RMS", "30": "GB-RMS", "31": "EU-RMS"},
        departments={"1": "Returns", "2": "Service", "3": "Warehouse"},
        classes={"1": "Retail", "2": "Wholesale", "3": "Online"},
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
    if not isinstance(number, Decimal):
        raise user_error(f"Invalid number for field {path.rsplit('.', 1)[-1]}.", path)
    in_range(number, path)
    if number < 0 or (positive and number == 0):
        raise user_error(f"The field {path.rsplit('.', 1)[-1]} must be greater than zero.", path)
    return number


def in_range(number: Decimal, path: str) -> Decimal:
    """``number`` if it is finite and below ``MAX_NUMBER`` in magnitude, else NetSuite's invalid-value error."""
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        raise user_error(
            f"Invalid number for field {path.rsplit('.', 1)[-1]}: it must be below {MAX_NUMBER:,.0f}.", path
        )
    return number
