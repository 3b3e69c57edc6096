"""The Fusion REST framework as the simulator speaks it: framework versions, q syntax, paging, errors, schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from aiohttp import web

from returnbridge import exactjson
from returnbridge.simulators.kit import SimulatorState, plain_int

API_ROOT = "/fscmRestApi/resources/11.13.18.05"
# Fusion answers with this media type for a single item and for collections.
ITEM_CT = "application/vnd.oracle.adf.resourceitem+json"
COLLECTION_CT = "application/vnd.oracle.adf.resourcecollection+json"
ERROR_CT = "application/vnd.oracle.adf.error+json"
ACCEPTED_CT = ("application/json", ITEM_CT, "application/vnd.oracle.adf.action+json")
FRAMEWORK_HEADER = "REST-Framework-Version"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    415: "Unsupported Media Type",
}

dumps_exact = exactjson.dumps


@dataclass
class OracleSimConfig:
    """Simulator settings; the **(unconfirmed)** behaviours in erp-apis.md are switches here."""

    username: str = "integration.user"
    password: str = "Welcome1!"
    # Accepted OAuth bearer tokens (bearer auth is unconfirmed for Fusion; empty = Basic only).
    bearer_tokens: tuple[str, ...] = ()
    # Error body: "by_version" (plain text up to framework version 3, JSON title/status/o:errorDetails from 4,
    # as Oracle documents version 4), or always "json" / always "text".
    error_format: Literal["by_version", "json", "text"] = "by_version"
    # Framework versions the resources allow, and the one used when a request sends no header (Fusion
    # resources default to 1 unless the resource declares otherwise).
    framework_versions: tuple[int, ...] = (1, 2, 3, 4)
    default_framework_version: int = 1
    source_systems: tuple[str, ...] = ("RETBRIDGE", "OPS")
    # Require an original order reference or UnreferencedReturnFlag=Y on every return line.
    require_return_reference: bool = False
    # A second order with the same source system + number, receipt with the same ShipmentNumber or credit
    # memo with the same PurchaseOrder + source: "refuse" (400, the order hub's documented uniqueness of the
    # source order) or "accept" (store another document, so a missing lookup shows up as a duplicate).
    duplicates: Literal["refuse", "accept"] = "refuse"
    # Order line extensible flexfield contexts (additionalInformation) and their attributes.
    eff_contexts: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"ReturnBridgeLine": ("ContextCode", "CostCenter", "VendorCode")}
    )
    # Largest page a collection GET returns, whatever `limit` asks for.
    max_limit: int = 500
    default_limit: int = 25
    initial_stock: Decimal = Decimal(100)


class FusionHost:
    """What the receiving and receivables mixins use of ``OracleSimulator``."""

    config: OracleSimConfig
    state: SimulatorState
    counters: Any

    def now(self) -> str:
        raise NotImplementedError

    def adjust_stock(self, sku: str, org: str, subinventory: str, delta: Decimal) -> Decimal:
        raise NotImplementedError

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raise NotImplementedError


class FusionError(Exception):
    """A request the simulated Fusion refuses: HTTP status plus (code, detail) pairs."""

    def __init__(self, status: int, details: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for _, d in details))
        self.status = status
        self.details = details


def framework_version(request: web.Request, config: OracleSimConfig) -> int:
    """The version a request asks for; anything but an allowed version is refused (never echoed)."""
    raw = request.headers.get(FRAMEWORK_HEADER)
    if raw is None:
        return config.default_framework_version
    version = plain_int(raw.strip())
    if version is None or version not in config.framework_versions:
        allowed = ", ".join(str(v) for v in config.framework_versions)
        raise FusionError(
            400,
            [
                (
                    "INVALID_FRAMEWORK_VERSION",
                    f"The REST framework version {raw!r} isn't supported: {allowed}.",
                )
            ],
        )
    return version


def error_response(exc: FusionError, version: int, config: OracleSimConfig) -> web.Response:
    fmt = config.error_format
    if fmt == "text" or (fmt == "by_version" and version < 4):
        return web.Response(
            status=exc.status, text="\n".join(d for _, d in exc.details), content_type="text/plain"
        )
    body = {
        "title": TITLES.get(exc.status, "Error"),
        "status": str(exc.status),
        "o:errorDetails": [{"detail": detail, "o:errorCode": code} for code, detail in exc.details],
    }
    return web.Response(status=exc.status, text=json.dumps(body), content_type=ERROR_CT)


# --- resource schemas: what a POST may carry ------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    """Attributes of one resource: writable, read-only (refused on input) and child collections."""

    name: str
    writable: frozenset[str]
    read_only: frozenset[str] = frozenset()
    children: tuple[str, ...] = ()

    @property
    def attributes(self) -> frozenset[str]:
        return self.writable | self.read_only


ORDER_HEADER = Schema(
    "salesOrdersForOrderHub",
    frozenset(
        {
            "SourceTransactionSystem", "SourceTransactionNumber", "SourceTransactionId",
            "SourceTransactionRevisionNumber", "BusinessUnitName", "BusinessUnitId", "BuyingPartyNumber",
            "BuyingPartyName", "BuyingPartyId", "TransactionTypeCode", "TransactionOn", "CustomerPONumber",
            "RequestedShipDate", "SubmittedFlag", "TransactionalCurrencyCode", "RequestingBusinessUnitName",
            "Comments", "FreezePriceFlag", "FreezeShippingChargeFlag", "FreezeTaxFlag",
        }
    ),
    frozenset({"HeaderId", "OrderNumber", "OrderKey", "StatusCode", "CreationDate", "LastUpdateDate"}),
    ("lines",),
)  # fmt: skip
ORDER_LINE = Schema(
    "lines",
    frozenset(
        {
            "TransactionCategoryCode", "SourceTransactionLineId", "SourceTransactionLineNumber",
            "SourceTransactionScheduleId", "SourceScheduleNumber", "ReturnReasonCode", "SubinventoryCode",
            "ProductNumber", "ProductId", "OrderedQuantity", "OrderedUOMCode", "UnitListPrice",
            "UnitSellingPrice", "TransactionLineTypeCode", "RequestedFulfillmentOrganizationCode",
            "RequestedShipDate", "UnreferencedReturnFlag", "Comments",
        }
    ),
    frozenset(
        {"LineId", "FulfillLineId", "LineNumber", "linesUniqID", "HeaderId", "StatusCode", "ReceivedQuantity"}
    ),
    ("documentReferences", "additionalInformation"),
)  # fmt: skip
DOCUMENT_REFERENCE = Schema(
    "documentReferences",
    frozenset(
        {
            "DocumentReferenceType", "DocumentIdentifier", "DocumentNumber", "DocumentLineIdentifier",
            "DocumentLineNumber", "DocumentSubLineIdentifier", "DocumentSubLineNumber",
        }
    ),
)  # fmt: skip
RECEIPT_HEADER = Schema(
    "receivingReceiptRequests",
    frozenset(
        {
            "ReceiptSourceCode", "ShipmentNumber", "OrganizationCode", "OrganizationId", "BusinessUnit",
            "CustomerPartyNumber", "CustomerPartyName", "CustomerId", "EmployeeId", "ExpectedReceiptDate",
            "Comments",
        }
    ),
    frozenset({"HeaderInterfaceId", "ReceiptNumber", "ProcessingStatusCode", "CreationDate", "LastUpdateDate"}),
    ("lines",),
)  # fmt: skip
RECEIPT_LINE = Schema(
    "lines",
    frozenset(
        {
            "ReceiptSourceCode", "SourceDocumentCode", "TransactionType", "AutoTransactCode", "OrganizationCode",
            "OrganizationId",
            "DocumentNumber", "DocumentLineNumber", "ItemNumber", "ItemId", "Quantity", "UnitOfMeasure",
            "UOMCode", "Subinventory", "Locator", "CustomerPartyNumber", "BusinessUnit", "TransactionDate",
            "Comments",
        }
    ),
    frozenset({"InterfaceTransactionId", "ProcessingStatusCode"}),
    ("serialItemSerials", "lotItemLots"),
)  # fmt: skip
RECEIPT_SERIAL = Schema("serialItemSerials", frozenset({"FromSerialNumber", "ToSerialNumber"}))
RECEIPT_LOT = Schema("lotItemLots", frozenset({"LotNumber", "TransactionQuantity", "LotExpirationDate"}))
CREDIT_MEMO_HEADER = Schema(
    "receivablesCreditMemos",
    frozenset(
        {
            "BusinessUnit", "TransactionSource", "TransactionType", "TransactionDate", "AccountingDate",
            "CreditMemoCurrency", "BillToCustomerName", "BillToCustomerNumber", "BillToSite",
            "ShipToCustomerNumber", "ShipToSite", "CreditMemoComments", "PurchaseOrder", "CreditReason",
        }
    ),
    frozenset(
        {
            "CustomerTransactionId", "TransactionNumber", "TransactionStatus", "EnteredAmount", "CreationDate",
            "LastUpdateDate",
        }
    ),
    ("receivablesCreditMemoLines",),
)  # fmt: skip
CREDIT_MEMO_LINE = Schema(
    "receivablesCreditMemoLines",
    frozenset(
        {
            "LineNumber", "LineDescription", "ItemNumber", "LineQuantityCredit", "UnitSellingPrice",
            "LineAmountCredit", "LineCreditReason", "UnitOfMeasure", "TaxClassificationCode", "MemoLineName",
        }
    ),
    frozenset({"CustomerTransactionLineId"}),
)  # fmt: skip


def check_attributes(body: dict[str, Any], schema: Schema, where: str, errors: list[tuple[str, str]]) -> None:
    """Unknown attributes and read-only ones are refused, as the ADF REST runtime does on a POST."""
    prefix = f"{where}: " if where else ""
    for name in body:
        if name in schema.writable or name in schema.children:
            continue
        if name in schema.read_only:
            errors.append(
                ("ADF_READ_ONLY_ATTRIBUTE", f"{prefix}The attribute {name} of {schema.name} is read-only.")
            )
        else:
            errors.append(
                ("ADF_UNKNOWN_ATTRIBUTE", f"{prefix}The attribute {name} isn't defined for {schema.name}.")
            )


def check_children(
    body: dict[str, Any], name: str, schema: Schema, where: str, errors: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """A child collection in a POST body: a list of objects, each checked against its schema."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(("ADF_INVALID_CHILD", f"{where}: {name} must be an array of objects"))
        return []
    rows = []
    for index, row in enumerate(value, start=1):
        if not isinstance(row, dict):
            errors.append(("ADF_INVALID_CHILD", f"{where}: {name} {index} must be an object"))
            continue
        check_attributes(row, schema, f"{where} {name} {index}", errors)
        rows.append(row)
    return rows


