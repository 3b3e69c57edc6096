"""SAP S/4HANA simulator: the OData v2 A2X services for returns, deliveries, credit memo requests and stock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from returnbridge import exactjson
from returnbridge.simulators.kit import SimulatorKit, parse_json_body, plain_int
from returnbridge.simulators.sap_actions import SapUiActions, refusal
from returnbridge.simulators.sap_backend import (
    CMR,
    CR,
    CUSTOMERS,
    DLV,
    MATERIALS,
    PLANTS,
    ODataError,
    PreparedReturn,
    SapBackend,
    SapSimulatorConfig,
    fmt_qty,
)
from returnbridge.simulators.sap_metadata import (
    DATETIME,
    DATETIMEOFFSET,
    DECIMAL,
    INT64,
    SERVICES,
    EntityType,
    Service,
    edmx,
)
from returnbridge.simulators.sap_metadata_mm import BILLING, MATDOC, MATDOC_ITEM, MM_SERVICES
from returnbridge.simulators.sap_odata_query import (
    QueryError,
    parse_filter,
    parse_literal_datetime,
    parse_orderby,
    sort_key,
)
from returnbridge.simulators.sim_actions import ActionHandler, action_routes

ODATA_ROOT = "/sap/opu/odata/sap/"
SESSION_COOKIE = "SAP_SESSIONID_S4H_100"

# Every service the simulator answers: sales documents, stock, material and billing documents.
_SERVICES: dict[str, Service] = {**SERVICES, **MM_SERVICES}
# Entity sets a client changes (PATCH/MERGE/PUT): their entities carry an ETag a change must name.
ETAG_SETS = frozenset({"A_ReturnsDeliveryHeader", "A_ReturnsDeliveryItem", "A_CustomerReturnItem"})
_KEY_RE = re.compile(r"^(?P<set>[A-Za-z_]+)(?:\((?P<key>[^)]*)\))?(?:/(?P<nav>[A-Za-z_]+))?$")


def _parse_key(text: str) -> dict[str, str]:
    """``'600001'`` -> {"": "600001"}; ``A='1',B='10'`` -> {"A": "1", "B": "10"}; ``17`` -> {"": "17"}."""
    out: dict[str, str] = {}
    for part in re.findall(r"(?:[A-Za-z_]+=)?(?:'(?:[^']|'')*'|[^,]+)", text):
        name, _, value = part.partition("=") if re.match(r"^[A-Za-z_]+=", part) else ("", "", part)
        value = value.strip()
        if value.startswith("'") and value.endswith("'"):
            value = value[1:-1].replace("''", "'")
        out[name] = value
    return out


class SapODataApp:
    """HTTP face of the simulator: auth, CSRF, envelopes, query options, routing to ``SapBackend``."""

    def __init__(self, kit: SimulatorKit, backend: SapBackend, config: SapSimulatorConfig) -> None:
        self.kit = kit
        self.backend = backend
        self.config = config
        # session id -> (user, csrf token)
        self.sessions: dict[str, tuple[str, str]] = {}
        # access token -> (client id, expiry epoch seconds)
        self.tokens: dict[str, tuple[str, float]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", ODATA_ROOT + "{tail:.*}", self.handle),
            web.post("/sap/bc/sec/oauth2/token", self._token),
            web.post("/_sim/sap/csrf/expire", self._expire_csrf),
            web.post("/_sim/sap/oauth/revoke", self._revoke_tokens),
            *action_routes(
                {name: self._locked(h) for name, h in SapUiActions(self.backend.actions).handlers().items()},
                refusal,
            ),
        ]

    def _locked(self, handler: ActionHandler) -> ActionHandler:
        """A UI action holds the back end's lock like an OData call (the RFC stand-in runs in threads)."""

        def run(body: dict[str, Any]) -> dict[str, Any]:
            with self.backend.lock:
                return handler(body)

        return run

    async def _token(self, request: web.Request) -> web.Response:
        """SAP's OAuth 2.0 endpoint, client-credentials grant with client id/secret as basic auth."""
        try:
            form = await request.post()
        except (ValueError, LookupError, HttpProcessingError):
            # Not UTF-8, an unknown charset, a multipart body without its boundary or with a broken part.
            return web.json_response(
                {"error": "invalid_request", "error_description": "The request body is not a readable form."},
                status=400,
            )
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except ValueError:  # not base64 (non-ASCII included) or not UTF-8
                client_id = secret = ""
        expected = self.config.oauth_clients.get(client_id)
        if expected is None or not hmac.compare_digest(secret, expected):
            return web.json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"}, status=401
            )
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (client_id, time.time() + self.config.oauth_token_lifetime)
        return web.json_response(
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.config.oauth_token_lifetime,
                "scope": str(form.get("scope", "API_CUSTOMER_RETURN_SRV_0001")),
            }
        )

    async def _revoke_tokens(self, request: web.Request) -> web.Response:
        count = len(self.tokens)
        self.tokens.clear()
        return web.json_response({"revoked": count})

    async def _expire_csrf(self, request: web.Request) -> web.Response:
        count = len(self.sessions)
        self.sessions.clear()
        return web.json_response({"expired": count})

    # -- auth and CSRF ----------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> str | None:
        client = request.query.get("sap-client")
        if client is not None and client != self.config.sap_client:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except ValueError:  # not base64 (non-ASCII included) or not UTF-8
                return None
            ok_user = hmac.compare_digest(user.upper(), self.config.username.upper())
            ok_pw = hmac.compare_digest(password, self.config.password)
            return self.config.username if ok_user and ok_pw else None
        if scheme.lower() == "bearer" and value:
            for token in self.config.bearer_tokens:
                if hmac.compare_digest(value, token):
                    return "OAUTH_CLIENT"
            issued = self.tokens.get(value)
            if issued is not None and issued[1] > time.time():
                return issued[0][:12]
        return None

    def _unauthorized(self) -> web.Response:
        return web.Response(
            status=401,
            text="<html><head><title>Logon Error Message</title></head><body>Anmeldung fehlgeschlagen / Logon failed</body></html>",
            content_type="text/html",
            headers={
                "WWW-Authenticate": f'Basic realm="SAP NetWeaver Application Server [S4H/{self.config.sap_client}]"'
            },
        )

    def _csrf(self, request: web.Request, user: str, response_headers: dict[str, str]) -> web.Response | None:
        """Fetch hands out a token bound to a session cookie; writes must present both."""
        wanted = request.headers.get("X-CSRF-Token", "")
        sid = request.cookies.get(SESSION_COOKIE, "")
        if request.method in ("GET", "HEAD"):
            if wanted.lower() == "fetch":
                session = self.sessions.get(sid)
                if session is None or session[0] != user:
                    sid = secrets.token_urlsafe(24)
                    session = (user, base64.b64encode(secrets.token_bytes(18)).decode())
                    self.sessions[sid] = session
                    response_headers["Set-Cookie"] = f"{SESSION_COOKIE}={sid}; path=/; HttpOnly"
                response_headers["x-csrf-token"] = session[1]
            return None
        session = self.sessions.get(sid)
        if (
            session is None
            or session[0] != user
            or not wanted
            or not hmac.compare_digest(wanted.encode("utf-8", "surrogateescape"), session[1].encode())
        ):
            return web.Response(
                status=403, text="CSRF token validation failed", headers={"x-csrf-token": "Required"}
            )
        return None

    # -- dispatch -----------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        user = self._authenticate(request)
        if user is None:
            return self._unauthorized()
        headers: dict[str, str] = {}
        refused = self._csrf(request, user, headers)
        if refused is not None:
            return refused
        tail = request.match_info["tail"]
        service: Service | None = None
        rest = ""
        for path, svc in _SERVICES.items():
            if tail == path or tail.startswith(path + "/"):
                service, rest = svc, tail[len(path) + 1 :]
                break
        if service is None:
            return self._error(
                ODataError(
                    404, "/IWFND/MED/170", f"No service found for namespace '', name '{tail.split('/')[0]}'"
                ),
                "",
            )
        fmt = request.query.get("$format")
        if fmt is not None and fmt not in self.config.formats:
            known = fmt in ("xml", "atom", "json")
            return self._error(
                ODataError(
                    406 if known else 400,
                    "/IWBEP/CM_MGW_RT/023",
                    f"$format '{fmt}' is not served here (supported: {', '.join(self.config.formats)})"
                    if known
                    else f"Invalid $format '{fmt}'",
                ),
                service.name,
            )
        # Read the body first: the dispatch then never suspends, so it can hold the back end's lock, which the
        # RFC stand-in takes from its worker threads.
        await request.read()
        try:
            with self.backend.lock:
                response = await self._dispatch(request, service, rest, user)
        except ODataError as exc:
            response = self._error(exc, service.name)
        except QueryError as exc:
            response = self._error(ODataError(400, "/IWBEP/CM_MGW_RT/023", str(exc)), service.name)
        for name, value in headers.items():
            response.headers[name] = value
        return response

    def _error(self, exc: ODataError, service: str) -> web.Response:
        return web.json_response(exc.body(service), status=exc.status)

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type != "application/json":
            # The JSON parser is chosen by Content-Type; anything else is refused before parsing.
            raise ODataError(
                415,
                "/IWBEP/CM_MGW_RT/004",
                f"Content type '{request.content_type or '(none)'}' not supported; use application/json",
            )
        try:
            body = parse_json_body(await request.read() or b"{}", parse_float=Decimal)
        except exactjson.JsonError as exc:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/002", f"Malformed JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise ODataError(400, "/IWBEP/CM_MGW_RT/002", "Request body must be a JSON object")
        # Decimal from parse_float marks a JSON number where SAP wants a string; keep it so checks refuse it.
        return body

    async def _dispatch(self, request: web.Request, service: Service, rest: str, user: str) -> web.Response:
        base = f"{request.scheme}://{request.host}{ODATA_ROOT}{service.path}"
        if rest in ("", "/"):
            if request.method not in ("GET", "HEAD"):
                raise ODataError(405, "/IWFND/CM_MGW/004", "Method not allowed on the service document")
            return web.json_response({"d": {"EntitySets": list(service.sets)}})
        if rest == "$metadata":
            return web.Response(text=edmx(service), content_type="application/xml")
        match = _KEY_RE.match(rest)
        if match is None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{rest}'")
        name, key_text, nav = match.group("set"), match.group("key"), match.group("nav")
        if any(f.name == name for f in service.functions):
            if request.method != "POST":
                raise ODataError(405, "/IWFND/CM_MGW/004", f"Function import {name} requires POST")
            return self._function(service, name, request, base)
        if name not in service.sets:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{name}'")
        et = service.set_type(name)
        if key_text is None:
            if request.method == "GET":
                return self._collection(request, service, et, self._rows(name), base, name)
            if request.method == "POST":
                return await self._create(request, service, name, base, user)
            raise ODataError(405, "/IWFND/CM_MGW/004", f"Method {request.method} not allowed on {name}")
        key = _parse_key(key_text)
        entity = self._entity(name, key)
        if nav is not None:
            nav_def = et.nav(nav)
            if nav_def is None:
                raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Navigation property '{nav}' not found")
            child_et = service.type(nav_def.target)
            child_set = next(s for s, t in service.sets.items() if t == nav_def.target)
            if (
                request.method == "POST"
                and name == "A_ReturnsDeliverySrlNmbr"
                and nav == "to_MaintenanceItemObject"
            ):
                list_id = plain_int(next(iter(key.values()), ""), maximum=2**63 - 1)  # an Edm.Int64 key
                if list_id is None:
                    raise ODataError(400, "/IWBEP/CM_MGW_RT/021", f"Invalid key predicate '{key_text}'")
                created = self.backend.add_serial(list_id, await self._json_body(request))
                return web.json_response(
                    {"d": self._entity_json(service, child_et, child_set, created, base, set())}, status=201
                )
            if request.method != "GET":
                raise ODataError(405, "/IWFND/CM_MGW/004", f"Method {request.method} not allowed on {nav}")
            children = entity.get(nav)
            if nav_def.to_one:
                return web.json_response(
                    {"d": self._entity_json(service, child_et, child_set, children, base, set())}
                )
            return self._collection(request, service, child_et, list(children or []), base, child_set)
        if request.method == "GET":
            expand = self._expand(request, service, et)
            select = self._select(request, service, et)
            entity_json = self._entity_json(service, et, name, entity, base, expand) or {}
            headers = {"ETag": _etag(entity)} if name in ETAG_SETS else None
            return web.json_response({"d": _project(entity_json, select)}, headers=headers)
        if request.method in ("PATCH", "MERGE", "PUT"):
            if name in ETAG_SETS:
                self._check_if_match(request, entity)
            body = await self._json_body(request)
            if name == "A_ReturnsDeliveryItem":
                self.backend.patch_delivery_item(
                    entity["DeliveryDocument"], entity["DeliveryDocumentItem"], body
                )
            elif name == "A_ReturnsDeliveryHeader":
                self.backend.patch_delivery_header(entity["DeliveryDocument"], body)
            elif name == "A_CustomerReturnItem":
                self.backend.actions.patch_return_item(
                    entity["CustomerReturn"], entity["CustomerReturnItem"], body
                )
            else:
                raise ODataError(405, "/IWFND/CM_MGW/004", f"Updates of {name} are not supported")
            return web.Response(status=204)
        raise ODataError(405, "/IWFND/CM_MGW/004", f"Method {request.method} not allowed on {name}")

    def _check_if_match(self, request: web.Request, entity: dict[str, Any]) -> None:
        """Optimistic locking as S/4HANA does it: a change names the ETag it read (KBA 3514624: 428 without
        If-Match; 412 when the entity changed since)."""
        given = request.headers.get("If-Match")
        if given is None:
            if self.config.require_if_match:
                raise ODataError(
                    428, "/IWBEP/CM_MGW_RT/000", "Precondition required: send If-Match with the entity's ETag"
                )
            return
        tags = [tag.strip() for tag in given.split(",")]
        if "*" not in tags and _etag(entity) not in tags:
            raise ODataError(
                412,
                "/IWBEP/CM_MGW_RT/000",
                "Precondition failed: the entity was changed since it was read; read it again for its ETag",
            )

    def _rows(self, entity_set: str) -> list[dict[str, Any]]:
        docs = self.backend.state.documents
        if entity_set in (CR, CMR, DLV):
            return list(docs[entity_set].values())
        if entity_set == "A_CustomerReturnItem":
            return [i for d in docs[CR].values() for i in d["to_Item"]]
        if entity_set == "A_CreditMemoRequestItem":
            return [i for d in docs[CMR].values() for i in d["to_Item"]]
        if entity_set == "A_ReturnsDeliveryItem":
            return [i for d in docs[DLV].values() for i in d["to_DeliveryDocumentItem"]]
        if entity_set == "A_ReturnsDeliverySrlNmbr":
            return [
                i["to_SerialDeliveryItem"] for d in docs[DLV].values() for i in d["to_DeliveryDocumentItem"]
            ]
        if entity_set == "A_MatlStkInAcctMod":
            return self.backend.stock_rows()
        if entity_set == MATDOC:
            return list(docs[MATDOC].values())
        if entity_set == MATDOC_ITEM:
            return [i for d in docs[MATDOC].values() for i in d["to_MaterialDocumentItem"]]
        if entity_set == BILLING:
            return list(docs[BILLING].values())
        if entity_set == "A_CustomerReturnSerialNumber":
            return [s for d in docs[CR].values() for i in d["to_Item"] for s in i["to_SerialNumber"]]
        return []

    def _entity(self, entity_set: str, key: dict[str, str]) -> dict[str, Any]:
        service_type_keys = None
        for svc in _SERVICES.values():
            if entity_set in svc.sets:
                service_type_keys = svc.set_type(entity_set).keys
        assert service_type_keys is not None
        if "" in key and len(service_type_keys) == 1:
            key = {service_type_keys[0]: key[""]}
        if set(key) != set(service_type_keys):
            raise ODataError(400, "/IWBEP/CM_MGW_RT/021", f"Invalid key predicate for {entity_set}")
        for row in self._rows(entity_set):
            if all(str(row.get(k)) == v for k, v in key.items()):
                return row
        raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{entity_set}'")

    def _expand(self, request: web.Request, service: Service, et: EntityType) -> set[str]:
        """``$expand`` paths, each segment a navigation property of the type the one before leads to."""
        names = {n.strip() for n in request.query.get("$expand", "").split(",") if n.strip()}
        for name in names:
            _check_path(service, et, name, "$expand")
        return names

    def _select(self, request: web.Request, service: Service, et: EntityType) -> list[str]:
        """``$select`` paths (none: every property): properties, ``*``, or navigation paths ending in either."""
        paths = [p.strip() for p in request.query.get("$select", "").split(",") if p.strip()]
        for path in paths:
            _check_path(service, et, path, "$select")
        return paths

    def _collection(
        self,
        request: web.Request,
        service: Service,
        et: EntityType,
        rows: list[dict[str, Any]],
        base: str,
        set_name: str,
    ) -> web.Response:
        known = {p.name for p in et.props}
        q = request.query
        if "$filter" in q:
            predicate = parse_filter(q["$filter"], known)
            rows = [r for r in rows if predicate(r)]
        if "$orderby" in q:
            for field_name, desc in reversed(parse_orderby(q["$orderby"], known)):
                rows = sorted(rows, key=lambda r, f=field_name: sort_key(r.get(f)), reverse=desc)  # type: ignore[misc]
        count = len(rows)
        skip_text, top_text = q.get("$skip", "0"), q.get("$top")
        # OData v2: $top and $skip are non-negative integers; "-1" or "1.5" is a syntax error.
        skip, top = plain_int(skip_text), (plain_int(top_text) if top_text is not None else None)
        if skip is None or (top_text is not None and top is None):
            raise ODataError(
                400, "/IWBEP/CM_MGW_RT/023", f"Invalid $top or $skip ({top_text!r}, {skip_text!r})"
            )
        rows = rows[skip:] if top is None else rows[skip : skip + top]
        expand = self._expand(request, service, et)
        select = self._select(request, service, et)
        results = [
            _project(self._entity_json(service, et, set_name, row, base, expand) or {}, select)
            for row in rows
        ]
        body: dict[str, Any] = {"results": results}
        inline = q.get("$inlinecount")
        if inline == "allpages":
            body["__count"] = str(count)
        elif inline not in (None, "none"):
            raise ODataError(400, "/IWBEP/CM_MGW_RT/023", f"Invalid $inlinecount '{inline}'")
        return web.json_response({"d": body})

    def _entity_json(
        self,
        service: Service,
        et: EntityType,
        set_name: str,
        row: dict[str, Any] | None,
        base: str,
        expand: set[str],
    ) -> dict[str, Any] | None:
        if row is None:
            return None
        key_text = ",".join(
            f"{k}='{row.get(k, '')}'" if service.type(et.name).prop(k).type != INT64 else f"{k}={row.get(k)}"  # type: ignore[union-attr]
            for k in et.keys
        )
        if len(et.keys) == 1:
            key_text = key_text.split("=", 1)[1]
        uri = f"{base}/{set_name}({key_text})"
        out: dict[str, Any] = {"__metadata": {"id": uri, "uri": uri, "type": f"{service.name}.{et.name}"}}
        if set_name in ETAG_SETS:
            out["__metadata"]["etag"] = _etag(row)
        for prop in et.props:
            value = row.get(prop.name)
            if value is None and prop.type not in (DATETIME, DATETIMEOFFSET, INT64):
                value = "0" if prop.type == DECIMAL else ""
            out[prop.name] = value
        expanded = {e.split("/", 1)[0] for e in expand}  # expanding a/b expands a as well
        for nav in et.navs:
            if nav.name in expanded:
                child_et = service.type(nav.target)
                child_set = next(s for s, t in service.sets.items() if t == nav.target)
                sub = {e.split("/", 1)[1] for e in expand if e.startswith(nav.name + "/")}
                children = row.get(nav.name)
                if nav.to_one:
                    out[nav.name] = self._entity_json(service, child_et, child_set, children, base, sub)
                else:
                    out[nav.name] = {
                        "results": [
                            self._entity_json(service, child_et, child_set, c, base, sub)
                            for c in children or []
                        ]
                    }
            else:
                out[nav.name] = {"__deferred": {"uri": f"{uri}/{nav.name}"}}
        return out

    async def _create(
        self, request: web.Request, service: Service, name: str, base: str, user: str
    ) -> web.Response:
        body = await self._json_body(request)
        et = service.set_type(name)
        if name == CR:
            prepared = self.backend.prepare_customer_return(body, user)
            doc = self.backend.commit_customer_return(prepared)
            headers = {}
            if prepared.warnings:
                code, text = prepared.warnings[0]
                headers["sap-message"] = json.dumps(
                    {"code": code, "message": text, "severity": "warning", "target": "", "details": []}
                )
        elif name == CMR:
            doc = self.backend.create_credit_memo_request(body)
            headers = {}
        elif name == MATDOC:
            doc = self.backend.actions.post_material_document(body, user)
            headers = {}
        else:
            raise ODataError(405, "/IWFND/CM_MGW/004", f"Creation of {name} is not supported")
        expand = {"to_MaterialDocumentItem"} if name == MATDOC else {"to_Item"}
        entity = self._entity_json(service, et, name, doc, base, expand)
        assert entity is not None
        headers["Location"] = entity["__metadata"]["uri"]
        return web.json_response({"d": entity}, status=201, headers=headers)

    def _function(self, service: Service, name: str, request: web.Request, base: str) -> web.Response:
        q = request.query
        if name == "Cancel" and service.name == "API_BILLING_DOCUMENT_SRV":
            raw = q.get("BillingDocument", "")
            if not (len(raw) >= 2 and raw.startswith("'") and raw.endswith("'")):
                raise ODataError(
                    400, "/IWBEP/CM_MGW_RT/023", "Parameter BillingDocument must be a quoted string literal"
                )
            return web.json_response({"d": {"Cancel": self.backend.actions.cancel_billing(raw[1:-1])}})
        raw_doc = q.get("DeliveryDocument", "")
        if not (raw_doc.startswith("'") and raw_doc.endswith("'")):
            raise ODataError(
                400, "/IWBEP/CM_MGW_RT/023", "Parameter DeliveryDocument must be a quoted string literal"
            )
        number = raw_doc[1:-1]
        raw_date = q.get("ActualGoodsMovementDate", "")
        if raw_date:
            if not (raw_date.startswith("datetime'") and raw_date.endswith("'")):
                raise ODataError(
                    400, "/IWBEP/CM_MGW_RT/023", "Parameter ActualGoodsMovementDate must be datetime'...'"
                )
            movement_ms = parse_literal_datetime(raw_date[len("datetime'") : -1])
        else:
            movement_ms = self.backend.now_ms()
        if name != "PostGoodsReceipt":  # only declared function imports get here; all of them are served
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Resource not found for segment '{name}'")
        doc = self.backend.post_goods_receipt(number, movement_ms)
        et = service.type("A_ReturnsDeliveryHeaderType")
        return web.json_response(
            {"d": self._entity_json(service, et, "A_ReturnsDeliveryHeader", doc, base, set())}
        )


