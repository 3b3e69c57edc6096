"""Console sessions: an opaque id in an HttpOnly cookie, the caller's credential kept server-side only."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from returnbridge.client import ReturnBridgeClient
from returnbridge.domain.context import Principal
from returnbridge.gateway.rbac import permissions_for

__all__ = ["COOKIE", "SESSION", "Session", "SessionStore", "tokens_match"]

COOKIE: Final = "rb_console"


def tokens_match(submitted: str, issued: str) -> bool:
    """Constant-time comparison of a submitted token with an issued one (both from the client, for login).

    Issued tokens are URL-safe ASCII; anything else cannot match, and must not reach ``compare_digest`` (it
    raises TypeError for non-ASCII str) or ``encode`` (a header's undecodable bytes arrive as surrogates).
    """
    if not submitted or not submitted.isascii() or not issued.isascii():
        return False
    return hmac.compare_digest(submitted.encode(), issued.encode())


@dataclass
class Session:
    """One signed-in browser: who it is and the gRPC client that calls the API with its own credential."""

    id: str
    principal: Principal
    client: ReturnBridgeClient
    expires_at: float
    # Synchronizer token: every POST form carries it; a cross-site form cannot read it.
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_for(self.principal.roles)

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def csrf_ok(self, submitted: str) -> bool:
        return tokens_match(submitted, self.csrf)


#: Where the auth middleware puts the signed-in session on each request.
SESSION: Final = web.RequestKey("session", Session)


class SessionStore:
    """In-memory sessions with an absolute lifetime; the oldest is dropped when ``max_sessions`` is reached.

    Memory only on purpose: a restart signs everybody out, and no credential is ever written to disk.
    """

    def __init__(self, *, ttl_seconds: float, max_sessions: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(self, principal: Principal, client: ReturnBridgeClient) -> Session:
        await self._expire()
        while len(self._sessions) >= self._max:
            oldest = min(self._sessions.values(), key=lambda s: s.expires_at)
            await self.drop(oldest.id)
        session = Session(secrets.token_urlsafe(32), principal, client, time.monotonic() + self._ttl)
        self._sessions[session.id] = session
        return session

    async def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= time.monotonic():
            await self.drop(session_id)
            return None
        return session

    async def drop(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            await session.client.close()

    async def _expire(self) -> None:
        now = time.monotonic()
        for session_id in [s.id for s in self._sessions.values() if s.expires_at <= now]:
            await self.drop(session_id)

    async def close(self) -> None:
        for session_id in list(self._sessions):
            await self.drop(session_id)
