"""``/_sim/actions/``: what a person does in an ERP's UI (adjust stock, void a credit, cancel an order).

The same routes on every simulator; each simulator implements them with its own ERP-side actions (the ones
its API offers too), so a UI action and an API call move stock, documents, ledger and change feed alike.
Bodies are checked as strictly as the ERP APIs: unknown fields, missing fields, wrong types and signs are
refused with ``{"error": {"code", "message"}}`` and a 4xx status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from returnbridge import exactjson
from returnbridge.simulators.faults import CONTROL_PREFIX
from returnbridge.simulators.kit import parse_json_body

ACTIONS = CONTROL_PREFIX + "actions/"

# action -> (required fields, optional fields)
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "stock/adjust": (frozenset({"sku", "site", "delta"}), frozenset({"sub_location", "reason"})),
    "stock/transfer": (
        frozenset({"sku", "site", "quantity", "to_sub_location"}),
        frozenset({"sub_location", "to_site"}),
    ),
    "credit/void": (frozenset({"document_id"}), frozenset({"document_type"})),
    "order/cancel": (frozenset({"document_id"}), frozenset({"reason"})),
    "order/close": (frozenset({"document_id"}), frozenset()),
    "document/status": (frozenset({"document_type", "document_id", "status"}), frozenset()),
}


class ActionRefused(Exception):
    """An action the simulated ERP refuses: HTTP status, ERP error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


ActionHandler = Callable[[dict[str, Any]], dict[str, Any]]


def text(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or (name in body and not value.strip()):
        raise ActionRefused(400, "INVALID_FIELD", f"{name} must be a non-empty string")
    if len(value) > 64:
        raise ActionRefused(400, "INVALID_FIELD", f"{name} is longer than 64 characters")
    return value


def quantity(body: dict[str, Any], name: str, *, positive: bool) -> Decimal:
    """A quantity as a JSON string (exact decimal); ``positive`` or else any non-zero value."""
    raw = body.get(name)
    if not isinstance(raw, str):
        raise ActionRefused(400, "INVALID_FIELD", f'{name} must be a decimal string, e.g. "5" or "-2"')
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ActionRefused(400, "INVALID_FIELD", f"{name} is not a decimal: {raw!r}") from None
    if not value.is_finite() or abs(value) >= Decimal(10) ** 12:
        raise ActionRefused(400, "INVALID_FIELD", f"{name} is out of range: {raw!r}")
    if positive and value <= 0:
        raise ActionRefused(400, "INVALID_FIELD", f"{name} must be greater than zero")
    if value == 0:
        raise ActionRefused(400, "INVALID_FIELD", f"{name} must not be zero")
    return value


def action_routes(
    handlers: dict[str, ActionHandler], translate: Callable[[Exception], ActionRefused | None]
) -> list[web.RouteDef]:
    """POST routes for ``handlers`` (keys from ``FIELDS``); ``translate`` turns the ERP's errors into refusals."""

    def route(action: str, handler: ActionHandler) -> web.RouteDef:
        required, optional = FIELDS[action]

        async def serve(request: web.Request) -> web.Response:
            try:
                try:
                    body = parse_json_body(await request.read() or b"{}")
                except exactjson.JsonError as exc:
                    raise ActionRefused(400, "INVALID_JSON", f"body is not JSON: {exc}") from None
                if not isinstance(body, dict):
                    raise ActionRefused(400, "INVALID_JSON", "body must be a JSON object")
                unknown = sorted(set(body) - required - optional)
                missing = sorted(required - set(body))
                if unknown:
                    raise ActionRefused(400, "UNKNOWN_FIELD", f"unknown field(s): {', '.join(unknown)}")
                if missing:
                    raise ActionRefused(400, "MISSING_FIELD", f"missing field(s): {', '.join(missing)}")
                try:
                    result = handler(body)
                except ActionRefused:
                    raise
                except Exception as exc:
                    refused = translate(exc)
                    if refused is None:
                        raise
                    raise refused from exc
            except ActionRefused as exc:
                return web.json_response(
                    {"error": {"code": exc.code, "message": exc.message}}, status=exc.status
                )
            return web.json_response({"action": action, **result}, dumps=_dumps)

        return web.post(ACTIONS + action, serve)

    return [route(action, handler) for action, handler in handlers.items()]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
