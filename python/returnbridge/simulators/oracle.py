"""Oracle Fusion Cloud REST simulator: order hub returns, RMA receiving, AR credit memos, on-hand stock.

The REST framework (versions, q, paging, error shapes, schemas) is in ``oracle_rest``; master data in
``oracle_data``; receiving and receivables in their own modules, mixed into ``OracleSimulator`` here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler

from returnbridge.simulators.faults import CONTROL_PREFIX
from returnbridge.simulators.kit import SimulatorKit, parse_json_body
from returnbridge.simulators.oracle_actions import STAGED, STAGED_TRANSACTION, InventoryTransactions, refusal
from returnbridge.simulators.oracle_data import (
    BUSINESS_UNITS,
    CUSTOMERS,
    ITEMS,
    LINE_TYPE_CREDIT_AND_RETURN,
    LINE_TYPE_CREDIT_ONLY,
    ORGANIZATIONS,
    SUBINVENTORIES,
    UOMS,
    Validator,
    seed_summary,
)
from returnbridge.simulators.oracle_receivables import Receivables
from returnbridge.simulators.oracle_receiving import RMA_LINES, Receiving
from returnbridge.simulators.oracle_rest import (
    ACCEPTED_CT,
    API_ROOT,
    CREDIT_MEMO_HEADER,
    CREDIT_MEMO_LINE,
    DOCUMENT_REFERENCE,
    FRAMEWORK_HEADER,
    ORDER_HEADER,
    ORDER_LINE,
    RECEIPT_HEADER,
    FusionError,
    OracleSimConfig,
    Rest,
    Schema,
    check_attributes,
    check_children,
    error_response,
    framework_version,
    parse_q,
)
from returnbridge.simulators.sim_actions import action_routes

ORDERS = "salesOrdersForOrderHub"
RECEIPTS = "receivingReceiptRequests"
CREDIT_MEMOS = "receivablesCreditMemos"
ONHAND = "onhandQuantityDetails"

Handler = Callable[[web.Request, Rest], Awaitable[web.StreamResponse]]
_CHILDREN: dict[str, tuple[str, ...]] = {
    ORDERS: ("lines",),
    RECEIPTS: ("lines",),
    CREDIT_MEMOS: ("receivablesCreditMemoLines",),
    STAGED: (),
}
ONHAND_ATTRIBUTES = frozenset(
    {
        "OrganizationId", "OrganizationCode", "InventoryItemId", "ItemNumber", "SubinventoryCode", "Locator",
        "LotNumber", "PrimaryUOMCode", "PrimaryTransactionQuantity", "ReservedQuantity", "AvailableToTransact",
        "LastUpdateDate",
    }
)  # fmt: skip
_QUERYABLE: dict[str, frozenset[str]] = {
    ORDERS: ORDER_HEADER.attributes,
    RECEIPTS: RECEIPT_HEADER.attributes,
    CREDIT_MEMOS: CREDIT_MEMO_HEADER.attributes,
    STAGED: STAGED_TRANSACTION.attributes,
    "lines": ORDER_LINE.attributes,
    "receivablesCreditMemoLines": CREDIT_MEMO_LINE.attributes,
}


@dataclass
class _Counters:
    headers: int = 0
    receipts: int = 0
    memos: int = 0
    lines: int = 0


@dataclass
class OracleSimulator(Receiving, Receivables, InventoryTransactions):
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
        self.app.middlewares.append(self._unknown_resources)

    @property
    def state(self) -> Any:  # type: ignore[override]
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
            web.post(f"{r}/{STAGED}", self._guard(self._create_staged_transaction)),
            web.get(f"{r}/{STAGED}", self._guard(self._list(STAGED))),
            web.get(f"{r}/{STAGED}/{{key}}", self._guard(self._get_item(STAGED))),
            *action_routes(self.ui_handlers(), refusal),
            web.get(f"{r}/{RMA_LINES}", self._guard(self._rma_lines)),
        ]

    def _guard(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Auth, framework version and error rendering around every Fusion handler."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            if not self._authorized(request.headers.get("Authorization", "")):
                return web.Response(status=401, text="", headers={"WWW-Authenticate": 'Basic realm="fusion"'})
            version = self.config.default_framework_version
            try:
                version = framework_version(request, self.config)
                response = await handler(request, Rest(request, self.config, version))
            except FusionError as exc:
                response = error_response(exc, version, self.config)
            response.headers[FRAMEWORK_HEADER] = str(version)
            return response

        return wrapped

    @web.middleware
    async def _unknown_resources(self, request: web.Request, handler: NextHandler) -> web.StreamResponse:
        """An unknown resource or method answers like Fusion does, not with aiohttp's own text page."""
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            if request.path.startswith(CONTROL_PREFIX):
                raise
            status = exc.status
            detail = (
                f"The requested resource {request.path} was not found."
                if status == 404
                else f"The method {request.method} isn't allowed on {request.path}."
            )
            try:
                version = framework_version(request, self.config)
            except FusionError:
                version = self.config.default_framework_version
            code = "NOT_FOUND" if status == 404 else "METHOD_NOT_ALLOWED"
            response = error_response(FusionError(status, [(code, detail)]), version, self.config)
            if status == 405:
                response.headers["Allow"] = exc.headers.get("Allow", "")
            return response

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except ValueError:  # not base64 (non-ASCII included) or not UTF-8
                return False
            return user == self.config.username and password == self.config.password
        if scheme.lower() == "bearer":
            return value.strip() in self.config.bearer_tokens
        return False

    # -- generic collection plumbing --

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type not in ACCEPTED_CT:
            raise FusionError(
                415, [("UNSUPPORTED_MEDIA_TYPE", f"Unsupported media type {request.content_type}")]
            )
        try:
            body = parse_json_body(await request.text(), parse_float=Decimal)
        except (ValueError, LookupError) as exc:  # bad JSON, bytes not in the charset, unknown charset
            raise FusionError(400, [("INVALID_JSON", f"The request body is not valid JSON: {exc}")]) from exc
        if not isinstance(body, dict):
            raise FusionError(400, [("INVALID_JSON", "The request body must be a JSON object")])
        return body

    def _list(self, resource: str) -> Handler:
        children = _CHILDREN[resource]

        async def handler(request: web.Request, rest: Rest) -> web.StreamResponse:
            docs = self.state.documents[resource]
            return rest.page(resource, list(docs.items()), children, _QUERYABLE[resource])

        return handler

    def _get_item(self, resource: str) -> Handler:
        async def handler(request: web.Request, rest: Rest) -> web.StreamResponse:
            key = request.match_info["key"]
            item = self.state.documents[resource].get(key)
            if item is None:
                raise FusionError(
                    404, [("NOT_FOUND", f"The requested resource {resource}/{key} was not found.")]
                )
            return rest.json(rest.present(resource, key, item, _CHILDREN[resource]))

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

    async def _get_order(self, request: web.Request, rest: Rest) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        return rest.json(rest.present(ORDERS, key, order, ("lines",)))

    async def _order_lines(self, request: web.Request, rest: Rest) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        rows = [(line["linesUniqID"], line) for line in order["lines"]]
        return rest.page(f"{ORDERS}/{key}/child/lines", rows, (), ORDER_LINE.attributes)

    async def _original_reference(self, request: web.Request, rest: Rest) -> web.Response:
        key, order = self.find_order(request.match_info["key"])
        line = next((ln for ln in order["lines"] if ln["linesUniqID"] == request.match_info["line"]), None)
        if line is None:
            raise FusionError(404, [("NOT_FOUND", "The requested order line was not found.")])
        refs = [(str(i), dict(ref)) for i, ref in enumerate(line.get("_references", []), start=1)]
        return rest.page(
            f"{ORDERS}/{key}/child/lines/{line['linesUniqID']}/child/originalOrderReference",
            rows=refs,
            children=(),
            attributes=DOCUMENT_REFERENCE.attributes,
        )

    async def _create_order(self, request: web.Request, rest: Rest) -> web.Response:
        body = await self._body(request)
        errors: list[tuple[str, str]] = []
        v = Validator(errors)
        check_attributes(body, ORDER_HEADER, "", errors)
        system = v.string(body, "SourceTransactionSystem", 30, required=True)
        number = v.string(body, "SourceTransactionNumber", 50, required=True)
        source_id = v.string(body, "SourceTransactionId", 50, required=True)
        v.string(body, "CustomerPONumber", 50)
        v.string(body, "TransactionTypeCode", 30)
        v.string(body, "TransactionalCurrencyCode", 15)
        party_number = v.string(body, "BuyingPartyNumber", 30)
        party_name = v.string(body, "BuyingPartyName", 360)
        bu = v.string(body, "BusinessUnitName", 240)
        for name in ("TransactionOn", "RequestedShipDate"):
            stamp = v.string(body, name, 40)
            if stamp is not None and not _is_timestamp(stamp):
                errors.append(
                    ("ADF_INVALID_DATE", f"The value {stamp} of the attribute {name} isn't a valid date.")
                )
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
        if system and number and self.config.duplicates == "refuse":
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
        return rest.json(
            rest.present(ORDERS, str(header_id), order, ("lines",)),
            status=201,
            headers={"Location": rest.href(f"{ORDERS}/{header_id}")},
        )

    def _order_line(self, v: Validator, index: int, raw: Any) -> dict[str, Any]:
        where = f"line {index}"
        if not isinstance(raw, dict):
            v.errors.append(("DOO_INVALID_LINE", f"{where}: a line must be an object"))
            return {}
        check_attributes(raw, ORDER_LINE, where, v.errors)
        self._additional_information(raw, where, v.errors)
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
            org = v.string(raw, "RequestedFulfillmentOrganizationCode", 18, where=where)
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
        references = check_children(raw, "documentReferences", DOCUMENT_REFERENCE, where, v.errors)
        for ref in references:
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

    def _additional_information(
        self, line: dict[str, Any], where: str, errors: list[tuple[str, str]]
    ) -> None:
        """Order line flexfields: only the contexts and attributes configured in this pod are accepted."""
        contexts = self.config.eff_contexts
        for index, row in enumerate(line.get("additionalInformation") or [], start=1):
            if not isinstance(row, dict):
                errors.append(
                    ("ADF_INVALID_CHILD", f"{where}: additionalInformation {index} must be an object")
                )
                continue
            for name, value in row.items():
                if name == "Category":
                    continue
                if name not in contexts:
                    errors.append(
                        ("ADF_UNKNOWN_ATTRIBUTE", f"{where}: the flexfield context {name} isn't defined.")
                    )
                    continue
                for context in value if isinstance(value, list) else [value]:
                    if not isinstance(context, dict):
                        errors.append(("ADF_INVALID_CHILD", f"{where}: {name} must hold objects"))
                        continue
                    unknown = sorted(set(context) - set(contexts[name]))
                    if unknown:
                        errors.append(
                            (
                                "ADF_UNKNOWN_ATTRIBUTE",
                                f"{where}: {name} has no attribute {', '.join(unknown)}.",
                            )
                        )

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

    async def _onhand(self, request: web.Request, rest: Rest) -> web.Response:
        return rest.page(ONHAND, self.onhand_rows(), (), ONHAND_ATTRIBUTES)


def _is_timestamp(text: str) -> bool:
    """A date or date-time as Fusion accepts it (ISO 8601); ``2026-13-45`` is refused."""
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


SIMULATOR_KEY: web.AppKey[OracleSimulator] = web.AppKey("oracle_simulator", OracleSimulator)


def create_app(config: OracleSimConfig | None = None) -> tuple[web.Application, SimulatorKit]:
    """The Fusion simulator app and its kit (state, faults) on embedded seed data.

    The ``OracleSimulator`` itself (needed by the EBS stand-in to share state) is ``app[SIMULATOR_KEY]``.
    """
    sim = OracleSimulator(config or OracleSimConfig())
    sim.app[SIMULATOR_KEY] = sim
    return sim.app, sim.kit


__all__ = [
    "API_ROOT",
    "BUSINESS_UNITS",
    "CUSTOMERS",
    "ITEMS",
    "ORGANIZATIONS",
    "SIMULATOR_KEY",
    "SUBINVENTORIES",
    "UOMS",
    "FusionError",
    "OracleSimConfig",
    "OracleSimulator",
    "Schema",
    "create_app",
    "parse_q",
    "seed_summary",
]
