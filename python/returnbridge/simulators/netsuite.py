"""NetSuite SuiteTalk REST simulator: record API, transforms, SuiteQL, TBA/OAuth 2.0, account concurrency limit."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from returnbridge import exactjson
from returnbridge.simulators.faults import CONTROL_PREFIX
from returnbridge.simulators.kit import SimulatorKit, parse_json_body, plain_int
from returnbridge.simulators.netsuite_actions import INVENTORY_TYPES, InventoryActions, refusal
from returnbridge.simulators.netsuite_auth import AuthFailure, OAuth2Client, OAuth2Issuer, TbaVerifier

# Re-exported: callers configure the simulator through this module.
from returnbridge.simulators.netsuite_config import NetSuiteSimulatorConfig as NetSuiteSimulatorConfig
from returnbridge.simulators.netsuite_config import OAuth2ClientConfig as OAuth2ClientConfig
from returnbridge.simulators.netsuite_config import TbaToken as TbaToken
from returnbridge.simulators.netsuite_data import (
    RECORD,
    STANDALONE,
    TRANSFORMS,
    TYPE_CODES,
    NetSuiteError,
    json_response,
    seed_reference_data,
    status_ref,
    user_error,
    utc_now,
)
from returnbridge.simulators.netsuite_records import RecordBook
from returnbridge.simulators.netsuite_suiteql import (
    SuiteQL,
    SuiteQLError,
    by_column,
    parse_suiteql,
    text,
)
from returnbridge.simulators.sim_actions import action_routes

REST = "/services/rest"
SUITEQL = REST + "/query/v1/suiteql"
TOKEN = REST + "/auth/oauth2/v1/token"
NS_CONTROL = CONTROL_PREFIX + "netsuite/"


# -- reference data -------------------------------------------------------------------------------


# -- the simulator --------------------------------------------------------------------------------


class NetSuiteSimulator(RecordBook, InventoryActions):
    """The simulated NetSuite account; ``app`` is the aiohttp application, ``kit`` the shared kit."""

    def __init__(
        self, config: NetSuiteSimulatorConfig | None = None, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.config = config or NetSuiteSimulatorConfig()
        self.clock = clock
        self.kit = _NetSuiteKit(self)
        self.login_audit: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.concurrency_refusals = 0
        self._reset_data()
        self.app = self.kit.make_app(self._routes())
        self.app[SIMULATOR_KEY] = self
        # Outermost: the account limit counts every request the account serves, slow ones included.
        self.app.middlewares.insert(0, self._concurrency)
        self.app.middlewares.append(self._authenticate)

    # -- state ------------------------------------------------------------------------------------

    def _reset_data(self) -> None:
        cfg = self.config
        self.tba = TbaVerifier(
            realm=cfg.resolved_realm(),
            consumers=dict(cfg.consumers),
            tokens={t: (g.consumer_key, g.secret) for t, g in cfg.tokens.items()},
            max_age=cfg.timestamp_max_age,
            backward_tolerance=cfg.timestamp_backward_tolerance,
        )
        self.oauth2 = OAuth2Issuer(
            [OAuth2Client(c.client_id, c.certificate_id, c.public_key_pem) for c in cfg.oauth2_clients],
            account_id=cfg.account_id,
            lifetime=cfg.access_token_lifetime,
        )
        self.ref = seed_reference_data()
        self.modified: dict[tuple[str, str], datetime] = {}
        self.serials: dict[str, dict[str, str]] = {}
        self._tran_numbers: dict[str, int] = {}
        self.by_external_id: dict[str, set[tuple[str, str]]] = {}
        if cfg.seed:
            self._seed()

    # -- middlewares ------------------------------------------------------------------------------

    @web.middleware
    async def _concurrency(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = self.config.concurrency_limit
        if request.path.startswith(CONTROL_PREFIX) or not limit:
            return await handler(request)
        if self.in_flight >= limit:
            self.concurrency_refusals += 1
            cfg = self.config
            headers = (
                {"Retry-After": str(cfg.concurrency_retry_after)}
                if cfg.concurrency_retry_after is not None
                else {}
            )
            return NetSuiteError(
                cfg.concurrency_status,
                cfg.concurrency_error_code,
                "Concurrent request limit exceeded. Request blocked.",
                headers=headers,
            ).response()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.path.startswith(CONTROL_PREFIX)
            or request.path == TOKEN
            or not request.path.startswith(REST)
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        try:
            if header.startswith("Bearer "):
                principal = "oauth2:" + self.oauth2.verify_bearer(header[len("Bearer ") :].strip())
            elif header.startswith("OAuth "):
                form: list[tuple[str, str]] = []
                if request.content_type == "application/x-www-form-urlencoded":
                    try:
                        raw_form = (await request.read()).decode("utf-8")
                    except UnicodeDecodeError:
                        raise AuthFailure("form body is not UTF-8: cannot be signed") from None
                    form = urllib.parse.parse_qsl(raw_form, keep_blank_values=True)
                raw_path, _, raw_query = request.raw_path.partition("?")
                principal = "tba:" + self.tba.verify(
                    method=request.method,
                    scheme=request.url.scheme,
                    host=request.url.host or "",
                    port=request.url.port,
                    raw_path=raw_path,
                    query=urllib.parse.parse_qsl(raw_query, keep_blank_values=True),
                    authorization=header,
                    form=form,
                )
            else:
                raise AuthFailure("no Authorization header")
        except AuthFailure as exc:
            self.login_audit.append({"path": request.path, "status": "Failure", "detail": exc.reason})
            return NetSuiteError(
                401,
                "INVALID_LOGIN",
                "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
                "Users/Roles > User Management > View Login Audit Trail.",
            ).response()
        self.login_audit.append({"path": request.path, "status": "Success", "detail": principal})
        try:
            return await handler(request)
        except NetSuiteError as exc:
            return exc.response()
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            # An unknown path or method answers in NetSuite's error shape, not aiohttp's text page.
            what = "resource" if exc.status == 404 else f"method {request.method} for the resource"
            return NetSuiteError(exc.status, "INVALID_REQUEST", f"Unknown {what} {request.path}.").response()

    # -- routes -----------------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.post(TOKEN, self._token),
            web.post(SUITEQL, self._suiteql),
            web.post(RECORD + "/{type}", self._post_record),
            web.get(RECORD + "/{type}/{id}", self._get_record),
            web.get(RECORD + "/{type}/{id}/item", self._get_sublist),
            web.get(RECORD + "/{type}/{id}/item/{line}", self._get_line),
            web.put(RECORD + "/{type}/{id}", self._put_record),
            web.patch(RECORD + "/{type}/{id}", self._patch_record),
            web.post(RECORD + "/{type}/{id}/!transform/{to}", self._transform),
            web.post(RECORD + "/{type}/{id}/@approve", self._approve),
            web.get(NS_CONTROL + "login-audit", self._login_audit),
            web.post(NS_CONTROL + "expire-tokens", self._expire_tokens),
            web.get(NS_CONTROL + "account", self._account),
            *action_routes(self.ui_handlers(), refusal),
        ]

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return json_response(
                {"error": "invalid_request", "error_description": "form-encoded body required"}, status=400
            )
        try:
            text = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            return json_response(
                {"error": "invalid_request", "error_description": "form body is not valid UTF-8"}, status=400
            )
        form = {k: v for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True)}
        token_url = f"{request.url.scheme}://{request.url.host}{_port_suffix(request)}{TOKEN}"
        try:
            return json_response(self.oauth2.issue(form, token_url))
        except AuthFailure as exc:
            error, _, description = exc.reason.partition(": ")
            self.login_audit.append({"path": request.path, "status": "Failure", "detail": exc.reason})
            status = 401 if error == "invalid_client" else 400
            return json_response({"error": error, "error_description": description}, status=status)

    async def _login_audit(self, request: web.Request) -> web.Response:
        return json_response({"items": self.login_audit})

    async def _expire_tokens(self, request: web.Request) -> web.Response:
        return json_response({"expired": self.oauth2.expire_all()})

    async def _account(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "concurrency_refusals": self.concurrency_refusals,
                "tokens_issued": self.oauth2.issued,
            }
        )

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        if request.content_type != "application/json":
            raise NetSuiteError(
                415,
                "INVALID_CONTENT_TYPE",
                f"Invalid content type {request.content_type or '(none)'}: use application/json.",
            )
        try:
            body = parse_json_body(raw, parse_float=Decimal)
        except exactjson.JsonError as exc:
            raise user_error(f"Invalid JSON in request body: {exc}") from None
        if not isinstance(body, dict):
            raise user_error("The request body must be a JSON object.")
        return body

    def _record_type(self, request: web.Request, *, inventory: bool = False) -> str:
        record_type = request.match_info["type"]
        if record_type not in TYPE_CODES and not (inventory and record_type in INVENTORY_TYPES):
            raise NetSuiteError(
                404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist or is not supported."
            )
        return record_type

    def _lookup(self, record_type: str, key: str) -> dict[str, Any]:
        if key.startswith("eid:"):
            record = self.find_by_external_id(record_type, key[4:])
        else:
            record = self.documents(record_type).get(key)
        if record is None:
            raise NetSuiteError(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        return record

    async def _get_record(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request, inventory=True)
        record = self._lookup(record_type, request.match_info["id"])
        if record_type in INVENTORY_TYPES:
            return json_response(self.render_inventory_record(record))
        expand = request.query.get("expandSubResources", "false").lower() == "true"
        return json_response(self.render(record_type, record, base=_base(request), expand=expand))

    async def _post_record(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request, inventory=True)
        if record_type in INVENTORY_TYPES:
            body = await self._body(request)
            self._refuse_duplicate(record_type, body.get("externalId"), None)
            record_id = self.create_inventory_record(record_type, body, self._validation(request))
            return _created(request, record_type, record_id)
        body = await self._record_body(request)
        if record_type not in STANDALONE:
            raise user_error(f"A {record_type} can only be created by transforming its source transaction.")
        self._refuse_duplicate(record_type, body.get("externalId"), None)
        record_id = self._create(record_type, body, source=None)
        return _created(request, record_type, record_id)

    async def _put_record(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request)
        key = request.match_info["id"]
        if not key.startswith("eid:") or len(key) == 4:
            raise NetSuiteError(
                405, "INVALID_REQUEST", "PUT is only supported with an external id (eid:<externalId>)."
            )
        body = await self._record_body(request)
        body["externalId"] = key[4:]
        existing = self.find_by_external_id(record_type, key[4:])
        if existing is not None:
            self._update(record_type, existing, body, replace_lines=_replaces_lines(request))
            return _created(request, record_type, existing["id"])
        if record_type not in STANDALONE:
            raise user_error(f"A {record_type} can only be created by transforming its source transaction.")
        return _created(request, record_type, self._create(record_type, body, source=None))

    async def _patch_record(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request)
        record = self._lookup(record_type, request.match_info["id"])
        body = await self._record_body(request)
        self._refuse_duplicate(record_type, body.get("externalId"), record)
        self._update(record_type, record, body, replace_lines=_replaces_lines(request))
        return web.Response(status=204)

    async def _transform(self, request: web.Request) -> web.Response:
        source_type = request.match_info["type"]
        target = request.match_info["to"]
        if (source_type, target) not in TRANSFORMS:
            raise user_error(f"Transformation from {source_type} to {target} is not supported.")
        if source_type not in TYPE_CODES:
            raise NetSuiteError(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        source = self._lookup(source_type, request.match_info["id"])
        body = await self._record_body(request)
        self._refuse_duplicate(target, body.get("externalId"), None)
        record_id = self._create(target, body, source=(source_type, source))
        return _created(request, target, record_id)

    async def _record_body(self, request: web.Request) -> dict[str, Any]:
        """A record body, its field names checked under the request's property name validation."""
        body = await self._body(request)
        self.check_fields(body, self._validation(request))
        return body

    def _validation(self, request: web.Request) -> str:
        validation = request.headers.get(
            "X-NetSuite-PropertyNameValidation", self.config.property_name_validation
        )
        if validation not in ("Error", "Warning", "Ignore"):
            raise NetSuiteError(
                400,
                "INVALID_HEADER",
                f"Invalid value {validation!r} for X-NetSuite-PropertyNameValidation: use Error, Warning or Ignore.",
            )
        return validation

    def _refuse_duplicate(self, record_type: str, external_id: Any, record: dict[str, Any] | None) -> None:
        """Under the "refuse" policy, no second record of the type may hold an externalId."""
        if self.config.duplicates != "refuse" or not isinstance(external_id, str):
            return
        existing = self.find_by_external_id(record_type, external_id)
        if existing is not None and existing is not record:
            raise self._duplicate(external_id)

    async def _get_sublist(self, request: web.Request) -> web.Response:
        """The item sublist a record links to: one entry per line, each linking to the line."""
        record_type = self._record_type(request)
        record = self._lookup(record_type, request.match_info["id"])
        href = f"{_base(request)}{RECORD}/{record_type}/{record['id']}/item"
        lines = record.get("item") or []
        # Each line by its number: numbers stay when a PATCH with ?replace=item removes lines.
        items = [{"links": [{"rel": "self", "href": f"{href}/{line['line']}"}]} for line in lines]
        return json_response(
            {
                "links": [{"rel": "self", "href": href}],
                "count": len(items),
                "hasMore": False,
                "items": items,
                "offset": 0,
                "totalResults": len(items),
            }
        )

    async def _get_line(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request)
        record = self._lookup(record_type, request.match_info["id"])
        lines = record.get("item") or []
        raw = request.match_info["line"]
        number = plain_int(raw)
        line = next((ln for ln in lines if ln.get("line") == number), None) if number is not None else None
        if line is None:
            raise NetSuiteError(404, "NONEXISTENT_ID", f"The record has no line {raw}.")
        href = f"{_base(request)}{RECORD}/{record_type}/{record['id']}/item/{raw}"
        return json_response({"links": [{"rel": "self", "href": href}], **self._render_refs(line)})

    async def _approve(self, request: web.Request) -> web.Response:
        record_type = self._record_type(request)
        record = self._lookup(record_type, request.match_info["id"])
        if record_type != "returnAuthorization" or record["status"]["id"] != "A":
            raise user_error("Only a return authorization pending approval can be approved.")
        record["status"] = status_ref("returnAuthorization", "B")
        self._store(record_type, record["id"], record)
        return web.Response(status=204)

    # -- record logic -----------------------------------------------------------------------------

    # -- rendering --------------------------------------------------------------------------------

    # -- SuiteQL ----------------------------------------------------------------------------------

    async def _suiteql(self, request: web.Request) -> web.Response:
        if (
            self.config.require_prefer_transient
            and "transient" not in request.headers.get("Prefer", "").lower()
        ):
            raise NetSuiteError(400, "INVALID_REQUEST", "SuiteQL requests need the header Prefer: transient.")
        limit = _int_param(request, "limit", 1000)
        offset = _int_param(request, "offset", 0)
        if not 1 <= limit <= self.config.suiteql_max_limit:
            raise NetSuiteError(
                400,
                "INVALID_PARAMETER",
                f"Invalid limit {limit}: use 1..{self.config.suiteql_max_limit}.",
                "limit",
            )
        if offset < 0:
            raise NetSuiteError(400, "INVALID_PARAMETER", "Invalid offset.", "offset")
        body = await self._body(request)
        query = body.get("q")
        if not isinstance(query, str) or not query.strip():
            raise NetSuiteError(
                400, "INVALID_PARAMETER", 'The request body must be {"q": "<SuiteQL query>"}.'
            )
        try:
            rows = self._run_query(parse_suiteql(query))
        except SuiteQLError as exc:
            raise NetSuiteError(400, "INVALID_PARAMETER", str(exc)) from None
        page = rows[offset : offset + limit]
        has_more = offset + limit < len(rows)
        url = f"{_base(request)}{SUITEQL}"
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        if has_more:
            links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        items = [{"links": [], **row} for row in page]
        return json_response(
            {
                "links": links,
                "count": len(page),
                "hasMore": has_more,
                "items": items,
                "offset": offset,
                "totalResults": len(rows),
            }
        )

    def _run_query(self, query: SuiteQL) -> list[dict[str, str]]:
        if query.table == "transaction":
            wanted = next(
                (c.values[0] for c in query.where if c.column == "externalid" and c.op == "="), None
            )
            if wanted is not None:
                # Lookups by external id (one per create) use the index; a scan would be quadratic over a run.
                sources = [
                    (t, record)
                    for t, record_id in sorted(self.by_external_id.get(str(wanted), ()))
                    if t in TYPE_CODES and (record := self.documents(t).get(record_id)) is not None
                ]
            else:
                sources = [(t, r) for t in TYPE_CODES for r in self.documents(t).values()]
            candidates: list[Callable[[str], Any]] = [self._transaction_column(t, r) for t, r in sources]
        else:
            candidates = [
                self._stock_column(item, loc)
                for item in self.ref.items.values()
                for loc in self.ref.locations
            ]
        selected = [col for col in candidates if all(cond.matches(col) for cond in query.where)]
        for column in reversed(query.order_by):
            selected.sort(key=by_column(column))
        return [{alias: text(expr.evaluate(col)) for alias, expr in query.select} for col in selected]