@dataclass
class SapSimulator:
    """The assembled simulator: aiohttp app, shared kit/state, and the backend the RFC stand-in uses."""

    app: web.Application
    kit: SimulatorKit
    backend: SapBackend
    odata: SapODataApp


def build_simulator(config: SapSimulatorConfig | None = None) -> SapSimulator:
    config = config or SapSimulatorConfig()
    kit = SimulatorKit("sap")
    backend = SapBackend(kit, config)
    kit.on_reset.append(lambda state: backend.seed(state) if config.seed else None)
    odata = SapODataApp(kit, backend, config)
    app = kit.make_app(odata.routes())
    return SapSimulator(app, kit, backend, odata)


def create_app(config: SapSimulatorConfig | None = None) -> tuple[web.Application, SimulatorKit]:
    """The SAP simulator as an aiohttp application plus its kit (state, faults)."""
    sim = build_simulator(config)
    return sim.app, sim.kit


__all__ = [
    "CMR",
    "CR",
    "CUSTOMERS",
    "DLV",
    "MATERIALS",
    "PLANTS",
    "ODataError",
    "PreparedReturn",
    "SapBackend",
    "SapODataApp",
    "SapSimulator",
    "SapSimulatorConfig",
    "build_simulator",
    "create_app",
    "fmt_qty",
]


