"""The web console's aiohttp server: sessions, CSRF, security headers, and the gRPC error -> page mapping.

Every page reads through the public gRPC API with the signed-in user's own credential, so authentication,
RBAC, tenant scoping, rate limits and audit are exactly the API's, not a second implementation.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Final
from urllib.parse import quote

import grpc
import jinja2
from aiohttp import web

from returnbridge.client import ReturnBridgeClient
from returnbridge.console import views_admin, views_returns
from returnbridge.console.kpis import KpiHistory
from returnbridge.console.sessions import COOKIE, SESSION, Session, SessionStore, tokens_match
from returnbridge.console.settings import ConsoleSettings
from returnbridge.console.templating import (
    STATE,
    ConsoleState,
    PageDenied,
    read_form,
    render,
    template_environment,
)
from returnbridge.errors import AuthError
from returnbridge.gateway.auth import Authenticator

__all__ = ["ConsoleServer"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OPEN_PATHS: Final = ("/login", "/static/", "/healthz", "/favicon.ico")
_LOGIN_CSRF_COOKIE: Final = "rb_login_csrf"
_CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
# gRPC status -> HTTP status of the page that explains it.
_HTTP_STATUS: Final = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


class ConsoleServer:
    """Args:
    settings: the ``console`` section.
    authenticator: the gateway's authenticator (the login accepts what the API accepts).
    grpc_target: ``host:port`` of this process's gRPC server.
    mapping_ids: specs the sandbox offers.
    """

    def __init__(
        self,
        settings: ConsoleSettings,
        *,
        authenticator: Authenticator,
        grpc_target: str,
        mapping_ids: Sequence[str],
    ) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.grpc_target = grpc_target
        self.mapping_ids = list(mapping_ids)
        self.sessions = SessionStore(
            ttl_seconds=settings.session_ttl_seconds, max_sessions=settings.max_sessions
        )
        self.kpi_history = KpiHistory(interval=settings.kpi_sample_seconds)
        self.templates: jinja2.Environment = template_environment()
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._headers, self._errors, self._auth], client_max_size=2 * 1024**2
        )
        app[STATE] = ConsoleState(
            settings=self.settings,
            templates=self.templates,
            kpi_history=self.kpi_history,
            mapping_ids=self.mapping_ids,
        )
        static = resources.files("returnbridge.console") / "static"
        app.router.add_static("/static/", str(static), append_version=True)
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/favicon.ico", _no_favicon)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/", _home)
        views_returns.add_routes(app)
        views_admin.add_routes(app)
        return app

    async def start(self) -> int:
        """Bind and serve; returns the port (``port: 0`` picks a free one)."""
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        self.kpi_history.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self.settings.port

    async def stop(self) -> None:
        await self.kpi_history.stop()
        await self.sessions.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ middlewares
    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.path.startswith("/static/"):
            # Pages hold tenant data: never kept in a shared cache or the back-button cache after logout.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageDenied as exc:
            context = {"code": "PERMISSION_DENIED", "message": str(exc), "http_status": 403}
            return render(request, "error.html", context, status=403)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                # The credential behind the session stopped working (expired JWT, rotated key).
                await self.sessions.drop(request.cookies.get(COOKIE, ""))
                raise web.HTTPSeeOther("/login?expired=1") from None
            status = _HTTP_STATUS.get(exc.code(), 502)
            return render(
                request,
                "error.html",
                {"code": exc.code().name, "message": exc.details() or "", "http_status": status},
                status=status,
            )

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_OPEN_PATHS):
            return await handler(request)
        session = await self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if request.method == "GET":
                # Encoded: the page's own query (``?erp=sap&return_id=x``) must come back whole after login.
                raise web.HTTPSeeOther(f"/login?next={quote(_safe_next(request.path_qs), safe='/')}")
            raise web.HTTPUnauthorized(text="sign in first")
        if request.method not in ("GET", "HEAD"):
            await _check_same_origin(request)
            form = await read_form(request)
            token = str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")
            if not session.csrf_ok(token):
                raise web.HTTPForbidden(text="missing or invalid CSRF token; reload the page and try again")
        request[SESSION] = session
        return await handler(request)

    # ------------------------------------------------------------------ login
    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        # Reuse a token already issued: a second login page load (another tab, a favicon redirect) must not
        # invalidate the form the user is filling in.
        token = request.cookies.get(_LOGIN_CSRF_COOKIE, "")
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        response = render(
            request,
            "login.html",
            {
                "login_csrf": token,
                "next": _safe_next(request.query.get("next", "/")),
                "expired": "expired" in request.query,
                "error": "",
            },
        )
        response.set_cookie(
            _LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
            path="/login",
        )
        return response

    async def _login(self, request: web.Request) -> web.StreamResponse:
        await _check_same_origin(request)
        form = await read_form(request)
        # Double-submit token against login CSRF (a forged login into the attacker's account).
        cookie_token = request.cookies.get(_LOGIN_CSRF_COOKIE, "")
        if not cookie_token or not tokens_match(str(form.get("login_csrf", "")), cookie_token):
            raise web.HTTPForbidden(text="missing or invalid login token; reload the login page")
        credential = str(form.get("token", "")).strip()
        next_path = _safe_next(str(form.get("next", "/")))
        try:
            principal = self.authenticator.authenticate([("authorization", f"Bearer {credential}")], None)
        except AuthError as exc:  # say why, never which key was close
            log.info("console login refused: %s", exc)
            return render(
                request,
                "login.html",
                {"login_csrf": cookie_token, "next": next_path, "expired": False, "error": str(exc)},
                status=401,
            )
        client = ReturnBridgeClient.connect(
            self.grpc_target, token=credential, timeout=self.settings.api_timeout_seconds
        )
        session = await self.sessions.create(principal, client)
        log.info("console login: %s (tenant %s)", principal.name, principal.tenant_id)
        response = _see_other(next_path)
        response.set_cookie(
            COOKIE,
            session.id,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookies,
            path="/",
            max_age=int(self.settings.session_ttl_seconds),
        )
        response.del_cookie(_LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        session: Session = request[SESSION]
        await self.sessions.drop(session.id)
        response = _see_other("/login")
        response.del_cookie(COOKIE, path="/")
        return response


def _see_other(location: str) -> web.Response:
    """A 303 that can carry cookies (aiohttp wants HTTP exceptions raised, not returned)."""
    return web.Response(status=303, headers={"Location": location})


async def _check_same_origin(request: web.Request) -> None:
    """Refuse a cross-site POST outright when the browser says where it comes from (defence in depth)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
        raise web.HTTPForbidden(text="cross-origin request refused")


def _safe_next(path: str) -> str:
    """Only same-site absolute paths: ``next`` must never send the browser to another host.

    Browsers drop tabs and newlines from a URL before reading it, so ``/<TAB>/evil.example`` would become
    ``//evil.example``; CR/LF would also break the Location header after the session is made.
    """
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(c.isspace() or not c.isprintable() for c in path):
        return "/"
    return path


async def _healthz(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def _no_favicon(_request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _home(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/returns")
