"""A real loopback HTTP endpoint that records the alerts POSTed to it (the Alerter's webhook sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Webhook:
    url: str
    received: list[dict[str, object]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    # Answer every POST with this status instead of recording it (0: record and answer 204).
    fail_with: int = 0

    def of(self, kind: str, status: str) -> list[dict[str, object]]:
        return [a for a in self.received if a["kind"] == kind and a["status"] == status]

    def of_kind(self, kind: str) -> list[dict[str, object]]:
        return [a for a in self.received if a["kind"] == kind]


@asynccontextmanager
async def alert_webhook() -> AsyncIterator[Webhook]:
    hook = Webhook(url="")

    async def handle(request: web.Request) -> web.Response:
        if hook.fail_with:
            return web.Response(status=hook.fail_with)
        hook.received.append(await request.json())
        hook.headers.append(dict(request.headers))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/alerts", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/alerts"
    try:
        yield hook
    finally:
        await runner.cleanup()
