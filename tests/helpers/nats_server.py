"""A real nats-server for a test: started on a free port and a store of the test's own, stopped afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from returnbridge.bus.embedded import EmbeddedNatsServer


@contextlib.contextmanager
def running_nats(store: Path, *, sync_always: bool) -> Iterator[EmbeddedNatsServer]:
    """``sync_always``: fsync every write, as served (a test that kills the server needs it)."""
    server = EmbeddedNatsServer(store, sync_always=sync_always)
    server.start()
    try:
        yield server
    finally:
        server.stop()
