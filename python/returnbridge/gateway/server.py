"""The grpc.aio server: our services, standard health and reflection, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import admin_pb2, inventory_pb2, returns_pb2, translation_pb2
from returnbridge.errors import ConfigError
from returnbridge.gateway.admission import AdmissionSettings

log = logging.getLogger(__name__)

#: Every service of the v1 contract; reflection lists them all, implemented or not.
API_SERVICES: tuple[str, ...] = (
    returns_pb2.DESCRIPTOR.services_by_name["ReturnsService"].full_name,
    translation_pb2.DESCRIPTOR.services_by_name["TranslationService"].full_name,
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class GrpcSettings(BaseModel):
    """The ``grpc:`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    # Calls the core queues before the application takes them; grpc's default (~1,000) CANCELs the rest.
    max_pending_requests: int = Field(default=20_000, ge=1)
    # How long a queued call may wait for the application before grpc CANCELs it (grpc's default: 30 s).
    # A burst of 10,000 submissions takes longer than 30 s to drain on 2 cores.
    max_queued_seconds: int = Field(default=300, ge=1)
    max_receive_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_send_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Seconds in-flight calls get to finish on SIGTERM/SIGINT.
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    reflection: bool = True
    # Several gateway processes listen on one port and the kernel spreads connections (set by ``serve``).
    so_reuseport: bool = False
    # HTTP/2 streams one connection may have open (SETTINGS_MAX_CONCURRENT_STREAMS); 0 = grpc's default
    # (unbounded). Bounded, a bulk client's excess calls wait in its own transport instead of this event loop,
    # while another connection (a probe, a small tenant) still gets its streams at once. 32: in a 10,000-call spike
    # (benchmarks/README.md) every call was accepted, none shed, at 1.85x the unbounded rate, gateway RSS flat.
    max_concurrent_streams: int = Field(default=32, ge=0)
    # Tenant-fair queue and load shedding for submissions (gateway.admission).
    admission: AdmissionSettings = AdmissionSettings()


def server_options(settings: GrpcSettings) -> list[tuple[str, Any]]:
    # grpc's "overload protection" (on by default) counts a stream until the server freed it, while the client counts
    # HTTP/2's closed streams: a client reusing a slot a moment early was refused (RST_STREAM REFUSED_STREAM ->
    # UNAVAILABLE; retried until the retry throttle ran out, then 80 % of a spike failed). The HTTP/2 count alone.
    bounded = [
        ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
        ("grpc.http.overload_protection", 0),
    ]
    return [
        *(bounded if settings.max_concurrent_streams else []),
        ("grpc.server.max_pending_requests", settings.max_pending_requests),
        ("grpc.server.max_pending_requests_hard_limit", settings.max_pending_requests),
        ("grpc.server_max_unrequested_time_in_server", settings.max_queued_seconds),
        ("grpc.max_receive_message_length", settings.max_receive_message_bytes),
        ("grpc.max_send_message_length", settings.max_send_message_bytes),
        ("grpc.so_reuseport", int(settings.so_reuseport)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ]


class GrpcServer:
    """Owns a ``grpc.aio.Server`` plus its health servicer.

    Health starts NOT_SERVING; the app flips it to SERVING once NATS is connected and streams exist,
    and back to NOT_SERVING when draining.
    """

    def __init__(
        self,
        settings: GrpcSettings,
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self.settings = settings
        self._credentials = credentials
        self.server = grpc.aio.server(interceptors=list(interceptors), options=server_options(settings))
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._registered: list[str] = []
        self.port = 0

    def add_service(
        self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, service_name: str
    ) -> None:
        """Register one servicer, e.g. ``add_service(add_ReturnsServiceServicer_to_server, s, NAME)``."""
        register(servicer, self.server)
        self._registered.append(service_name)

    @property
    def registered_services(self) -> list[str]:
        return list(self._registered)

    async def start(self) -> int:
        if self.settings.reflection:
            reflection.enable_server_reflection(
                (*API_SERVICES, HEALTH_SERVICE, reflection.SERVICE_NAME), self.server
            )
        address = f"{self.settings.host}:{self.settings.port}"
        try:
            if self._credentials is not None:
                self.port = self.server.add_secure_port(address, self._credentials)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigError(f"grpc: cannot listen on {address} (grpc.host/grpc.port): {exc}") from None
        await self.server.start()
        await self.set_serving(False)
        log.info("gRPC listening on %s:%d", self.settings.host, self.port)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *API_SERVICES):
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight calls finish within ``grace`` seconds, then cancel the rest."""
        await self.set_serving(False)
        await self.server.stop(self.settings.shutdown_grace_seconds if grace is None else grace)
