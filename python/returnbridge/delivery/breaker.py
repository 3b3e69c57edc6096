"""A target's circuit breaker: while its ERP is down, stop spending the documents' attempts on it.

Every attempt counts and backs off (``retry.py``), so an outage longer than the retry budget dead-lettered every
document in flight, each waiting for a replay by hand, and the backoff it grew kept the backlog waiting up to a
whole outage's length after the ERP was back. The breaker opens when the ERP looks down:
- ``failures`` calls in a row failed (no answer, a deadline overrun, a 5xx; throttling and refusals are answers)
  and nothing answered for ``open_after_seconds``: an outage, even under a trickle of calls; or
- at least ``failures`` of the calls of the last ``window_seconds`` failed, and at least ``failure_ratio`` of
  them: an ERP that answers now and then (one call in ten, say) never goes quiet, yet hammering it helps no one.
Open, the worker stops fetching for the target, hands back what it holds without counting an attempt, and
probes the ERP with one look-up of a reference nobody uses every ``probe_seconds``. The first answer closes it,
forgets the window, and the backlog flows again at once. One breaker per target and worker process: each
decides from its own calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

from returnbridge.errors import ErpError
from returnbridge.observability.metrics import set_breaker_open

__all__ = ["PROBE_REFERENCE", "Breaker", "BreakerSettings"]

log = logging.getLogger(__name__)

#: The external reference the probe looks up: a look-up that finds nothing is an answer.
PROBE_REFERENCE = "RB-BREAKER-PROBE"


class BreakerSettings(BaseModel):
    """The ``delivery.breaker`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Failed calls in a row, and seconds without an answer, before the target counts as down: a 20 % error rate
    # under load never gets there (answers keep coming), an outage does within seconds. 2 s: under load, about
    # one attempt of each document in flight is spent on a down ERP (10 s spent five: ~2,000 refused requests
    # in a 60 s outage of 2,000 returns, benchmarks/README.md).
    failures: int = Field(default=10, ge=1)
    open_after_seconds: float = Field(default=2.0, ge=0)
    # ... or this share of the calls of the last window failed (at least ``failures`` of them). 0.8: a 20 % or
    # even 50 % error rate is ridden out by the retry budget and never gets there.
    failure_ratio: float = Field(default=0.8, gt=0, le=1)
    window_seconds: float = Field(default=10.0, gt=0)
    # While open: one look-up this often; its answer closes the breaker.
    probe_seconds: float = Field(default=5.0, gt=0)


class _Window:
    """Answered and failed calls of the last ``seconds``, in one-second buckets (thousands of calls a second)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._buckets: deque[list[int]] = deque()  # [second, answered, failed]
        self.answered = 0
        self.failed = 0

    def add(self, now: float, *, answered: bool) -> None:
        self._expire(now)
        second = int(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        bucket = self._buckets[-1]
        if answered:
            bucket[1] += 1
            self.answered += 1
        else:
            bucket[2] += 1
            self.failed += 1

    def clear(self) -> None:
        self._buckets.clear()
        self.answered = self.failed = 0

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.seconds - 1:
            _, answered, failed = self._buckets.popleft()
            self.answered -= answered
            self.failed -= failed


class Breaker:
    """Counts a target's ERP calls; ``is_open`` while the ERP looks down, until ``probe`` gets an answer.

    ``probe``: one counted ERP call (it reports ``answered``/``failed`` itself); run every ``probe_seconds`` while
    open. It raises an ``ErpError`` on no answer; anything else is not the ERP failing to answer (a connector bug,
    say), so delivery resumes and the documents' own failure budget decides, rather than a breaker that never
    closes.
    """

    def __init__(
        self,
        target: str,
        settings: BreakerSettings,
        probe: Callable[[], Awaitable[object]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.settings = settings
        self._probe = probe
        self._clock = clock
        self._failed_in_row = 0
        self._last_answer = clock()
        self._window = _Window(settings.window_seconds)
        self._closed = asyncio.Event()
        self._closed.set()
        self._probing: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    @property
    def answering(self) -> bool:
        """Closed, and no call failed since the last answer: the ERP is (still) up as far as calls tell."""
        return self._failed_in_row == 0 and not self.is_open

    def answered(self) -> None:
        """The ERP answered a call (a document, nothing found, a refusal, throttling)."""
        self._failed_in_row = 0
        self._last_answer = self._clock()
        self._window.add(self._last_answer, answered=True)
        if self.is_open:
            log.warning("ERP of %s answers again: delivery resumes", self.target)
            self._window.clear()  # the failures that opened it must not open it again at the next one
            self._closed.set()  # the probing task ends at its next turn
            set_breaker_open(self.target, False)

    def failed(self) -> None:
        """A call got no answer (connection refused, deadline, 5xx)."""
        self._failed_in_row += 1
        now = self._clock()
        self._window.add(now, answered=False)
        s = self.settings
        if not s.enabled or self.is_open:
            return
        window = self._window
        silent = self._failed_in_row >= s.failures and now - self._last_answer >= s.open_after_seconds
        failing = window.failed >= s.failures and window.failed >= s.failure_ratio * (
            window.failed + window.answered
        )
        if silent or failing:
            log.warning(
                "ERP of %s down (%d calls in a row failed, no answer for %.1f s; %d of %d calls failed in "
                "%g s): delivery paused, probing every %g s",
                self.target,
                self._failed_in_row,
                now - self._last_answer,
                window.failed,
                window.failed + window.answered,
                s.window_seconds,
                s.probe_seconds,
            )
            self._closed.clear()
            set_breaker_open(self.target, True)
            if self._probing is None or self._probing.done():  # one closed a moment ago may still be asleep
                self._probing = asyncio.get_running_loop().create_task(
                    self._probe_until_answered(), name=f"probe-{self.target}"
                )

    async def wait_closed(self, timeout: float) -> bool:
        """True once closed; False if still open after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop probing (a probe in its ERP call must not hold up a shutdown); a stopped worker pauses nothing."""
        if self.is_open:
            set_breaker_open(self.target, False)
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing

    async def _probe_until_answered(self) -> None:
        while self.is_open:
            await asyncio.sleep(self.settings.probe_seconds)
            try:
                await self._probe()
            except ErpError as exc:
                log.info("probe of %s's ERP failed: %r", self.target, exc)
            except Exception as exc:  # noqa: BLE001 - see the class: resume rather than stay open for good
                log.warning("probe of %s failed unexpectedly, resuming delivery: %r", self.target, exc)
                self.answered()
