"""A target's circuit breaker: while its ERP is down, stop spending the documents' attempts on it.

Every attempt counts and backs off (``retry.py``), so an outage longer than the retry budget dead-lettered every
document in flight, each waiting for a replay by hand, and the backoff it grew kept the backlog waiting up to a
whole outage's length after the ERP was back. After ``failures`` calls in a row failed (no answer, a deadline
overrun, a 5xx; throttling and refusals are answers) with no answer for ``open_after_seconds``, the breaker
opens: the worker stops fetching for the target, hands back what it holds without counting an attempt, and
probes the ERP with one look-up of a reference nobody uses every ``probe_seconds``. The first answer closes it
and the backlog flows again at once. One breaker per target and worker process: each decides from its own calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
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
    # under load never gets there, an outage does within seconds.
    failures: int = Field(default=10, ge=1)
    open_after_seconds: float = Field(default=10.0, ge=0)
    # While open: one look-up this often; its answer closes the breaker.
    probe_seconds: float = Field(default=5.0, gt=0)


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
        self._closed = asyncio.Event()
        self._closed.set()
        self._probing: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    def answered(self) -> None:
        """The ERP answered a call (a document, nothing found, a refusal, throttling)."""
        self._failed_in_row = 0
        self._last_answer = self._clock()
        if self.is_open:
            log.warning("ERP of %s answers again: delivery resumes", self.target)
            self._closed.set()  # the probing task ends at its next turn
            set_breaker_open(self.target, False)

    def failed(self) -> None:
        """A call got no answer (connection refused, deadline, 5xx)."""
        self._failed_in_row += 1
        s = self.settings
        if (
            s.enabled
            and not self.is_open
            and self._failed_in_row >= s.failures
            and self._clock() - self._last_answer >= s.open_after_seconds
        ):
            log.warning(
                "ERP of %s down (%d calls in a row failed, no answer for %.0f s): delivery paused, probing "
                "every %g s",
                self.target,
                self._failed_in_row,
                self._clock() - self._last_answer,
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
        """Stop probing: a probe in its ERP call must not hold up a shutdown."""
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
