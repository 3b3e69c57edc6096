"""One served app (NATS, simulators, gRPC, console) per test module; the console is reached over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from returnbridge.bus.embedded import EmbeddedNatsServer

from .harness import ServedApp


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    root = tmp_path_factory.mktemp("console")
    nats_server = EmbeddedNatsServer(root / "nats", sync_always=False)
    nats_server.start()
    app = ServedApp(root / "data", nats_server.url)
    try:
        app.start()
        yield app
    finally:
        try:
            app.stop()
        finally:
            nats_server.stop()
