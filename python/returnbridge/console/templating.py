"""Jinja2 environment, shared console state and the render helper every view uses."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import jinja2
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from returnbridge.api.v1 import admin_pb2, common_pb2, sync_pb2
from returnbridge.console.kpis import KpiHistory
from returnbridge.console.sessions import SESSION
from returnbridge.console.settings import ConsoleSettings

if TYPE_CHECKING:  # aiohttp's own type for a parsed form
    from multidict import MultiDictProxy

__all__ = [
    "STATE",
    "ConsoleState",
    "PageDenied",
    "read_form",
    "render",
    "require",
    "template_environment",
]


class PageDenied(Exception):
    """A page the session's roles do not open (shown like the API's PERMISSION_DENIED)."""


def require(request: web.Request, permission: str) -> None:
    """Raises PageDenied unless the signed-in principal holds ``permission``."""
    session = request[SESSION]
    if not session.may(permission):
        raise PageDenied(
            f"principal {session.principal.name!r} lacks permission {permission!r} for this page"
        )


async def read_form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The POSTed form; 400 when the body cannot be read as one, 408 when it does not arrive in time.

    aiohttp raises plain ``ValueError`` / ``LookupError`` for a multipart body without its boundary, a field
    that is not in its declared charset, or an unknown charset; unhandled, those are 500s.
    """
    timeout = request.app[STATE].settings.form_read_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            return await request.post()
    except TimeoutError:
        raise web.HTTPRequestTimeout(text=f"the form was not received within {timeout:g} s") from None
    except (ValueError, LookupError):
        raise web.HTTPBadRequest(
            text="the form could not be read; send it as application/x-www-form-urlencoded or "
            "multipart/form-data in UTF-8"
        ) from None


@dataclass
class ConsoleState:
    """What views need from the server, without importing it."""

    settings: ConsoleSettings
    templates: jinja2.Environment
    kpi_history: KpiHistory
    mapping_ids: list[str]


STATE: Final = web.AppKey("console_state", ConsoleState)

#: Pages in the navigation and the permission each needs ("kpi" is decided by console.kpi_roles).
NAV: Final = (
    ("/returns", "Returns", "returns.read"),
    ("/dead-letters", "Dead letters", "dlq.read"),
    ("/kpis", "KPIs", "kpi"),
    ("/sandbox", "Mapping sandbox", "translation.use"),
    ("/inventory", "Inventory", "inventory.read"),
)


def _when(value: Timestamp | float | None) -> str:
    moment: datetime
    if isinstance(value, Timestamp):
        if not value.seconds and not value.nanos:
            return ""
        moment = value.ToDatetime(tzinfo=UTC)
    elif value:
        moment = datetime.fromtimestamp(value, tz=UTC)
    else:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _sync_state(value: int) -> str:
    return str(sync_pb2.SyncState.Name(value)).removeprefix("SYNC_STATE_")


def _erp(value: int) -> str:
    return str(common_pb2.ErpSystem.Name(value)).removeprefix("ERP_SYSTEM_").lower()


def _dead_letter_state(value: int) -> str:
    return str(admin_pb2.DeadLetterState.Name(value)).removeprefix("DEAD_LETTER_STATE_")


def _reconciliation(value: int) -> str:
    return str(admin_pb2.ReconciliationStatus.Name(value)).removeprefix("RECONCILIATION_STATUS_")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("returnbridge.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        sync_state=_sync_state,
        erp=_erp,
        percent=_percent,
        seconds=_seconds,
        dead_letter_state=_dead_letter_state,
        reconciliation=_reconciliation,
    )
    return env


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render ``template`` with the session (if any), its permissions and the navigation it may see."""
    state = request.app[STATE]
    session = request.get(SESSION)
    nav = []
    if session is not None:
        for href, label, permission in NAV:
            allowed = (
                bool(session.principal.roles & set(state.settings.kpi_roles))
                if permission == "kpi"
                else session.may(permission)
            )
            if allowed:
                nav.append((href, label, request.path.startswith(href)))
    html = state.templates.get_template(template).render(
        session=session, nav=nav, csrf=session.csrf if session is not None else "", **context
    )
    return web.Response(text=html, content_type="text/html", status=status)