def _check_path(service: Service, et: EntityType, path: str, option: str) -> None:
    """Each segment of a query option's path must be a navigation property of the type the one before leads to;
    a ``$select`` path may end in a property or ``*``."""
    current = et
    segments = path.split("/")
    for i, segment in enumerate(segments):
        leaf = i == len(segments) - 1
        if option == "$select" and leaf and (segment == "*" or current.prop(segment) is not None):
            return
        nav = current.nav(segment)
        if nav is None:
            kind = "Property" if option == "$select" else "Navigation property"
            raise ODataError(
                400,
                "/IWBEP/CM_MGW_RT/021",
                f"{kind} '{segment}' not found in type '{current.name}' ({option}={path})",
            )
        current = service.type(nav.target)


def _project(item: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """An entity's JSON cut to ``$select``: the properties named, and within a navigation named by a path
    (``to_Item/Material``) its entries cut the same way; ``__metadata`` always stays."""
    if not paths or "*" in paths:
        return item
    out: dict[str, Any] = {"__metadata": item.get("__metadata")}
    within: dict[str, list[str]] = {}
    for path in paths:
        head, _, rest = path.partition("/")
        if rest:
            within.setdefault(head, []).append(rest)
        else:
            out[head] = item.get(head)
    for head, rests in within.items():
        if head in out:
            continue  # named whole as well
        value = item.get(head)
        if isinstance(value, dict) and isinstance(value.get("results"), list):
            out[head] = {"results": [_project(child, rests) for child in value["results"]]}
        elif isinstance(value, dict) and "__deferred" not in value:
            out[head] = _project(value, rests)
        else:
            out[head] = value  # not expanded: the deferred link, as SAP answers it
    return out


def _etag(row: dict[str, Any]) -> str:
    """A weak ETag of an entity's own properties (its navigations have their own), opaque as SAP's are."""
    own = sorted((key, repr(value)) for key, value in row.items() if not isinstance(value, dict | list))
    return 'W/"' + hashlib.sha256(repr(own).encode()).hexdigest()[:20] + '"'