# --- q= filter ------------------------------------------------------------------------------------------

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|<>|!=|=|>|<)\s*(.*?)\s*$", re.S)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def parse_q(text: str, version: int, attributes: frozenset[str] | None = None) -> list[tuple[str, str, str]]:
    """Parse q in the syntax of the framework version; unknown attributes are refused.

    Version 1 is query-by-example (``A=x;B>5``); from version 2 it is a row-match expression
    (``A = 'x' and B > 5``: strings quoted, conditions joined by ``and``). The simulator supports the
    ``and`` subset of row-match; ``or`` and parentheses are refused as unsupported, never misread.
    """
    conditions: list[tuple[str, str, str]] = []
    for part in _split_q(text, version):
        match = _CONDITION.match(part)
        if match is None:
            raise FusionError(
                400, [("INVALID_QUERY", f"The query parameter q has an invalid expression: {part}")]
            )
        name, op, raw = match.groups()
        if attributes is not None and name not in attributes:
            raise FusionError(
                400, [("INVALID_QUERY", f"The attribute {name} in q isn't defined for the resource.")]
            )
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            value = raw[1:-1].replace("''", "'")
        elif version >= 2 and not _NUMBER.match(raw):
            raise FusionError(
                400,
                [
                    (
                        "INVALID_QUERY",
                        f"q value {raw!r} must be a quoted string or a number (row-match syntax).",
                    )
                ],
            )
        else:
            value = raw
        conditions.append((name, "<>" if op == "!=" else op, value))
    return conditions


