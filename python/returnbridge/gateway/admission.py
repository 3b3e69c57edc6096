"""Admission control: a bounded, tenant-fair queue for submissions; reads never wait behind them; shedding.

Without it a spike of 10,000 submissions queues inside grpc for minutes (p99 157 s) and starves every other
caller of the event loop. Here only ``work`` methods (submissions, batch translation) take a slot: at most
``max_in_flight`` run at once, the rest wait in per-tenant queues, and a freed slot goes to the waiting tenant
with the fewest calls in flight, so a small tenant is served next even behind a bulk tenant's thousands. Reads
(status, watch, inventory, admin) are their own lane and never queue here. Once ``max_queued`` wait, or a
call waited ``max_queue_seconds``, calls are shed with RESOURCE_EXHAUSTED and a RetryInfo (and the
``grpc-retry-pushback-ms`` trailer the shipped client retry policy honours) estimated from the drain rate.

The lanes are scheduled, not only separated: while anyone else is being served (a read in the last
``contended_seconds``, or submissions of a second tenant) the bound drops to ``contended_in_flight``. The
event loop runs callbacks in arrival order, so a read waits behind every submission whose NATS answer came in
the same burst. In a 10,000-call spike on 2 cores, with 4 in flight per process (8 for the port) instead of 128, a
probe's p99 went from 64-113x its idle p99 to 9.5-14x and another tenant's submissions from a 1.24 s median to
20 ms, for 15-30 % fewer of the bulk client's submissions per second; the default of 4 for the port cuts the
probe's spike p99 by another quarter and the other tenant's by 40 % for 17 % of the bulk rate
(benchmarks/README.md). A bulk client alone keeps the whole bound.

Under ``serve`` the gateway processes of one port share an admission board (gateway/admission_board.py): the
bounds are the port's, a process takes what the others leave (at least an equal share while they are busy), and
a read or a second tenant on any of them makes every one of them yield.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import BaseModel, ConfigDict, Field

from returnbridge.errors import RateLimitedError
from returnbridge.gateway.admission_board import (
    NO_TENANT,
    SEVERAL_TENANTS,
    AdmissionBoard,
    Others,
    combine_tenants,
    tenant_code,
)

__all__ = ["WORK_METHODS", "Admission", "AdmissionSettings"]

#: Calls that say nothing about another caller waiting: a load balancer's health checks, reflection.
_NOT_A_READER = ("/grpc.health.v1.Health/", "/grpc.reflection.")

#: The methods that do durable work per call; everything else is a read and is not queued.
WORK_METHODS = frozenset(
    {
        "/returnbridge.api.v1.ReturnsService/SubmitReturn",
        "/returnbridge.api.v1.ReturnsService/SubmitReturns",
        "/returnbridge.api.v1.TranslationService/TranslateBatch",
    }
)


class AdmissionSettings(BaseModel):
    """The ``grpc.admission`` config section (per gateway process)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Submissions worked on at once while the bulk caller is alone: enough to keep NATS busy.
    max_in_flight: int = Field(default=256, ge=1)
    # ... and while someone else is served (a read lately, a second tenant's submissions): few enough that the
    # other caller finds the event loop nearly free.
    contended_in_flight: int = Field(default=4, ge=1)
    # How long after a read the bound stays at contended_in_flight.
    contended_seconds: float = Field(default=2.0, gt=0)
    # Waiting submissions beyond which new ones are shed at once.
    max_queued: int = Field(default=4096, ge=0)
    # Longest a submission waits for a slot before it is shed (bounds the submit latency a client sees).
    max_queue_seconds: float = Field(default=10.0, gt=0)
    # Bounds of the retry hint sent with a shed call.
    min_retry_after_seconds: float = Field(default=0.2, gt=0)
    max_retry_after_seconds: float = Field(default=30.0, gt=0)
    # Set by ``serve`` for its gateway processes: the board they share (gateway/admission_board.py) and this
    # process's record on it; the bounds above are then the port's.
    shared_board: str | None = None
    board_slot: int = Field(default=0, ge=0)


class _Waiter:
    __slots__ = ("future", "tenant")

    def __init__(self, tenant: str, future: asyncio.Future[None]) -> None:
        self.tenant = tenant
        self.future = future


