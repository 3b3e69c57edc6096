"""Console pages for reading: the return timeline (search and detail) and inventory per ERP."""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import quote

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
    query = request.query.get("q", "").strip()
    if query:
        raise web.HTTPSeeOther("/returns/" + quote(query, safe=""))
    return render(request, "returns.html", {"query": ""})


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