def _split_q(text: str, version: int) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    in_quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            in_quote = not in_quote
        if not in_quote and version == 1 and ch == ";":
            parts.append("".join(buf))
            buf = []
        elif not in_quote and version >= 2 and ch == ";":
            raise FusionError(
                400,
                [
                    (
                        "INVALID_QUERY",
                        "q uses query-by-example ';' syntax, which framework version 2+ doesn't accept.",
                    )
                ],
            )
        elif not in_quote and version >= 2 and text[i : i + 5].lower() == " and ":
            parts.append("".join(buf))
            buf = []
            i += 5
            continue
        elif not in_quote and version >= 2 and (ch in "()" or text[i : i + 4].lower() == " or "):
            raise FusionError(400, [("UNSUPPORTED_QUERY", "The simulator supports row-match 'and' only.")])
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return [p for p in parts if p.strip()]


def matches(item: dict[str, Any], conditions: list[tuple[str, str, str]]) -> bool:
    for name, op, wanted in conditions:
        actual = item.get(name)
        if actual is None:
            return False
        if isinstance(actual, bool):
            left: Any = "true" if actual else "false"
            right: Any = wanted.lower()
        elif isinstance(actual, int | Decimal):
            try:
                left, right = Decimal(actual), Decimal(wanted)
            except InvalidOperation:
                return False
            # NaN, sNaN and Infinity are no number an attribute can equal or be ordered against.
            if not right.is_finite():
                return False
        else:
            left, right = str(actual), wanted
        ok = {
            "=": left == right,
            "<>": left != right,
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[op]
        if not ok:
            return False
    return True


def sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return (1, Decimal(value))
    return (2, str(value))


def _field_key(name: str) -> Callable[[tuple[str, dict[str, Any]]], tuple[int, Any]]:
    return lambda row: sort_key(row[1].get(name))


# --- responses ------------------------------------------------------------------------------------------


class Rest:
    """Renders items and collections for one request, in the shape its framework version asks for."""

    def __init__(self, request: web.Request, config: OracleSimConfig, version: int) -> None:
        self.request = request
        self.config = config
        self.version = version

    def href(self, path: str) -> str:
        return f"{self.request.scheme}://{self.request.host}{API_ROOT}/{path}"

    def json(
        self,
        body: Any,
        *,
        status: int = 200,
        content_type: str = ITEM_CT,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return web.Response(status=status, text=dumps_exact(body), content_type=content_type, headers=headers)

    def _links(self) -> bool:
        return self.request.query.get("onlyData", "false").lower() != "true"

    def present(
        self, resource: str, key: str, item: dict[str, Any], children: tuple[str, ...]
    ) -> dict[str, Any]:
        q = self.request.query
        expand = {e.strip() for e in q.get("expand", "").split(",") if e.strip()}
        fields = [f.strip() for f in q.get("fields", "").split(",") if f.strip()]
        unknown = [e for e in expand if e != "all" and e not in children]
        if unknown:
            raise FusionError(400, [("INVALID_EXPAND", f"{', '.join(unknown)} isn't a child of {resource}.")])
        href = self.href(f"{resource}/{key}")
        out: dict[str, Any] = {}
        for name, value in item.items():
            if name in children:
                if "all" in expand or name in expand:
                    rows = [{k: v for k, v in c.items() if not k.startswith("_")} for c in value]
                    out[name] = self._child(rows, f"{href}/child/{name}", name)
                continue
            if name.startswith("_"):
                continue
            out[name] = value
        if fields:
            out = {k: v for k, v in out.items() if k in fields or k in children}
        if self._links():
            out["links"] = [{"rel": "self", "href": href, "name": resource, "kind": "item"}] + [
                {"rel": "child", "href": f"{href}/child/{c}", "name": c, "kind": "collection"}
                for c in children
            ]
        return out

    def _child(self, rows: list[dict[str, Any]], href: str, name: str) -> Any:
        """An expanded child: a bare array up to version 2, a resource collection object from version 3."""
        if self.version < 3:
            return rows
        body: dict[str, Any] = {
            "items": rows,
            "count": len(rows),
            "hasMore": False,
            "limit": max(len(rows), self.config.default_limit),
            "offset": 0,
        }
        if self._links():
            body["links"] = [{"rel": "self", "href": href, "name": name, "kind": "collection"}]
        return body

    def page(
        self,
        resource: str,
        rows: list[tuple[str, dict[str, Any]]],
        children: tuple[str, ...],
        attributes: frozenset[str],
    ) -> web.Response:
        q = self.request.query
        if "q" in q:
            conditions = parse_q(q["q"], self.version, attributes)
            rows = [(k, v) for k, v in rows if matches(v, conditions)]
        for spec in reversed([s for s in q.get("orderBy", "").split(",") if s.strip()]):
            name, _, direction = spec.strip().partition(":")
            if name not in attributes or direction.lower() not in ("", "asc", "desc"):
                raise FusionError(
                    400, [("INVALID_ORDER_BY", f"orderBy {spec!r} isn't valid for {resource}.")]
                )
            rows.sort(key=_field_key(name), reverse=direction.lower() == "desc")
        limit_text, offset_text = q.get("limit", str(self.config.default_limit)), q.get("offset", "0")
        limit_value, offset = plain_int(limit_text), plain_int(offset_text)
        if limit_value is None or offset is None:
            raise FusionError(
                400,
                [
                    (
                        "INVALID_PARAMETER",
                        f"limit and offset must be non-negative integers ({limit_text!r}, {offset_text!r}).",
                    )
                ],
            )
        limit = min(limit_value, self.config.max_limit)
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {
            "items": [self.present(resource, k, v, children) for k, v in page],
            "count": len(page),
            "hasMore": offset + len(page) < len(rows),
            "limit": limit,
            "offset": offset,
        }
        if q.get("totalResults", "false").lower() == "true":
            body["totalResults"] = len(rows)
        body["links"] = [{"rel": "self", "href": self.href(resource), "name": resource, "kind": "collection"}]
        return self.json(body, content_type=COLLECTION_CT)
