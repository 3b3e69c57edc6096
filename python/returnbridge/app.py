"""Composition root: builds every component from Settings, starts them in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.config import Settings
from returnbridge.gateway.server import GrpcServer

log = logging.getLogger(__name__)

Cleanup = Callable[[], Awaitable[None]]


@dataclass
class Endpoints:
    """Where the running service can be reached (printed by ``serve``, used by tests)."""

    grpc: str = ""
    nats: str = ""
    metrics: str = ""
    simulators: dict[str, str] = field(default_factory=dict)


class App:
    """The running service. ``await start()``, then ``await stop()`` (always safe, also after a failed start)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoints = Endpoints()
        self.nats_server: EmbeddedNatsServer | None = None
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.grpc: GrpcServer | None = None
        # Undo steps in start order; stop() runs them in reverse, so a half-finished start unwinds cleanly.
        self._cleanups: list[tuple[str, Cleanup]] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self._start_nats()
        self.grpc = GrpcServer(settings.grpc)
        port = await self.grpc.start()
        self._cleanups.append(("grpc", self._stop_grpc))
        self.endpoints.grpc = f"{settings.grpc.host}:{port}"
        await self.grpc.set_serving(True)
        log.info("returnbridge ready: gRPC %s, NATS %s", self.endpoints.grpc, self.endpoints.nats)

    async def _start_nats(self) -> None:
        settings = self.settings
        url = settings.nats.url
        if url is None:
            self.nats_server = EmbeddedNatsServer(
                settings.data_dir / "nats", port=settings.nats.port, sync_always=settings.nats.sync_always
            )
            # Started from the main thread on purpose (parent-death signal, see EmbeddedNatsServer.start).
            self.nats_server.start()
            self._cleanups.append(("nats-server", self.nats_server.astop))
            url = self.nats_server.url
        self.endpoints.nats = url
        self.nc = await nats.connect(
            servers=url.split(","),
            connect_timeout=settings.nats.connect_timeout,
            user_credentials=str(settings.nats.credentials_file) if settings.nats.credentials_file else None,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            name="returnbridge",
        )
        self._cleanups.append(("nats-client", self._close_nats))
        self.js = self.nc.jetstream()

    async def _stop_grpc(self) -> None:
        if self.grpc is not None:
            await self.grpc.stop()

    async def _close_nats(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def stop(self) -> None:
        """Stop everything that was started, newest first; errors are logged, never stop the unwinding."""
        while self._cleanups:
            name, cleanup = self._cleanups.pop()
            try:
                await cleanup()
            except Exception:  # keep unwinding: one failed step must not orphan the rest
                log.exception("error while stopping %s", name)
        self._stopped.set()

    async def run_until_signal(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        try:
            await stop_requested.wait()
            log.info("shutdown requested; draining")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