class Admission:
    """One per gateway process; ``slot(method, tenant)`` holds a work slot for the ``async with`` block.

    ``board``: the port's admission board when several processes share the port (opened from
    ``settings.shared_board`` when not given).
    """

    def __init__(
        self, settings: AdmissionSettings | None = None, board: AdmissionBoard | None = None
    ) -> None:
        self.settings = settings or AdmissionSettings()
        if board is None and self.settings.shared_board:
            board = AdmissionBoard(self.settings.shared_board, self.settings.board_slot)
        self._board = board
        self.in_flight = 0
        self.queued = 0
        self._by_tenant: dict[str, int] = {}
        # Tenants with waiters, each with its FIFO; insertion order breaks ties between equal tenants.
        self._waiting: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        self._rate = 0.0  # completions per second, smoothed
        self._last_done = time.monotonic()
        self._last_read = -math.inf

    def close(self) -> None:
        if self._board is not None:
            self._board.close()
            self._board = None

    def capacity(self) -> int:
        """Work slots now: ``max_in_flight`` for a caller alone, ``contended_in_flight`` while others wait.

        On a shared board these are the port's: this process takes what the other processes leave of it, and at
        least an equal share while they have work.
        """
        s = self.settings
        others = self._board.others() if self._board is not None else None
        bound = s.max_in_flight
        if self._contended(others):
            bound = min(s.contended_in_flight, bound)
        if others is None:
            return bound
        return max(-(-bound // (others.busy + 1)), bound - others.in_flight)

    def _contended(self, others: Others | None) -> bool:
        s = self.settings
        now = time.monotonic()
        if now - self._last_read < s.contended_seconds or self._tenants_with_work() > 1:
            return True
        if others is None:
            return False
        if now - others.last_read < s.contended_seconds:
            return True
        return combine_tenants(others.tenants, self._tenants_code()) == SEVERAL_TENANTS

    def _tenants_with_work(self) -> int:
        return len(self._by_tenant) + sum(1 for tenant in self._waiting if tenant not in self._by_tenant)

    def _tenants_code(self) -> int:
        """The tenants this process has submissions of, as posted on the board."""
        count = self._tenants_with_work()
        if count == 0:
            return NO_TENANT
        if count > 1:
            return SEVERAL_TENANTS
        return tenant_code(next(iter(self._by_tenant or self._waiting)))

    def _post(self) -> None:
        if self._board is not None:
            self._board.post(self.in_flight, self.queued, self._last_read, self._tenants_code())

    @asynccontextmanager
    async def slot(self, method: str, tenant: str) -> AsyncIterator[None]:
        if not self.settings.enabled or method not in WORK_METHODS:
            if not method.startswith(_NOT_A_READER):
                self._last_read = time.monotonic()
                self._post()
            yield
            return
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release(tenant)

    def retry_after(self) -> float:
        """Seconds until the queue ahead of a new call has likely drained."""
        s = self.settings
        ahead = self.queued + 1
        estimate = ahead / self._rate if self._rate > 0 else s.min_retry_after_seconds
        return min(max(estimate, s.min_retry_after_seconds), s.max_retry_after_seconds)

    def _shed(self, why: str) -> RateLimitedError:
        wait = math.ceil(self.retry_after() * 1000) / 1000
        return RateLimitedError(
            f"server busy: {why}; retry after {wait:g} s", retry_after=wait, quota="server:queue"
        )

    async def _acquire(self, tenant: str) -> None:
        s = self.settings
        if not self._waiting and self.in_flight < self.capacity():
            self._take(tenant)
            self._post()
            return
        if self.queued >= s.max_queued:
            # Past the bound, only a tenant below its fair share of the queue may still wait (a small tenant
            # is not shed because a bulk one filled the queue); twice the bound sheds everyone.
            tenants = len(self._waiting) + (tenant not in self._waiting)
            own = len(self._waiting.get(tenant, ()))
            if self.queued >= 2 * s.max_queued or own >= s.max_queued // tenants:
                raise self._shed(f"{self.queued} submissions already waiting")
        waiter = _Waiter(tenant, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(tenant, deque()).append(waiter)
        self.queued += 1
        self._post()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout=s.max_queue_seconds)
        except TimeoutError:
            if not waiter.future.done():
                self._forget(waiter)
                raise self._shed(f"no slot within {s.max_queue_seconds:g} s") from None
        except asyncio.CancelledError:
            if waiter.future.done():
                self._release(tenant)  # granted as we were cancelled: hand the slot on
            else:
                self._forget(waiter)
            raise

    def _take(self, tenant: str) -> None:
        self.in_flight += 1
        self._by_tenant[tenant] = self._by_tenant.get(tenant, 0) + 1

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.tenant)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self.queued -= 1
            if not queue:
                del self._waiting[waiter.tenant]
            self._post()

    def _release(self, tenant: str) -> None:
        self.in_flight -= 1
        left = self._by_tenant.get(tenant, 1) - 1
        if left:
            self._by_tenant[tenant] = left
        else:
            self._by_tenant.pop(tenant, None)
        now = time.monotonic()
        elapsed = max(now - self._last_done, 1e-3)
        self._last_done = now
        self._rate = 0.9 * self._rate + 0.1 * (1.0 / elapsed) if self._rate else 1.0 / elapsed
        self._grant()
        self._post()

    def _grant(self) -> None:
        """Give free slots to the waiting tenants with the fewest calls in flight (fair share); between equals,
        the one with the shorter queue (a small tenant before a bulk spike)."""
        while self._waiting and self.in_flight < self.capacity():
            tenant = min(self._waiting, key=lambda t: (self._by_tenant.get(t, 0), len(self._waiting[t])))
            queue = self._waiting[tenant]
            waiter = queue.popleft()
            if not queue:
                del self._waiting[tenant]
            self.queued -= 1
            self._take(tenant)
            waiter.future.set_result(None)
