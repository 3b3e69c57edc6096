"""Console pages for reading: the return timeline (search and detail) and inventory per ERP."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from urllib.parse import quote

import grpc
from aiohttp import web

from returnbridge.api.v1 import inventory_pb2
from returnbridge.console.sessions import SESSION, Session
from returnbridge.console.templating import render
from returnbridge.console.timeline import load_timeline

__all__ = ["add_routes"]


def add_routes(app: web.Application) -> None:
    app.router.add_get("/returns", search)
    app.router.add_get("/returns/{return_id}", timeline)
    app.router.add_get("/inventory", inventory)


async def search(request: web.Request) -> web.StreamResponse:
    """A return id opens its timeline; otherwise the query is tried as an RMA number."""
    query = request.query.get("q", "").strip()
    if not query:
        return render(request, "returns.html", {"query": ""})
    session: Session = request[SESSION]
    return_id = query
    try:
        await session.client.status(query)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        with contextlib.suppress(grpc.aio.AioRpcError):
            return_id = (await session.client.status_by_rma(query)).return_id or query
    raise web.HTTPSeeOther("/returns/" + quote(return_id, safe=""))


async def timeline(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    return_id = request.match_info["return_id"]
    data = await load_timeline(session.client, return_id, session.permissions)
    return render(request, "timeline.html", {"query": return_id, "t": data})


async def inventory(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    sku = request.query.get("sku", "").strip()
    site = request.query.get("site", "").strip()
    levels = await session.client.inventory_levels(skus=[sku] if sku else [], sites=[site] if site else [])
    by_target: dict[str, list[inventory_pb2.InventoryLevel]] = defaultdict(list)
    for level in sorted(levels, key=lambda lv: (lv.sku, lv.location.site, lv.location.sub_location)):
        by_target[level.target or "(unknown)"].append(level)
    return render(
        request, "inventory.html", {"by_target": dict(sorted(by_target.items())), "sku": sku, "site": site}
    )
