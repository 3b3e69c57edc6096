"""An App started for a test and stopped after it, whatever the test did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from returnbridge.app import App
from returnbridge.config import Settings, load_settings


def local_settings(data_dir: Path, nats_url: str, **sections: Any) -> Settings:
    """An App on an external nats-server, every port chosen by the kernel, ``sections`` on top (top-level keys)."""
    overrides: dict[str, Any] = {
        "data_dir": str(data_dir),
        "nats": {"url": nats_url},
        "grpc": {"port": 0},
        "metrics": {"port": 0},
        "console": {"port": 0},
        **sections,
    }
    return load_settings(None, env={}, overrides=overrides)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[App]:
    app = App(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