# -- helpers --------------------------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = plain_int(raw)
    if value is None:
        raise NetSuiteError(400, "INVALID_PARAMETER", f"Invalid value for query parameter {name}.", name)
    return value


def _port_suffix(request: web.Request) -> str:
    port = request.url.port
    default = 443 if request.url.scheme == "https" else 80
    return f":{port}" if port and port != default else ""


def _replaces_lines(request: web.Request) -> bool:
    """``?replace=item`` (a comma-separated list of sublists): the item lines given are the whole sublist."""
    return "item" in request.query.get("replace", "").split(",")


def _base(request: web.Request) -> str:
    return f"{request.url.scheme}://{request.url.host}{_port_suffix(request)}"


def _created(request: web.Request, record_type: str, record_id: str) -> web.Response:
    return web.Response(
        status=204, headers={"Location": f"{_base(request)}{RECORD}/{record_type}/{record_id}"}
    )


SIMULATOR_KEY = web.AppKey("netsuite_simulator", NetSuiteSimulator)


class _NetSuiteKit(SimulatorKit):
    """The kit, re-seeding NetSuite's reference data and stock on ``POST /_sim/reset``."""

    def __init__(self, simulator: NetSuiteSimulator) -> None:
        super().__init__("netsuite")
        self._simulator = simulator

    def reset(self) -> None:
        super().reset()
        self._simulator._reset_data()


def create_app(config: NetSuiteSimulatorConfig | None = None) -> tuple[web.Application, SimulatorKit]:
    """The simulator as an aiohttp app plus its kit (``returnbridge serve`` runs it on embedded defaults)."""
    simulator = NetSuiteSimulator(config)
    return simulator.app, simulator.kit


def embedded_connector_config(base_url: str, config: NetSuiteSimulatorConfig | None = None) -> dict[str, Any]:
    """The ``kind: netsuite`` connector section that talks to a running simulator (TBA, first token).

    For ``returnbridge serve`` embedded defaults: the lead passes it to ``parse_connector_config``.
    """
    cfg = config or NetSuiteSimulatorConfig()
    token_id, grant = next(iter(cfg.tokens.items()))
    return {
        "kind": "netsuite",
        "account_id": cfg.account_id,
        "realm": cfg.resolved_realm(),
        "base_url": base_url,
        "max_concurrency": max(1, cfg.concurrency_limit) if cfg.concurrency_limit else 5,
        "auth": {
            "method": "tba",
            "consumer_key": grant.consumer_key,
            "consumer_secret": cfg.consumers[grant.consumer_key],
            "token_id": token_id,
            "token_secret": grant.secret,
        },
    }
