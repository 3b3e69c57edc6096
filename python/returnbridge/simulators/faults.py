"""Run-time switchable fault injection for the ERP simulators (an aiohttp middleware)."""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

CONTROL_PREFIX = "/_sim/"


@dataclass(slots=True)
class FaultPlan:
    """What goes wrong, and how often. All rates are probabilities in [0, 1].

    ``remaining`` limits how many requests the plan affects (None = unlimited), so a test can say
    "the next two calls fail with 503" deterministically.
    """

    error_rate: float = 0.0
    # Status codes drawn uniformly when an error is injected (429, 500, 503 ...).
    error_statuses: list[int] = field(default_factory=lambda: [503])
    # Seconds sent in Retry-After with 429 and 503.
    retry_after: int = 1
    # Added latency in milliseconds, uniform between min and max: the ERP's processing time. The request is read
    # first, so a client that gives up meanwhile leaves a request the ERP still completes (a late commit).
    latency_ms_min: int = 0
    latency_ms_max: int = 0
    # Every request fails with 503 (ERP down).
    outage: bool = False
    # Requests never get an answer (until the client times out).
    hang: bool = False
    # The request is applied, then the connection is dropped before the answer (the ambiguous failure).
    commit_then_drop_rate: float = 0.0
    # Only requests whose path matches this regex are affected ("" = all non-control paths).
    path_pattern: str = ""
    # Only these methods ("" = all); e.g. ["POST", "PUT"].
    methods: list[str] = field(default_factory=list)
    remaining: int | None = None
    seed: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultPlan:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(
                f"unknown fault settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        plan = cls(**body)
        for rate in ("error_rate", "commit_then_drop_rate"):
            if not 0.0 <= getattr(plan, rate) <= 1.0:
                raise ValueError(f"{rate} must be between 0 and 1")
        if plan.latency_ms_max < plan.latency_ms_min:
            raise ValueError("latency_ms_max must be >= latency_ms_min")
        return plan

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    """Holds the active plan and decides, per request, which fault (if any) applies."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.set(plan or FaultPlan())
        self.injected: dict[str, int] = {}

    def set(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._pattern = re.compile(plan.path_pattern) if plan.path_pattern else None

    def reset(self) -> None:
        self.set(FaultPlan())
        self.injected.clear()

    def _applies(self, request: web.Request) -> bool:
        plan = self.plan
        if plan.remaining is not None and plan.remaining <= 0:
            return False
        if plan.methods and request.method not in plan.methods:
            return False
        return not (self._pattern is not None and not self._pattern.search(request.path))

    def _count(self, kind: str, *, spend: bool = True) -> None:
        """Record an injected fault; ``spend``: it uses one of ``remaining`` (once per request)."""
        self.injected[kind] = self.injected.get(kind, 0) + 1
        if spend and self.plan.remaining is not None:
            self.plan.remaining -= 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX) or not self._applies(request):
            return await handler(request)
        plan = self.plan
        delayed = plan.latency_ms_max > 0
        if delayed:
            self._count("latency")  # counted before the wait, so a request sent meanwhile sees it spent
            await request.read()  # kept by aiohttp for the handler
            await asyncio.sleep(self._rng.uniform(plan.latency_ms_min, plan.latency_ms_max) / 1000)
        if plan.hang:
            self._count("hang", spend=not delayed)
            await asyncio.sleep(3600)
        if plan.outage:
            self._count("outage", spend=not delayed)
            return _error(503, plan.retry_after)
        if plan.error_rate and self._rng.random() < plan.error_rate:
            status = self._rng.choice(plan.error_statuses)
            self._count(f"status_{status}", spend=not delayed)
            return _error(status, plan.retry_after)
        if plan.commit_then_drop_rate and self._rng.random() < plan.commit_then_drop_rate:
            await handler(request)  # the ERP applies the change ...
            self._count("commit_then_drop", spend=not delayed)
            if request.transport is not None:  # ... and the answer never arrives.
                request.transport.abort()
            raise ConnectionResetError("simulated drop after commit")
        return await handler(request)


def _error(status: int, retry_after: int) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if status in (429, 503) else {}
    body = {"status": status, "title": "Simulated fault", "detail": f"injected {status}"}
    return web.json_response(body, status=status, headers=headers)
