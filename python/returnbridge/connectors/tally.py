"""Counts the HTTP requests a connector call sends, so callers can report ERP calls per document."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class RequestTally:
    """Requests sent inside one ``tally_requests()`` block (token fetches excluded)."""

    count: int = 0


# A mutable tally in a context variable: tasks started inside the block (asyncio.wait_for) copy the
# context, so they add to the same object.
_CURRENT: ContextVar[RequestTally | None] = ContextVar("rb_erp_request_tally", default=None)


@contextlib.contextmanager
def tally_requests() -> Iterator[RequestTally]:
    """Count the ERP requests sent while the block runs (nested blocks count into their own tally)."""
    tally = RequestTally()
    token = _CURRENT.set(tally)
    try:
        yield tally
    finally:
        _CURRENT.reset(token)


def note_request() -> None:
    """Called by the transports once per request put on the wire."""
    tally = _CURRENT.get()
    if tally is not None:
        tally.count += 1
