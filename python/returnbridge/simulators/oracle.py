"""Oracle Fusion Cloud REST simulator: order hub returns, RMA receiving, AR credit memos, on-hand stock."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from returnbridge import exactjson
from returnbridge.simulators.kit import SimulatorKit

API_ROOT = "/fscmRestApi/resources/11.13.18.05"
ORDERS = "salesOrdersForOrderHub"
RECEIPTS = "receivingReceiptRequests"
CREDIT_MEMOS = "receivablesCreditMemos"
ONHAND = "onhandQuantityDetails"
RMA_LINES = "rmaLinesForReceiving"

# Fusion answers with this media type for a single item and for collections.
ITEM_CT = "application/vnd.oracle.adf.resourceitem+json"
COLLECTION_CT = "application/vnd.oracle.adf.resourcecollection+json"
ERROR_CT = "application/vnd.oracle.adf.error+json"
ACCEPTED_CT = ("application/json", ITEM_CT, "application/vnd.oracle.adf.action+json")


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


@dataclass
class OracleSimConfig:
    """Simulator settings; the **(unconfirmed)** behaviours in erp-apis.md are switches here."""

    username: str = "integration.user"
    password: str = "Welcome1!"
    # Accepted OAuth bearer tokens (bearer auth is unconfirmed for Fusion; empty = Basic only).
    bearer_tokens: tuple[str, ...] = ()
    # Error body style: "json" (title/status/o:errorDetails) or "text" (plain text).
    error_format: str = "json"
    source_systems: tuple[str, ...] = ("RETBRIDGE", "OPS")
    # Require an original order reference or UnreferencedReturnFlag=Y on every return line.
    require_return_reference: bool = False
    # Largest page a collection GET returns, whatever `limit` asks for.
    max_limit: int = 500
    default_limit: int = 25
    initial_stock: Decimal = Decimal(100)


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


class FusionError(Exception):
    """A request the simulated Fusion refuses: HTTP status plus (code, detail) pairs."""

    def __init__(self, status: int, details: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(d for _, d in details))
        self.status = status
        self.details = details


# --- q= filter -------------------------------------------------------------------------------------------

_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|<>|!=|=|>|<)\s*(.*?)\s*$", re.S)


def parse_q(text: str) -> list[tuple[str, str, str]]:
    """Parse the simple q forms: ``A='x'``, ``A=x;B>5`` (v1) and ``A='x' and B>5`` (v2+)."""
    conditions: list[tuple[str, str, str]] = []
    for part in _split_q(text):
        match = _CONDITION.match(part)
        if match is None:
            raise FusionError(
                400, [("INVALID_QUERY", f"The query parameter q has an invalid expression: {part}")]
            )
        name, op, raw = match.groups()
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            value = raw[1:-1].replace("''", "'")
        elif len(raw) >= 2 and raw[0] == raw[-1] == '"':
            value = raw[1:-1]
        else:
            value = raw
        conditions.append((name, "<>" if op == "!=" else op, value))
    return conditions


def _split_q(text: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    in_quote = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            in_quote = not in_quote
        if not in_quote and ch == ";":
            parts.append("".join(buf))
            buf = []
        elif not in_quote and text[i : i + 5].lower() == " and ":
            parts.append("".join(buf))
            buf = []
            i += 5
            continue
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return [p for p in parts if p.strip()]


def _matches(item: dict[str, Any], conditions: list[tuple[str, str, str]]) -> bool:
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


# --- the simulator ---------------------------------------------------------------------------------------


@dataclass
class _Counters:
    headers: int = 0
    receipts: int = 0
    memos: int = 0
    lines: int = 0


@dataclass
class OracleSimulator:
    """The simulated Oracle pod: Fusion REST routes plus the state the EBS stand-in shares."""

    config: OracleSimConfig = field(default_factory=OracleSimConfig)

    def __post_init__(self) -> None:
        self.kit = SimulatorKit("oracle")
        self.kit.on_reset.append(lambda _state: self._seed())
        self.stock_updated: dict[tuple[str, str, str], str] = {}
        self.counters = _Counters()
        self._last_ts: datetime | None = None
        self._seed()
        self.app = self.kit.make_app(self._routes())

    @property
    def state(self) -> Any:
        return self.kit.state

    # -- seed and clock --

    def _seed(self) -> None:
        self.stock_updated = {}
        self.counters = _Counters()
        for sku in (f"SKU-{n}" for n in range(1001, 1009)):
            for org in ORGANIZATIONS:
                self.adjust_stock(sku, org, "Stores", self.config.initial_stock)

    def now(self) -> str:
        """Strictly increasing timestamps, so LastUpdateDate cursors never see two changes at once."""
        ts = datetime.now(UTC)
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + timedelta(microseconds=1)
        self._last_ts = ts
        return ts.isoformat(timespec="microseconds")

    def adjust_stock(self, sku: str, org: str, subinventory: str, delta: Decimal) -> Decimal:
        qty: Decimal = self.kit.state.adjust_stock(sku, org, subinventory, delta)
        self.stock_updated[(sku, org, subinventory)] = self.now()
        return qty

    # -- routes --

    def _routes(self) -> list[web.RouteDef]:
        r = API_ROOT
        return [
            web.post(f"{r}/{ORDERS}", self._guard(self._create_order)),
            web.get(f"{r}/{ORDERS}", self._guard(self._list(ORDERS))),
            web.get(f"{r}/{ORDERS}/{{key}}", self._guard(self._get_order)),
            web.get(f"{r}/{ORDERS}/{{key}}/child/lines", self._guard(self._order_lines)),
            web.get(
                f"{r}/{ORDERS}/{{key}}/child/lines/{{line}}/child/originalOrderReference",
                self._guard(self._original_reference),
            ),
            web.post(f"{r}/{RECEIPTS}", self._guard(self._create_receipt)),
            web.get(f"{r}/{RECEIPTS}", self._guard(self._list(RECEIPTS))),
            web.get(f"{r}/{RECEIPTS}/{{key}}", self._guard(self._get_item(RECEIPTS))),
            web.post(f"{r}/{CREDIT_MEMOS}", self._guard(self._create_credit_memo)),
            web.get(f"{r}/{CREDIT_MEMOS}", self._guard(self._list(CREDIT_MEMOS))),
            web.get(f"{r}/{CREDIT_MEMOS}/{{key}}", self._guard(self._get_item(CREDIT_MEMOS))),
            web.get(
                f"{r}/{CREDIT_MEMOS}/{{key}}/child/receivablesCreditMemoLines", self._guard(self._memo_lines)
            ),
            web.get(f"{r}/{ONHAND}", self._guard(self._onhand)),
            web.get(f"{r}/{RMA_LINES}", self._guard(self._rma_lines)),
        ]

    def _guard(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        """Auth check, framework-version echo and error rendering around every Fusion handler."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            if not self._authorized(request.headers.get("Authorization", "")):
                return web.Response(
                    status=401,
                    text="",
                    headers={"WWW-Authenticate": 'Basic realm="fusion"'},
                )
            try:
                response: web.StreamResponse = await handler(request)
            except FusionError as exc:
                response = self._error_response(exc)
            version = request.headers.get("REST-Framework-Version")
            if version:
                response.headers["REST-Framework-Version"] = version
            return response

        return wrapped

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return user == self.config.username and password == self.config.password
        if scheme.lower() == "bearer":
            return value.strip() in self.config.bearer_tokens
        return False

    def _error_response(self, exc: FusionError) -> web.Response:
        if self.config.error_format == "text":
            return web.Response(
                status=exc.status, text="\n".join(d for _, d in exc.details), content_type="text/plain"
            )
        title = {400: "Bad Request", 404: "Not Found", 415: "Unsupported Media Type"}.get(exc.status, "Error")
        body = {
            "title": title,
            "status": str(exc.status),
            "o:errorDetails": [{"detail": detail, "o:errorCode": code} for code, detail in exc.details],
        }
        return web.Response(status=exc.status, text=json.dumps(body), content_type=ERROR_CT)

    # -- generic collection plumbing --

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type not in ACCEPTED_CT:
            raise FusionError(
                415, [("UNSUPPORTED_MEDIA_TYPE", f"Unsupported media type {request.content_type}")]
            )
        try:
            body = json.loads(await request.text(), parse_float=Decimal)
        except ValueError as exc:
            raise FusionError(400, [("INVALID_JSON", f"The request body is not valid JSON: {exc}")]) from exc
        if not isinstance(body, dict):
            raise FusionError(400, [("INVALID_JSON", "The request body must be a JSON object")])
        return body

    def _json(
        self,
        body: Any,
        *,
        status: int = 200,
        content_type: str = ITEM_CT,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return web.Response(
            status=status, text=exactjson.dumps(body), content_type=content_type, headers=headers
        )

    def _href(self, request: web.Request, path: str) -> str:
        return f"{request.scheme}://{request.host}{API_ROOT}/{path}"

    def _present(
        self, request: web.Request, resource: str, key: str, item: dict[str, Any], children: tuple[str, ...]
    ) -> dict[str, Any]:
        q = request.query
        expand = {e.strip() for e in q.get("expand", "").split(",") if e.strip()}
        fields = [f.strip() for f in q.get("fields", "").split(",") if f.strip()]
        out: dict[str, Any] = {}
        for name, value in item.items():
            if name in children:
                if "all" in expand or name in expand:
                    out[name] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in value]
                continue
            if name.startswith("_"):
                continue
            out[name] = value
        if fields:
            out = {k: v for k, v in out.items() if k in fields or k in children}
        if q.get("onlyData", "false").lower() != "true":
            href = self._href(request, f"{resource}/{key}")
            out["links"] = [{"rel": "self", "href": href, "name": resource, "kind": "item"}] + [
                {"rel": "child", "href": f"{href}/child/{c}", "name": c, "kind": "collection"}
                for c in children
            ]
        return out

    def _page(
        self,
        request: web.Request,
        resource: str,
        rows: list[tuple[str, dict[str, Any]]],
        children: tuple[str, ...],
    ) -> web.Response:
        q = request.query
        if "q" in q:
            conditions = parse_q(q["q"])
            rows = [(k, v) for k, v in rows if _matches(v, conditions)]
        for spec in reversed([s for s in q.get("orderBy", "").split(",") if s.strip()]):
            name, _, direction = spec.strip().partition(":")
            rows.sort(key=_field_key(name), reverse=direction.lower() == "desc")
        try:
            limit = int(q.get("limit", self.config.default_limit))
            offset = int(q.get("offset", 0))
        except ValueError as exc:
            raise FusionError(
                400, [("INVALID_PARAMETER", f"limit and offset must be integers: {exc}")]
            ) from exc
        if limit < 0 or offset < 0:
            raise FusionError(400, [("INVALID_PARAMETER", "limit and offset must not be negative")])
        limit = min(limit, self.config.max_limit)
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {
            "items": [self._present(request, resource, k, v, children) for k, v in page],
            "count": len(page),
            "hasMore": offset + len(page) < len(rows),
            "limit": limit,
            "offset": offset,
        }
        if q.get("totalResults", "false").lower() == "true":
            body["totalResults"] = len(rows)
        body["links"] = [
            {"rel": "self", "href": self._href(request, resource), "name": resource, "kind": "collection"}
        ]
        return self._json(body, content_type=COLLECTION_CT)

    def _list(self, resource: str) -> Callable[[web.Request], Any]:
        children = _CHILDREN[resource]

        async def handler(request: web.Request) -> web.Response:
            docs = self.state.documents[resource]
            return self._page(request, resource, list(docs.items()), children)

        return handler

    def _get_item(self, resource: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            key = request.match_info["key"]
            item = self.state.documents[resource].get(key)
            if item is None:
                raise FusionError(
                    404, [("NOT_FOUND", f"The requested resource {resource}/{key} was not found.")]
                )
            return self._json(self._present(request, resource, key, item, _CHILDREN[resource]))

        return handler

    # -- sales orders (returns) --

    def find_order(self, key: str) -> tuple[str, dict[str, Any]]:
        orders = self.state.documents[ORDERS]
        if key in orders:
            return key, orders[key]
        for header_id, order in orders.items():
            if order["OrderKey"] == key:
                return header_id, order
        raise FusionError(404, [("NOT_FOUND", f"The requested resource {ORDERS}/{key} was not found.")])

    async def _get_order(self, request: web.Request) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        return self._json(self._present(request, ORDERS, key, order, ("lines",)))

    async def _order_lines(self, request: web.Request) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        rows = [(line["linesUniqID"], line) for line in order["lines"]]
        return self._page(request, f"{ORDERS}/{key}/child/lines", rows, ())

    async def _original_reference(self, request: web.Request) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        line = next((ln for ln in order["lines"] if ln["linesUniqID"] == request.match_info["line"]), None)
        if line is None:
            raise FusionError(404, [("NOT_FOUND", "The requested order line was not found.")])
        refs = [(str(i), dict(ref)) for i, ref in enumerate(line.get("_references", []), start=1)]
        return self._page(
            request,
            f"{ORDERS}/{key}/child/lines/{line['linesUniqID']}/child/originalOrderReference",
            rows=refs,
            children=(),
        )

    async def _create_order(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = _Validator(errors)
        system = v.string(body, "SourceTransactionSystem", 30, required=True)
        number = v.string(body, "SourceTransactionNumber", 50, required=True)
        source_id = v.string(body, "SourceTransactionId", 50, required=True)
        v.string(body, "CustomerPONumber", 50)
        v.string(body, "TransactionTypeCode", 30)
        v.string(body, "TransactionalCurrencyCode", 15)
        party_number = v.string(body, "BuyingPartyNumber", 30)
        party_name = v.string(body, "BuyingPartyName", 360)
        bu = v.string(body, "BusinessUnitName", 240)
        if system and system not in self.config.source_systems:
            errors.append(
                ("DOO_INVALID_SOURCE_SYSTEM", f"The source transaction system {system} isn't valid.")
            )
        if bu is None and body.get("BusinessUnitId") is None:
            errors.append(("DOO_MISSING_ATTRIBUTE", "The attribute BusinessUnitName is required."))
        elif bu is not None and bu not in BUSINESS_UNITS:
            errors.append(("DOO_INVALID_BU", f"The business unit {bu} isn't valid."))
        customer = None
        if party_number is not None:
            customer = CUSTOMERS.get(party_number)
            if customer is None:
                errors.append(
                    ("DOO_INVALID_CUSTOMER", f"The buying party number {party_number} isn't valid.")
                )
        elif party_name is not None:
            customer = next((c for c in CUSTOMERS.values() if c["name"] == party_name), None)
            if customer is None:
                errors.append(("DOO_INVALID_CUSTOMER", f"The buying party {party_name} isn't valid."))
        elif not body.get("BuyingPartyNumber") and not body.get("BuyingPartyName"):
            errors.append(("DOO_MISSING_ATTRIBUTE", "The attribute BuyingPartyNumber is required."))
        if system and number:
            for existing in self.state.documents[ORDERS].values():
                if (
                    existing["SourceTransactionSystem"] == system
                    and existing["SourceTransactionNumber"] == number
                ):
                    errors.append(
                        (
                            "DOO_DUPLICATE_SOURCE_ORDER",
                            f"The order with source transaction number {number} from source system {system} already exists.",
                        )
                    )
                    break
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append(("DOO_MISSING_LINES", "The order must have at least one line."))
            raw_lines = []
        lines = [self._order_line(v, i, raw) for i, raw in enumerate(raw_lines, start=1)]
        if errors:
            raise FusionError(400, errors)
        self.counters.headers += 1
        header_id = 300000100000 + self.counters.headers
        ts = self.now()
        order = {
            **{k: v for k, v in body.items() if k != "lines"},
            "HeaderId": header_id,
            "OrderNumber": str(700000 + self.counters.headers),
            "OrderKey": f"{system}:{source_id}",
            "StatusCode": "OPEN" if body.get("SubmittedFlag", True) is not False else "DOO_DRAFT",
            "BuyingPartyId": customer["party_id"] if customer else None,
            "CreationDate": ts,
            "LastUpdateDate": ts,
            "lines": lines,
        }
        for line in lines:
            line["HeaderId"] = header_id
        self.state.put_document(ORDERS, str(header_id), order)
        return self._json(
            self._present(request, ORDERS, str(header_id), order, ("lines",)),
            status=201,
            headers={"Location": self._href(request, f"{ORDERS}/{header_id}")},
        )

    def _order_line(self, v: _Validator, index: int, raw: Any) -> dict[str, Any]:
        where = f"line {index}"
        if not isinstance(raw, dict):
            v.errors.append(("DOO_INVALID_LINE", f"{where}: a line must be an object"))
            return {}
        category = v.string(raw, "TransactionCategoryCode", 30, required=True, where=where)
        if category is not None and category not in ("ORDER", "RETURN"):
            v.errors.append(
                ("DOO_INVALID_CATEGORY", f"{where}: the transaction category {category} isn't valid.")
            )
        for name, size in (
            ("SourceTransactionLineId", 50),
            ("SourceTransactionLineNumber", 50),
            ("SourceTransactionScheduleId", 50),
            ("SourceScheduleNumber", 50),
            ("ReturnReasonCode", 30),
            ("SubinventoryCode", 10),
        ):
            v.string(raw, name, size, where=where)
        sku = v.string(raw, "ProductNumber", 300, required=True, where=where)
        qty = v.decimal(raw, "OrderedQuantity", required=True, positive=True, where=where)
        uom = v.string(raw, "OrderedUOMCode", 3, required=True, where=where)
        if uom is not None and uom not in UOMS:
            v.errors.append(("DOO_INVALID_UOM", f"{where}: the unit of measure {uom} isn't valid."))
        price = v.decimal(raw, "UnitListPrice", where=where)
        line_type = raw.get("TransactionLineTypeCode", LINE_TYPE_CREDIT_AND_RETURN)
        if line_type not in (LINE_TYPE_CREDIT_AND_RETURN, LINE_TYPE_CREDIT_ONLY):
            v.errors.append(("DOO_INVALID_LINE_TYPE", f"{where}: the line type {line_type} isn't valid."))
        item = ITEMS.get(sku) if sku else None
        if sku and item is None:
            v.errors.append(("DOO_INVALID_ITEM", f"{where}: the item {sku} isn't valid."))
        if item is not None and category == "RETURN":
            if not item.returnable:
                v.errors.append(("DOO_ITEM_NOT_RETURNABLE", f"{where}: the item {sku} isn't returnable."))
            org = raw.get("RequestedFulfillmentOrganizationCode")
            if item.shippable and line_type == LINE_TYPE_CREDIT_AND_RETURN and not org:
                v.errors.append(
                    (
                        "DOO_RETURN_LOCATION_REQUIRED",
                        f"{where}: a return line that returns a shippable item needs a return-to location "
                        "(RequestedFulfillmentOrganizationCode).",
                    )
                )
            elif org and org not in ORGANIZATIONS:
                v.errors.append(("DOO_INVALID_ORGANIZATION", f"{where}: the organization {org} isn't valid."))
        references = raw.get("documentReferences") or []
        if not isinstance(references, list):
            v.errors.append(("DOO_INVALID_REFERENCE", f"{where}: documentReferences must be a list"))
            references = []
        for ref in references:
            if not isinstance(ref, dict):
                v.errors.append(("DOO_INVALID_REFERENCE", f"{where}: a document reference must be an object"))
                continue
            kind = ref.get("DocumentReferenceType")
            if kind not in ("ORIGINAL_SALES_ORDER", "ORIGINAL_ORCHESTRATION_ORDER"):
                v.errors.append(
                    ("DOO_INVALID_REFERENCE", f"{where}: the document reference type {kind} isn't valid.")
                )
            if kind == "ORIGINAL_ORCHESTRATION_ORDER" and not ref.get("DocumentSubLineIdentifier"):
                v.errors.append(("DOO_INVALID_REFERENCE", f"{where}: DocumentSubLineIdentifier is required."))
            for name, size in (
                ("DocumentIdentifier", 50),
                ("DocumentNumber", 50),
                ("DocumentLineIdentifier", 150),
                ("DocumentLineNumber", 150),
            ):
                v.string(ref, name, size, where=where)
        if (
            category == "RETURN"
            and self.config.require_return_reference
            and not references
            and raw.get("UnreferencedReturnFlag") != "Y"
        ):
            v.errors.append(
                ("DOO_REFERENCE_REQUIRED", f"{where}: a return line needs an original order reference.")
            )
        self.counters.lines += 1
        line_id = 300000500000 + self.counters.lines
        line = {k: val for k, val in raw.items() if k != "documentReferences"}
        line.update(
            {
                "LineId": line_id,
                "FulfillLineId": line_id,
                "LineNumber": index,
                "linesUniqID": hashlib.sha1(str(line_id).encode()).hexdigest()[:24].upper(),
                "TransactionLineTypeCode": line_type,
                "OrderedQuantity": qty,
                **({"UnitListPrice": price} if price is not None else {}),
                "ReceivedQuantity": Decimal(0),
                "StatusCode": "AWAIT_RECEIVING"
                if line_type == LINE_TYPE_CREDIT_AND_RETURN
                else "AWAIT_BILLING",
                "_references": references,
            }
        )
        return line

    # -- receiving --

    async def _create_receipt(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = _Validator(errors)
        source = v.string(body, "ReceiptSourceCode", 25, required=True)
        if source is not None and source != "CUSTOMER":
            errors.append(
                ("RCV_INVALID_SOURCE", f"Only ReceiptSourceCode CUSTOMER is supported here, not {source}.")
            )
        shipment = v.string(body, "ShipmentNumber", 50)
        header_org = v.string(body, "OrganizationCode", 18)
        if shipment and any(
            r.get("ShipmentNumber") == shipment for r in self.state.documents[RECEIPTS].values()
        ):
            errors.append(("RCV_DUPLICATE_SHIPMENT", f"The shipment number {shipment} already exists."))
        raw_lines = body.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append(("RCV_MISSING_LINES", "The receipt request must have at least one line."))
            raw_lines = []
        plan: list[tuple[dict[str, Any], dict[str, Any], Decimal, str, str | None]] = []
        pending: dict[int, Decimal] = {}
        for i, raw in enumerate(raw_lines, start=1):
            where = f"line {i}"
            if not isinstance(raw, dict):
                errors.append(("RCV_INVALID_LINE", f"{where}: a line must be an object"))
                continue
            doc_code = v.string(raw, "SourceDocumentCode", 25, required=True, where=where)
            if doc_code is not None and doc_code != "RMA":
                errors.append(
                    ("RCV_INVALID_DOCUMENT", f"{where}: SourceDocumentCode must be RMA, not {doc_code}.")
                )
            ttype = v.string(raw, "TransactionType", 25, required=True, where=where)
            if ttype is not None and ttype != "RECEIVE":
                errors.append(("RCV_INVALID_TRANSACTION", f"{where}: TransactionType must be RECEIVE."))
            org = v.string(raw, "OrganizationCode", 18, where=where) or header_org
            if org is None:
                errors.append(
                    ("RCV_MISSING_ORGANIZATION", f"{where}: OrganizationCode or OrganizationId is required.")
                )
            elif org not in ORGANIZATIONS:
                errors.append(("RCV_INVALID_ORGANIZATION", f"{where}: the organization {org} isn't valid."))
            number = v.string(raw, "DocumentNumber", 50, required=True, where=where)
            line_number = v.string(raw, "DocumentLineNumber", 50, required=True, where=where, coerce=True)
            sku = v.string(raw, "ItemNumber", 300, required=True, where=where)
            qty = v.decimal(raw, "Quantity", required=True, positive=True, where=where)
            uom = v.string(raw, "UnitOfMeasure", 25, required=True, where=where)
            auto = raw.get("AutoTransactCode")
            sub = v.string(raw, "Subinventory", 10, where=where)
            if auto == "DELIVER" and not sub:
                errors.append(("RCV_SUBINVENTORY_REQUIRED", f"{where}: Subinventory is required to deliver."))
            elif sub and sub not in SUBINVENTORIES:
                errors.append(("RCV_INVALID_SUBINVENTORY", f"{where}: the subinventory {sub} isn't valid."))
            serials = raw.get("serialItemSerials") or []
            if serials and qty is not None and Decimal(len(serials)) != qty:
                errors.append(
                    ("RCV_SERIAL_COUNT", f"{where}: {len(serials)} serial numbers for quantity {qty}.")
                )
            for s in serials if isinstance(serials, list) else []:
                if isinstance(s, dict):
                    v.string(s, "FromSerialNumber", 80, required=True, where=where)
                    v.string(s, "ToSerialNumber", 80, where=where)
            order = next(
                (o for o in self.state.documents[ORDERS].values() if o["OrderNumber"] == number), None
            )
            if number is not None and order is None:
                errors.append(("RCV_INVALID_RMA", f"{where}: the RMA {number} doesn't exist."))
                continue
            if order is None or line_number is None:
                continue
            line = next((ln for ln in order["lines"] if str(ln["LineNumber"]) == line_number), None)
            if line is None:
                errors.append(
                    ("RCV_INVALID_RMA_LINE", f"{where}: the RMA {number} has no line {line_number}.")
                )
                continue
            if (
                line.get("TransactionCategoryCode") != "RETURN"
                or line["TransactionLineTypeCode"] != LINE_TYPE_CREDIT_AND_RETURN
            ):
                errors.append(
                    ("RCV_LINE_NOT_RECEIVABLE", f"{where}: RMA line {line_number} expects no goods back.")
                )
                continue
            if order["StatusCode"] not in ("OPEN", "PARTIALLY_RECEIVED"):
                errors.append(("RCV_RMA_NOT_OPEN", f"{where}: the RMA {number} is {order['StatusCode']}."))
            if sku and sku != line.get("ProductNumber"):
                errors.append(("RCV_ITEM_MISMATCH", f"{where}: item {sku} isn't on RMA line {line_number}."))
            if uom and uom not in ("Ea", "Each", line.get("OrderedUOMCode")):
                errors.append(("RCV_INVALID_UOM", f"{where}: the unit of measure {uom} isn't valid."))
            if qty is not None:
                already = line["ReceivedQuantity"] + pending.get(line["LineId"], Decimal(0))
                if already + qty > line["OrderedQuantity"]:
                    errors.append(
                        (
                            "RCV_QTY_EXCEEDS_RMA",
                            f"{where}: quantity {qty} exceeds the open RMA quantity {line['OrderedQuantity'] - already}.",
                        )
                    )
                pending[line["LineId"]] = pending.get(line["LineId"], Decimal(0)) + qty
                # Without DELIVER the goods sit in receiving: received on the RMA, not yet on hand.
                plan.append((order, line, qty, org or "", sub if auto == "DELIVER" else None))
        if errors:
            raise FusionError(400, errors)
        self.counters.receipts += 1
        header_interface_id = 300000200000 + self.counters.receipts
        ts = self.now()
        for _order, line, qty, org, sub in plan:
            line["ReceivedQuantity"] += qty
            line["StatusCode"] = (
                "RECEIVED" if line["ReceivedQuantity"] >= line["OrderedQuantity"] else "PARTIALLY_RECEIVED"
            )
            if sub is not None:
                self.adjust_stock(line["ProductNumber"], org, sub, qty)
        for order in {id(o): o for o, _, _, _, _ in plan}.values():
            receivable = [
                ln for ln in order["lines"] if ln["TransactionLineTypeCode"] == LINE_TYPE_CREDIT_AND_RETURN
            ]
            done = all(ln["ReceivedQuantity"] >= ln["OrderedQuantity"] for ln in receivable)
            order["StatusCode"] = "RECEIVED" if done else "PARTIALLY_RECEIVED"
            order["LastUpdateDate"] = self.now()
            self.state.put_document(ORDERS, str(order["HeaderId"]), order)
        lines_out = []
        for i, raw in enumerate(raw_lines, start=1):
            lines_out.append(
                {
                    **raw,
                    "InterfaceTransactionId": header_interface_id * 100 + i,
                    "ProcessingStatusCode": "SUCCESS",
                }
            )
        receipt = {
            **{k: val for k, val in body.items() if k != "lines"},
            "HeaderInterfaceId": header_interface_id,
            "ReceiptNumber": str(9000 + self.counters.receipts),
            "ProcessingStatusCode": "SUCCESS",
            "CreationDate": ts,
            "LastUpdateDate": ts,
            "lines": lines_out,
        }
        self.state.put_document(RECEIPTS, str(header_interface_id), receipt)
        return self._json(
            self._present(request, RECEIPTS, str(header_interface_id), receipt, ("lines",)),
            status=201,
            headers={"Location": self._href(request, f"{RECEIPTS}/{header_interface_id}")},
        )

    # -- AR credit memos --

    async def _memo_lines(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        memo = self.state.documents[CREDIT_MEMOS].get(key)
        if memo is None:
            raise FusionError(
                404, [("NOT_FOUND", f"The requested resource {CREDIT_MEMOS}/{key} was not found.")]
            )
        rows = [(str(ln["CustomerTransactionLineId"]), ln) for ln in memo["receivablesCreditMemoLines"]]
        return self._page(request, f"{CREDIT_MEMOS}/{key}/child/receivablesCreditMemoLines", rows, ())

    async def _create_credit_memo(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = _Validator(errors)
        bu = v.string(body, "BusinessUnit", 240, required=True)
        if bu is not None and bu not in BUSINESS_UNITS:
            errors.append(("AR_INVALID_BU", f"The business unit {bu} isn't valid."))
        source = v.string(body, "TransactionSource", 50, required=True)
        if source is not None and source not in TRANSACTION_SOURCES:
            errors.append(("AR_INVALID_SOURCE", f"The transaction source {source} isn't valid."))
        ttype = v.string(body, "TransactionType", 20, required=True)
        if ttype is not None and ttype not in TRANSACTION_TYPES:
            errors.append(("AR_INVALID_TRX_TYPE", f"The transaction type {ttype} isn't valid."))
        trx_date = v.string(body, "TransactionDate", 10, required=True)
        if trx_date is not None:
            try:
                date.fromisoformat(trx_date)
            except ValueError:
                errors.append(
                    ("AR_INVALID_DATE", f"The transaction date {trx_date} isn't a valid date (YYYY-MM-DD).")
                )
        currency = v.string(body, "CreditMemoCurrency", 15, required=True)
        if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(("AR_INVALID_CURRENCY", f"The currency {currency} isn't valid."))
        v.string(body, "CreditMemoComments", 240)
        reference = v.string(body, "PurchaseOrder", 50)
        customer_number = v.string(body, "BillToCustomerNumber", 30)
        customer_name = v.string(body, "BillToCustomerName", 360)
        if customer_number is not None:
            if customer_number not in CUSTOMERS:
                errors.append(
                    ("AR_INVALID_CUSTOMER", f"The bill-to customer number {customer_number} isn't valid.")
                )
        elif customer_name is not None:
            match = [n for n, c in CUSTOMERS.items() if c["name"] == customer_name]
            if not match:
                errors.append(("AR_INVALID_CUSTOMER", f"The bill-to customer {customer_name} isn't valid."))
            else:
                customer_number = match[0]
        else:
            errors.append(("AR_MISSING_ATTRIBUTE", "The attribute BillToCustomerNumber is required."))
        if reference and source:
            for existing in self.state.documents[CREDIT_MEMOS].values():
                if existing.get("PurchaseOrder") == reference and existing["TransactionSource"] == source:
                    errors.append(
                        (
                            "AR_DUPLICATE_REFERENCE",
                            f"A credit memo with purchase order {reference} already exists.",
                        )
                    )
                    break
        raw_lines = body.get("receivablesCreditMemoLines")
        if not isinstance(raw_lines, list) or not raw_lines:
            errors.append(("AR_MISSING_LINES", "The credit memo must have at least one line."))
            raw_lines = []
        total = Decimal(0)
        lines: list[dict[str, Any]] = []
        seen_numbers: set[str] = set()
        for i, raw in enumerate(raw_lines, start=1):
            where = f"line {i}"
            if not isinstance(raw, dict):
                errors.append(("AR_INVALID_LINE", f"{where}: a line must be an object"))
                continue
            number = raw.get("LineNumber")
            if number is None:
                errors.append(("AR_MISSING_ATTRIBUTE", f"{where}: the attribute LineNumber is required."))
            elif str(number) in seen_numbers:
                errors.append(("AR_DUPLICATE_LINE", f"{where}: the line number {number} is used twice."))
            seen_numbers.add(str(number))
            v.string(raw, "LineDescription", 240, required=True, where=where)
            sku = v.string(raw, "ItemNumber", 300, where=where)
            if sku and sku not in ITEMS:
                errors.append(("AR_INVALID_ITEM", f"{where}: the item {sku} isn't valid."))
            qty = v.decimal(raw, "LineQuantityCredit", required=True, positive=True, where=where)
            price = v.decimal(raw, "UnitSellingPrice", required=True, where=where)
            if price is not None and price >= 0:
                errors.append(
                    (
                        "AR_PRICE_SIGN",
                        f"{where}: the unit selling price of a credit memo line must be negative.",
                    )
                )
            if qty is not None and price is not None:
                amount = (qty * price).quantize(Decimal("0.01"))
                total += amount
                lines.append(
                    {**raw, "LineQuantityCredit": qty, "UnitSellingPrice": price, "LineAmountCredit": amount}
                )
        if errors:
            raise FusionError(400, errors)
        self.counters.memos += 1
        trx_id = 300000300000 + self.counters.memos
        ts = self.now()
        for i, line in enumerate(lines, start=1):
            line["CustomerTransactionLineId"] = trx_id * 100 + i
        memo = {
            **{k: val for k, val in body.items() if k != "receivablesCreditMemoLines"},
            "BillToCustomerNumber": customer_number,
            "CustomerTransactionId": trx_id,
            "TransactionNumber": str(10040 + self.counters.memos),
            "TransactionStatus": "Complete",
            "EnteredAmount": total,
            "CreationDate": ts,
            "LastUpdateDate": ts,
            "receivablesCreditMemoLines": lines,
        }
        assert currency is not None
        self.state.post(
            CREDIT_MEMOS,
            str(trx_id),
            currency,
            [(ACCOUNT_SALES_RETURNS, -total, Decimal(0)), (ACCOUNT_RECEIVABLES, Decimal(0), -total)],
        )
        self.state.put_document(CREDIT_MEMOS, str(trx_id), memo)
        return self._json(
            self._present(request, CREDIT_MEMOS, str(trx_id), memo, ("receivablesCreditMemoLines",)),
            status=201,
            headers={"Location": self._href(request, f"{CREDIT_MEMOS}/{trx_id}")},
        )

    # -- RMA lines open for receiving --

    async def _rma_lines(self, request: web.Request) -> web.Response:
        rows: list[tuple[str, dict[str, Any]]] = []
        for order in self.state.documents[ORDERS].values():
            if order["StatusCode"] not in ("OPEN", "PARTIALLY_RECEIVED"):
                continue
            for line in order["lines"]:
                if (
                    line.get("TransactionCategoryCode") != "RETURN"
                    or line["TransactionLineTypeCode"] != LINE_TYPE_CREDIT_AND_RETURN
                ):
                    continue
                expected = line["OrderedQuantity"] - line["ReceivedQuantity"]
                if expected <= 0:
                    continue
                rows.append(
                    (
                        str(line["LineId"]),
                        {
                            "RMA": order["OrderNumber"],
                            "RMALineNumber": line["LineNumber"],
                            "OrganizationCode": line.get("RequestedFulfillmentOrganizationCode"),
                            "CustomerPartyNumber": order.get("BuyingPartyNumber"),
                            "ItemNumber": line["ProductNumber"],
                            "QuantityExpected": expected,
                            "UOMCode": line.get("OrderedUOMCode"),
                            "SourceTransactionLineId": line.get("SourceTransactionLineId"),
                        },
                    )
                )
        return self._page(request, RMA_LINES, rows, ())

    # -- on-hand --

    def onhand_rows(self) -> list[tuple[str, dict[str, Any]]]:
        rows = []
        for (sku, org_code, sub), qty in sorted(self.state.stock.items()):
            item = ITEMS.get(sku)
            org = ORGANIZATIONS.get(org_code)
            if item is None or org is None:
                continue
            key = f"{org.fusion_id}-{item.inventory_item_id}-{sub}"
            rows.append(
                (
                    key,
                    {
                        "OrganizationId": org.fusion_id,
                        "OrganizationCode": org.code,
                        "InventoryItemId": item.inventory_item_id,
                        "ItemNumber": sku,
                        "SubinventoryCode": sub,
                        "Locator": None,
                        "LotNumber": None,
                        "PrimaryUOMCode": item.uom,
                        "PrimaryTransactionQuantity": qty,
                        "ReservedQuantity": Decimal(0),
                        "AvailableToTransact": qty,
                        "LastUpdateDate": self.stock_updated.get((sku, org_code, sub), ""),
                    },
                )
            )
        return rows

    async def _onhand(self, request: web.Request) -> web.Response:
        return self._page(request, ONHAND, self.onhand_rows(), ())


_CHILDREN: dict[str, tuple[str, ...]] = {
    ORDERS: ("lines",),
    RECEIPTS: ("lines",),
    CREDIT_MEMOS: ("receivablesCreditMemoLines",),
}


def _field_key(name: str) -> Callable[[tuple[str, dict[str, Any]]], tuple[int, Any]]:
    return lambda row: _sort_key(row[1].get(name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return (1, Decimal(value))
    return (2, str(value))


class _Validator:
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
        if not number.is_finite():
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


SIMULATOR_KEY: web.AppKey[OracleSimulator] = web.AppKey("oracle_simulator", OracleSimulator)


def create_app(config: OracleSimConfig | None = None) -> tuple[web.Application, SimulatorKit]:
    """The Fusion simulator app and its kit (state, faults) on embedded seed data.

    The ``OracleSimulator`` itself (needed by the EBS stand-in to share state) is ``app[SIMULATOR_KEY]``.
    """
    sim = OracleSimulator(config or OracleSimConfig())
    sim.app[SIMULATOR_KEY] = sim
    return sim.app, sim.kit


def seed_summary() -> dict[str, Iterable[str]]:
    """Seed master data names, for docs and the CLI's `serve` banner."""
    return {
        "business_units": list(BUSINESS_UNITS),
        "customers": list(CUSTOMERS),
        "items": list(ITEMS),
        "organizations": list(ORGANIZATIONS),
        "subinventories": list(SUBINVENTORIES),
    }
