"""An App started for a test and stopped after it, whatever the test did."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from returnbridge.app import App
from returnbridge.config import Settings


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[App]:
    app = App(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
