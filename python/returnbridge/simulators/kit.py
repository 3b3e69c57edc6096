"""What every ERP simulator shares: documents, stock, a double-entry ledger, control routes, a server."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from returnbridge import exactjson
from returnbridge.simulators.faults import CONTROL_PREFIX, FaultInjector, FaultPlan
from returnbridge.simulators.notifier import ChangeNotifier, NotifierConfig

# Deeper than any ERP payload (returns are a handful of levels); the simulators' own checks walk bodies
# recursively, so a deeper body is refused before it can exhaust the stack (the real ERPs' JSON parsers cap
# nesting as well, e.g. Jackson at 1000 levels).
MAX_JSON_DEPTH = 64


def parse_json_body(raw: bytes | str, *, parse_float: Callable[[str], Any] = float) -> Any:
    """A request body as strict JSON, as the ERPs' parsers read it (``exactjson.loads`` within the depth cap).

    Raises:
        exactjson.JsonError: with a client-safe message.
    """
    return exactjson.loads(raw, parse_float=parse_float, max_depth=MAX_JSON_DEPTH)


def plain_int(text: str, *, maximum: int = 2**31 - 1) -> int | None:
    """``text`` as a non-negative integer of ASCII digits up to ``maximum`` (the ERPs' 32-bit ints), else None.

    ``str.isdigit`` alone also passes "²" or Arabic-Indic digits, which ``int`` then refuses or converts.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


@dataclass(slots=True)
class LedgerEntry:
    """One posting line; a document's postings always balance (sum of debits == sum of credits)."""

    document_type: str
    document_id: str
    account: str
    debit: Decimal
    credit: Decimal
    currency: str
    posted_at: str


@dataclass
class SimulatorState:
    """ERP data the simulator keeps in memory: documents by type, stock by (sku, site, sub), ledger."""

    documents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    stock: dict[tuple[str, str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    ledger: list[LedgerEntry] = field(default_factory=list)
    # Change feed: (sequence, kind, key) appended on every document or stock change.
    changes: list[tuple[int, str, str]] = field(default_factory=list)
    requests: int = 0
    # Told of every change after it is recorded (the kit's notifier); must return at once and never raise.
    listener: Callable[[int, str, str], None] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self._ids)

    def record_change(self, kind: str, key: str) -> int:
        seq = next(self._seq)
        self.changes.append((seq, kind, key))
        if self.listener is not None:
            self.listener(seq, kind, key)
        return seq

    def put_document(self, document_type: str, document_id: str, document: dict[str, Any]) -> None:
        self.documents[document_type][document_id] = document
        self.record_change("document", f"{document_type}/{document_id}")

    def adjust_stock(self, sku: str, site: str, sub_location: str, delta: Decimal) -> Decimal:
        key = (sku, site, sub_location)
        self.stock[key] += delta
        self.record_change("stock", "|".join(key))
        return self.stock[key]

    def post(
        self, document_type: str, document_id: str, currency: str, lines: list[tuple[str, Decimal, Decimal]]
    ) -> None:
        """Post balanced entries ``(account, debit, credit)``; refuses an unbalanced set."""
        debits = sum((d for _, d, _ in lines), Decimal(0))
        credits = sum((c for _, _, c in lines), Decimal(0))
        if debits != credits:
            raise ValueError(f"unbalanced posting for {document_type}/{document_id}: {debits} != {credits}")
        now = datetime.now(UTC).isoformat()
        for account, debit, credit in lines:
            self.ledger.append(LedgerEntry(document_type, document_id, account, debit, credit, currency, now))

    def trial_balance(self) -> dict[str, Any]:
        debits = sum((e.debit for e in self.ledger), Decimal(0))
        credits = sum((e.credit for e in self.ledger), Decimal(0))
        return {"debits": str(debits), "credits": str(credits), "balanced": debits == credits}


class SimulatorKit:
    """Builds an aiohttp app with fault injection and the ``/_sim/`` control and inspection routes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notifier = ChangeNotifier(name)
        self.state = SimulatorState(listener=self.notifier.notify)
        self.faults = FaultInjector()
        # Called with the fresh state after every reset, so a simulator can re-apply its seed data.
        self.on_reset: list[Callable[[SimulatorState], None]] = []

    def make_app(self, routes: list[web.RouteDef]) -> web.Application:
        app = web.Application(
            middlewares=[self._count_requests, self.faults.middleware], client_max_size=104 * 1024 * 1024
        )
        app.add_routes(routes)
        app.on_cleanup.append(self.notifier.aclose)
        app.add_routes(
            [
                web.get(CONTROL_PREFIX + "health", self._health),
                web.get(CONTROL_PREFIX + "documents", self._documents),
                web.get(CONTROL_PREFIX + "stock", self._stock),
                web.get(CONTROL_PREFIX + "ledger", self._ledger),
                web.get(CONTROL_PREFIX + "faults", self._get_faults),
                web.put(CONTROL_PREFIX + "faults", self._put_faults),
                web.post(CONTROL_PREFIX + "reset", self._reset),
                web.get(CONTROL_PREFIX + "notifications", self._get_notifications),
                web.put(CONTROL_PREFIX + "notifications", self._put_notifications),
            ]
        )
        return app

    def reset(self) -> None:
        self.state = SimulatorState(listener=self.notifier.notify)
        self.faults.reset()
        for hook in self.on_reset:
            hook(self.state)

    @web.middleware
    async def _count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(CONTROL_PREFIX):
            self.state.requests += 1
        return await handler(request)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"simulator": self.name, "requests": self.state.requests})

    async def _documents(self, request: web.Request) -> web.Response:
        wanted = request.query.get("type")
        docs = {t: list(d.values()) for t, d in self.state.documents.items() if not wanted or t == wanted}
        return web.json_response(docs, dumps=_dumps)

    async def _stock(self, request: web.Request) -> web.Response:
        rows = [
            {"sku": sku, "site": site, "sub_location": sub, "on_hand": str(qty)}
            for (sku, site, sub), qty in sorted(self.state.stock.items())
        ]
        return web.json_response({"items": rows})

    async def _ledger(self, request: web.Request) -> web.Response:
        entries = [
            {
                "document_type": e.document_type,
                "document_id": e.document_id,
                "account": e.account,
                "debit": str(e.debit),
                "credit": str(e.credit),
                "currency": e.currency,
                "posted_at": e.posted_at,
            }
            for e in self.state.ledger
        ]
        return web.json_response({"entries": entries, **self.state.trial_balance()})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"plan": self.faults.plan.to_json(), "injected": self.faults.injected})

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            plan = FaultPlan.from_json(parse_json_body(await request.read()))
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.set(plan)
        return web.json_response({"plan": plan.to_json()})

    async def _get_notifications(self, request: web.Request) -> web.Response:
        notifier = self.notifier
        return web.json_response({"config": notifier.config.public(), "stats": notifier.stats.as_dict()})

    async def _put_notifications(self, request: web.Request) -> web.Response:
        """Replace the notification settings; fields left out keep their current value."""
        try:
            body = parse_json_body(await request.read())
            if not isinstance(body, dict):
                raise TypeError("the body must be a JSON object of notification settings")
            current = self.notifier.config.model_dump()
            config = NotifierConfig.model_validate(current | body)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.notifier.configure(config)
        return web.json_response({"config": config.public()})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


class RunningSimulator:
    """An app bound to a loopback port; ``await start()`` then ``url`` is ready to use."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> RunningSimulator:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # read back the port the OS chose
            self.port = int(self._runner.addresses[0][1])
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, default=str)
