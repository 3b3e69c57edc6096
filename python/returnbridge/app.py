"""Composition root: builds every component from Settings, starts them in order and stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import aiohttp
import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import SecretStr

from returnbridge.api.v1 import admin_pb2_grpc, inventory_pb2_grpc, returns_pb2_grpc, translation_pb2_grpc
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.consumer import ensure_submitted_audit_consumer
from returnbridge.bus.durability import probe_sync_setting
from returnbridge.bus.embedded import EmbeddedNatsServer, client_login
from returnbridge.bus.id_key import load_tenant_ids
from returnbridge.bus.link import as_bus_unavailable
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import StreamsConfig, ensure_streams
from returnbridge.config import Settings
from returnbridge.connectors.base import Connector
from returnbridge.connectors.registry import build_connector, parse_connector_config
from returnbridge.delivery import DeadLetterStore, DeliveryWorker
from returnbridge.delivery.advisory import MaxDeliveriesListener
from returnbridge.delivery.orphans import OrphanSweeper
from returnbridge.delivery.submitted_audit import SubmittedAuditor
from returnbridge.domain.tenant_ids import TenantIds
from returnbridge.domain.validation import ReferenceData, full_validator
from returnbridge.errors import ConfigError
from returnbridge.gateway.admission import Admission
from returnbridge.gateway.auth import Authenticator, generate_api_key, server_credentials
from returnbridge.gateway.interceptors import build_interceptors
from returnbridge.gateway.security_config import ApiKeyConfig, SecurityConfig
from returnbridge.gateway.server import API_SERVICES, GrpcServer
from returnbridge.inbound import PATH as INBOUND_PATH
from returnbridge.inbound import InboundKey, InboundReceiver, InboundSettings, ReplayGuard, resolve_keys
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.service import TranslationServicer
from returnbridge.observability.alerts import Alerter
from returnbridge.observability.leader_advisories import StreamLeaderListener
from returnbridge.observability.metrics import start_metrics_server, stop_metrics_servers
from returnbridge.observability.monitor import QueueMonitor
from returnbridge.observability.tracing import setup_tracing
from returnbridge.private_file import write_private_file
from returnbridge.routing import Router
from returnbridge.services import AdminServicer, Intake, InventoryServicer, ReturnsServicer
from returnbridge.services.admission import Admissions
from returnbridge.services.serial_claims import SerialClaims
from returnbridge.simulators.faults import CONTROL_PREFIX
from returnbridge.simulators.notifier import NotifierConfig
from returnbridge.simulators.runner import EMBEDDED_TARGETS, SIMULATOR_NAMES, SimulatorSet, start_simulators
from returnbridge.sync import (
    InventoryStore,
    Poller,
    PollerSettings,
    PollTarget,
    PollTargetConfig,
    SyncStateStore,
)
from returnbridge.sync.inbound_dlq import InboundDeadLetters

log = logging.getLogger(__name__)

# How long start-up waits for JetStream to serve its streams (a cluster electing leaders, a node still joining).
_BUS_SETUP_SECONDS = 60.0


async def _set_up_bus(js: JetStreamContext, streams: StreamsConfig) -> tuple[dict[str, KeyValue], TenantIds]:
    """Create or open the streams and buckets and the shared id key, waiting out a leaderless moment.

    On a cluster, a stream another process has just created can have no leader yet: publishes get no responders
    and API calls 503 for a second or two. Every process of a deployment starts at once (``serve``, a restarted
    stack), so that moment is routine: start-up retries while the bus is only unavailable, not wrong.
    """
    deadline = time.monotonic() + _BUS_SETUP_SECONDS
    pause = 0.25
    while True:
        try:
            buckets = await ensure_streams(js, streams)
            return buckets, await load_tenant_ids(js, replicas=streams.replicas)
        except Exception as exc:
            if as_bus_unavailable(exc) is None or time.monotonic() + pause > deadline:
                raise
            log.warning("JetStream not ready at start-up (%s); retrying in %.1f s", type(exc).__name__, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


Cleanup = Callable[[], Awaitable[None]]

#: The simulators' master data as reference data, used on embedded defaults.
DEMO_REFERENCE_DATA = Path(__file__).parent / "simulators" / "demo_reference_data.yaml"
#: Tenant of the development principal and of the poller on embedded defaults.
DEMO_TENANT = "demo"
DEV_ROLES = ["submitter", "reader", "integration_admin", "auditor"]


@dataclass
class Endpoints:
    """Where the running service can be reached (printed by ``serve``, used by tests)."""

    grpc: str = ""
    nats: str = ""
    metrics: str = ""
    console: str = ""
    inbound: str = ""
    simulators: dict[str, str] = field(default_factory=dict)
    # Path of the generated development token, when no credentials were configured.
    dev_token_file: str = ""


class App:
    """The running service. ``await start()``, then ``await stop()`` (always safe, also after a failed start).

    ``settings.process`` selects the parts this process runs (gateway, delivery workers, ERP polling),
    so the same code scales out as many stateless processes on one NATS cluster.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoints = Endpoints()
        self.nats_server: EmbeddedNatsServer | None = None
        self.nc: NatsClient | None = None
        self.js: JetStreamContext | None = None
        self.grpc: GrpcServer | None = None
        self.simulators: SimulatorSet | None = None
        self.connectors: dict[str, Connector] = {}
        self.workers: list[DeliveryWorker] = []
        self.mappings: MappingRegistry | None = None
        # Undo steps in start order; stop() runs them in reverse, so a half-finished start unwinds cleanly.
        self._cleanups: list[tuple[str, Cleanup]] = []
        # True between a finished start and the beginning of stop: only then may a NATS reconnect restore SERVING.
        self._ready = False
        # False until a delivery worker is known to be up, when process.await_workers (serve's gateways).
        self._workers_up = not settings.process.await_workers
        self._alerter: Alerter | None = None
        self._alert_tasks: set[asyncio.Task[Any]] = set()
        # The nats_disconnected alert waiting out alerts.nats_disconnected_after_s (cancelled by a reconnect).
        self._nats_lost_alert: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Specs, routes and connector settings are compiled before anything starts: a bad file fails fast.
        self.mappings = MappingRegistry.load(settings.mapping.overrides, settings.mapping.packs_dirs)
        router = Router(settings.routing.load())

        shutdown_tracing = setup_tracing(settings.tracing)
        if shutdown_tracing is not None:
            self._cleanups.append(("tracing", _async(shutdown_tracing)))
        await self._start_nats()
        assert self.nc is not None and self.js is not None
        js = self.js
        buckets, ids = await _set_up_bus(js, settings.delivery.streams)
        publisher = Publisher(self.nc, js)
        status = SyncStateStore(buckets["rb_sync_state"], publisher, rma_index=buckets["rb_rma_index"])
        dead_letters = DeadLetterStore(js, publisher, status)
        serials = SerialClaims(buckets["rb_serials"], status)
        audit = await AuditLog.open(js, replicas=settings.delivery.streams.replicas)
        await self._audit_config_loaded(audit)

        alerter = Alerter(settings.alerts, nc=self.nc, incidents=buckets[subjects.INCIDENTS_BUCKET])
        self._cleanups.append(("alerter", alerter.aclose))
        self._alerter = alerter
        if settings.metrics.enabled:
            port = start_metrics_server(settings.metrics.host, settings.metrics.port)
            self._cleanups.append(("metrics", _async(stop_metrics_servers)))
            self.endpoints.metrics = f"http://{settings.metrics.host}:{port}/metrics"

        await self._start_connectors()
        process = settings.process
        if process.audit_scribe and (process.gateway or process.workers):
            # return.submitted entries, written from the stored submissions (off the submit path).
            scribe = SubmittedAuditor(js, audit)
            await scribe.start()
            self._cleanups.append(("audit-scribe", scribe.stop))
        await self._start_workers(js, status, dead_letters, alerter, audit)
        if settings.process.sync:
            await self._start_poller(buckets, publisher, js, alerter)
        if settings.process.monitor:
            monitor = QueueMonitor(js, settings.monitor, alerter=alerter)
            monitor.start()
            self._cleanups.append(("queue-monitor", monitor.stop))
            leaders = StreamLeaderListener(self.nc, alerter)
            await leaders.start()
            self._cleanups.append(("leader-advisories", leaders.stop))
            if settings.delivery.orphans.enabled:
                # Reservations whose gateway stopped before its publish are published (one process is enough).
                sweeper = OrphanSweeper(js, publisher, status, settings.delivery.orphans)
                await sweeper.start()
                self._cleanups.append(("reservation-sweeper", sweeper.stop))

        if settings.process.gateway:
            # Before anything is accepted: the audit scribe's consumer must see every submission.
            await ensure_submitted_audit_consumer(js)
            reference = self._reference_data()
            intake = Intake(
                router,
                publisher,
                buckets["rb_idempotency"],
                status,
                validator=full_validator(reference, settings.returns),
                admissions=Admissions(status, settings.returns, reference.currencies, serials=serials),
                constraints=self.mappings.constraints,
                mappers=self.mappings,
                verify_round_trip=settings.delivery.verify_round_trip,
            )
            self._cleanups.append(("intake-writes", intake.drain))  # after the gRPC server (newest first)
            security = self._security().with_open_reflection(settings.grpc.host)
            authenticator = Authenticator(security)
            admission = Admission(settings.grpc.admission)
            self._cleanups.append(("admission-board", _async(admission.close)))  # after the gRPC server
            self.grpc = GrpcServer(
                settings.grpc,
                interceptors=build_interceptors(
                    security,
                    authenticator=authenticator,
                    audit=audit,
                    alerter=alerter,
                    admission=admission,
                ),
                credentials=server_credentials(security),
            )
            returns_name, translation_name, inventory_name, admin_name = API_SERVICES
            self.grpc.add_service(
                returns_pb2_grpc.add_ReturnsServiceServicer_to_server,
                ReturnsServicer(intake, status, js, ids=ids),
                returns_name,
            )
            self.grpc.add_service(
                translation_pb2_grpc.add_TranslationServiceServicer_to_server,
                TranslationServicer(self.mappings, settings.translation),
                translation_name,
            )
            self.grpc.add_service(
                inventory_pb2_grpc.add_InventoryServiceServicer_to_server,
                InventoryServicer(InventoryStore(buckets["rb_inventory"]), ids=ids),
                inventory_name,
            )
            self.grpc.add_service(
                admin_pb2_grpc.add_AdminServiceServicer_to_server,
                AdminServicer(dead_letters, status, audit, ids=ids, serials=serials),
                admin_name,
            )
            port = await self.grpc.start()
            self._cleanups.append(("grpc", self._stop_grpc))
            self.endpoints.grpc = f"{settings.grpc.host}:{port}"
            if self._workers_up:
                await self.grpc.set_serving(True)
            await self._start_console(security, authenticator, port)
        self._ready = True
        log.info("returnbridge ready: gRPC %s, NATS %s", self.endpoints.grpc or "-", self.endpoints.nats)

    # ------------------------------------------------------------------ parts
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
            url = self.nats_server.public_url
            login = self.nats_server.credentials.connect_options()
        else:
            login = client_login(url, settings.data_dir, settings.nats.credentials_file)
        self.endpoints.nats = url
        refused: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            # nats-py retries refused credentials forever; at startup that is a configuration error.
            refusal = (
                isinstance(exc, nats.errors.AuthorizationError)
                or "authorization violation" in str(exc).lower()
            )
            if refusal and not refused.done():
                refused.set_result(None)
            log.warning("nats: %s", exc)

        connecting = asyncio.ensure_future(
            nats.connect(
                servers=url.split(","),
                **login,
                connect_timeout=settings.nats.connect_timeout,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                name="returnbridge",
                error_cb=on_error,
                # Health follows the NATS link: nothing can be accepted durably while it is down.
                disconnected_cb=self._nats_down,
                reconnected_cb=self._nats_up,
            )
        )
        waiting: set[asyncio.Future[Any]] = {connecting, refused}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, nats.errors.Error, TimeoutError):
                await connecting
            raise ConfigError(
                f"nats: {url} refused our credentials (nats.credentials_file; for the embedded server of this "
                f"host, {settings.data_dir / 'nats' / 'client-auth.json'})"
            )
        try:
            self.nc = connecting.result()
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            raise ConfigError(f"nats: cannot connect to {url} (nats.url): {exc!r}") from None
        self._cleanups.append(("nats-client", self._close_nats))
        self.js = self.nc.jetstream()
        if settings.nats.url is not None and settings.nats.durability_check != "skip":
            await self._check_durability()

    async def _check_durability(self) -> None:
        """An external server decides whether acknowledged writes survive a power cut: say so, or refuse."""
        assert self.nc is not None
        nats_settings = self.settings.nats
        seen = await probe_sync_setting(self.nc, nats_settings.monitor_url)
        if seen.sync_always:
            log.info("nats: JetStream fsyncs every write (sync_always, from %s)", seen.source)
            return
        if seen.sync_always is None:
            problem = f"cannot tell whether JetStream fsyncs every write ({seen.source})"
        else:
            interval = (
                f"every {seen.sync_interval_seconds:g} s" if seen.sync_interval_seconds else "periodically"
            )
            problem = (
                f"JetStream on {nats_settings.url} fsyncs only {interval} (sync_always off, from {seen.source}): "
                "acknowledged submissions can be lost in a power cut"
            )
        if nats_settings.durability_check == "refuse":
            raise ConfigError(
                f"nats.durability_check: {problem}; set 'jetstream {{ sync_interval: always }}' on the server, "
                "give nats.monitor_url, or set nats.durability_check: warn"
            )
        log.warning("nats: %s (nats.durability_check: warn)", problem)

    async def _nats_down(self) -> None:
        log.warning("NATS connection lost; health NOT_SERVING until it is back")
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        self._nats_alert(lost=True)

    async def _nats_up(self) -> None:
        log.info("NATS connection restored")
        if self.grpc is not None and self._ready and self._workers_up:
            await self.grpc.set_serving(True)
        self._nats_alert(lost=False)

    def _nats_alert(self, *, lost: bool) -> None:
        """``nats_disconnected`` from the monitor process only: a NATS restart cuts every process at once, and
        with NATS down the processes cannot share incidents, so each would notify. Runs off the client's
        callback (the webhook may be slow); the shared records are skipped while the link is down.

        Only a link still down after ``alerts.nats_disconnected_after_s`` pages: a client whose node of a cluster
        died reconnects to another within milliseconds, and that node's loss already pages once as
        ``stream_leader_elected``."""
        alerter = self._alerter
        # Not while stopping: closing the client calls the disconnected callback too.
        if alerter is None or not self.settings.process.monitor or not self._ready:
            return
        key = "nats"
        if lost:
            if self._nats_lost_alert is None:  # else already waiting out the grace
                self._nats_lost_alert = self._alert_task(self._alert_nats_still_lost(alerter, key))
            return
        if self._nats_lost_alert is not None:
            self._nats_lost_alert.cancel()  # back within the grace: nothing was sent
            self._nats_lost_alert = None
        self._alert_task(alerter.resolve(kind="nats_disconnected", key=key))

    def _alert_task(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run an alert call off the NATS client's callback, holding the task until it ends."""
        task = asyncio.ensure_future(call)
        self._alert_tasks.add(task)
        task.add_done_callback(self._alert_tasks.discard)
        return task

    async def _alert_nats_still_lost(self, alerter: Alerter, key: str) -> None:
        grace = self.settings.alerts.nats_disconnected_after_s
        await asyncio.sleep(grace)
        self._nats_lost_alert = None  # past the grace: a reconnect from now on resolves what this sends
        if self.nc is not None and self.nc.is_connected:
            return
        await alerter.alert(
            kind="nats_disconnected",
            key=key,
            severity="critical",
            summary="returnbridge lost its NATS connection; submissions are refused until it is back",
            details={"pid": str(os.getpid()), "down_for_s": f"{grace:g}"},
        )

    def _embedded_defaults(self) -> bool:
        """Connectors point at the bundled simulators (started here, or by the ``serve`` supervisor)."""
        settings = self.settings
        return settings.process.bundled_simulators or (
            settings.simulators.enabled and not settings.connectors
        )

    def _reference_data(self) -> ReferenceData:
        """The configured reference data; on embedded defaults (simulators, nothing configured) the demo's."""
        settings = self.settings
        configured = settings.reference_data.model_dump(exclude_defaults=True)
        if not configured and self._embedded_defaults():
            return ReferenceData.from_yaml(DEMO_REFERENCE_DATA)
        return ReferenceData.from_config(settings.reference_data)

    async def _start_connectors(self) -> None:
        settings = self.settings
        configs: dict[str, Any] = dict(settings.connectors)
        if settings.simulators.enabled:
            self.simulators = await start_simulators(settings.simulators)
            self._cleanups.append(("simulators", self.simulators.stop))
            self.endpoints.simulators = self.simulators.urls
            if not configs:
                configs = {
                    name: parse_connector_config(cfg, source=f"simulator {name}")
                    for name, cfg in self.simulators.connector_configs().items()
                }
        for name, config in configs.items():
            self.connectors[name] = build_connector(config)
        self._cleanups.append(("connectors", self._close_connectors))

    async def _start_workers(
        self,
        js: JetStreamContext,
        status: SyncStateStore,
        dead_letters: DeadLetterStore,
        alerter: Alerter,
        audit: AuditLog,
    ) -> None:
        wanted = self.settings.process.workers
        targets = list(self.connectors) if "*" in wanted else wanted
        unknown = [t for t in targets if t not in self.connectors]
        if unknown:
            raise ConfigError(
                f"process.workers: no connector configured for {unknown} (connectors: {sorted(self.connectors)})"
            )
        assert self.mappings is not None
        for target in targets:
            worker = DeliveryWorker(
                target,
                self.connectors[target],
                self.mappings,
                js,
                status,
                dead_letters,
                self.settings.delivery,
                alerter=alerter,
                audit=audit,
            )
            await worker.start()
            self.workers.append(worker)
        self._cleanups.append(("workers", self._stop_workers))
        if targets:
            assert self.nc is not None
            advisories = MaxDeliveriesListener(self.nc, dead_letters, status, alerter=alerter, audit=audit)
            await advisories.start()
            self._cleanups.append(("max-deliveries-advisory", advisories.stop))

    async def _start_poller(
        self, buckets: dict[str, Any], publisher: Publisher, js: JetStreamContext, alerter: Alerter
    ) -> None:
        poll: PollerSettings = self.settings.sync
        target_configs = list(poll.targets)
        if not target_configs and self._embedded_defaults():
            # Embedded defaults: every simulator target feeds the demo tenant.
            target_configs = [PollTargetConfig(target=t, tenant=DEMO_TENANT) for t in EMBEDDED_TARGETS]
        targets = []
        for config in target_configs:
            if config.target not in self.connectors:
                raise ConfigError(f"sync.targets: no connector configured for target {config.target!r}")
            targets.append(PollTarget(config, self.connectors[config.target]))
        if not targets:
            return
        assert self.mappings is not None
        poller = Poller(
            targets,
            self.mappings,
            buckets["rb_cursors"],
            InventoryStore(buckets["rb_inventory"]),
            buckets["rb_sync_state"],
            publisher,
            poll,
            status_store=SyncStateStore(
                buckets["rb_sync_state"], publisher, rma_index=buckets["rb_rma_index"]
            ),
            inbound_dlq=InboundDeadLetters(js, buckets["rb_sync_state"]),
            reference=self._reference_data(),
            alerter=alerter,
        )
        await poller.start()
        self._cleanups.append(("poller", poller.stop))
        await self._start_inbound(poller, buckets)

    async def _start_inbound(self, poller: Poller, buckets: dict[str, Any]) -> None:
        """The webhook receiver; on embedded defaults each simulator gets a fresh key and pushes to it."""
        settings: InboundSettings = self.settings.inbound
        if not settings.enabled:
            return
        keys = list(settings.keys)
        polled = {t.config.target: (t.connector.erp, t.config.tenant) for t in poller.targets}
        remote_sims = self.settings.process.simulator_urls
        embedded = not keys and (
            (self.simulators is not None and not self.settings.connectors) or bool(remote_sims)
        )
        # Embedded defaults: a fresh key per simulator whose target is polled, for the tenant it is polled for.
        sims = {
            sim: target
            for sim, target in zip(SIMULATOR_NAMES, EMBEDDED_TARGETS, strict=True)
            if embedded and target in polled
        }
        if embedded:
            keys = [
                InboundKey(
                    key_id=f"sim-{sim}",
                    tenant=polled[target][1],
                    target=target,
                    secret=SecretStr(token_urlsafe(32)),
                )
                for sim, target in sims.items()
            ]
        if not keys:
            return
        receiver = InboundReceiver(
            resolve_keys(keys, polled),
            poller,
            ReplayGuard(buckets["rb_inbound_seen"]),
            max_body_bytes=settings.max_body_bytes,
            window_seconds=settings.replay_window_seconds,
            read_timeout_seconds=settings.read_timeout_seconds,
        )
        port = await receiver.start(settings.host, settings.port)
        self._cleanups.append(("inbound", receiver.stop))
        self.endpoints.inbound = f"http://{settings.host}:{port}{INBOUND_PATH}"
        if embedded:
            for sim, key in zip(sims, keys, strict=True):
                assert key.secret is not None
                config = NotifierConfig(
                    enabled=True, url=self.endpoints.inbound, key_id=key.key_id, secret=key.secret
                )
                if self.simulators is not None:
                    self.simulators.kits[sim].notifier.configure(config)
                else:
                    await configure_remote_notifier(remote_sims[sim], config)

    async def _start_console(
        self, security: SecurityConfig, authenticator: Authenticator, grpc_port: int
    ) -> None:
        """The web console calls this process's gRPC API over loopback with each user's own credential."""
        settings = self.settings.console
        if not settings.enabled:
            return
        if security.tls is not None:
            # The loopback channel would need the server's certificate and, with mTLS, a client identity.
            log.warning(
                "console: not started, the gRPC API is served over TLS (not yet supported by the console)"
            )
            return
        from returnbridge.console import ConsoleServer

        assert self.mappings is not None
        grpc_host = (
            self.settings.grpc.host
            if self.settings.grpc.host not in ("0.0.0.0", "::", "[::]")
            else "127.0.0.1"
        )
        console = ConsoleServer(
            settings,
            authenticator=authenticator,
            grpc_target=f"{grpc_host}:{grpc_port}",
            mapping_ids=self.mappings.ids(),
        )
        port = await console.start()
        self._cleanups.append(("console", console.stop))
        self.endpoints.console = f"http://{settings.host}:{port}/"

    def _security(self) -> SecurityConfig:
        """Configured security; with no credentials configured at all, a development key for tenant ``demo``.

        The service never runs open: the generated key is written (mode 0600) to ``<data_dir>/dev-token``.
        """
        security, token_file = dev_security(self.settings)
        self.endpoints.dev_token_file = token_file
        return security

    async def _audit_config_loaded(self, audit: AuditLog) -> None:
        digest = hashlib.sha256(self.settings.model_dump_json().encode()).digest()
        await audit.record(
            action="config.loaded",
            object_type="config",
            object_id="settings",
            tenant_id="",
            actor="system",
            after=digest,
            details={"pid": str(os.getpid()), "grpc_port": str(self.settings.grpc.port)},
        )

    # ------------------------------------------------------------------ stopping
    async def _stop_grpc(self) -> None:
        if self.grpc is not None:
            await self.grpc.stop()

    async def _stop_workers(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)

    async def _close_connectors(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self.connectors.values()), return_exceptions=True)

    async def _close_nats(self) -> None:
        """Drain while the link is up (bounded); otherwise close, which also ends the endless reconnect loop.

        Draining a client that is reconnecting waits for a server that may never come back, and the reconnect
        task would then keep ``asyncio.run`` from returning: a SIGTERM while NATS disappears never exited.
        """
        nc = self.nc
        if nc is None or nc.is_closed:
            return
        if nc.is_connected:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), timeout=self.settings.nats.drain_timeout_seconds)
        if not nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), timeout=2.0)

    async def stop(self) -> None:
        """Stop everything that was started, newest first; errors are logged, never stop the unwinding."""
        self._ready = False
        if self._nats_lost_alert is not None:
            self._nats_lost_alert.cancel()  # stopping is no outage
        # The whole stop is bounded (grace for in-flight calls, then a few seconds to close the rest), and so
        # is every step: a stuck step (a call that never drains, NATS gone) must not keep the rest running.
        # Each step still gets a moment once the budget is spent, so child processes are always told to stop.
        deadline = time.monotonic() + self.settings.grpc.shutdown_grace_seconds + _STOP_MARGIN_SECONDS
        while self._cleanups:
            name, cleanup = self._cleanups.pop()
            limit = max(deadline - time.monotonic(), _STEP_MINIMUM_SECONDS)
            try:
                await asyncio.wait_for(cleanup(), timeout=limit)
            except TimeoutError:
                log.error("stopping %s took longer than %.1f s; moving on", name, limit)
            except Exception:  # keep unwinding: one failed step must not orphan the rest
                log.exception("error while stopping %s", name)

    async def open_for_calls(self) -> None:
        """A delivery worker is up (told by the ``serve`` supervisor): health may say SERVING from now on."""
        self._workers_up = True
        nc = self.nc
        if self.grpc is not None and self._ready and nc is not None and nc.is_connected:
            await self.grpc.set_serving(True)

    async def run_until_signal(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully.

        ``on_ready`` runs once the handlers are in place (the banner): a supervisor that signals as soon as it
        reads the banner must meet a graceful stop, not Python's default death by SIGTERM.
        """
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        # This process now serves until it stops: what start-up built (modules, descriptors, settings, packs) lives
        # as long, so a full collection need not walk it again. In a 10,000-call spike that halved the longest
        # collection pause of a gateway (115-165 ms -> 58 ms), a pause every call in the loop waits out.
        gc.collect()
        gc.freeze()
        try:
            if on_ready is not None:
                on_ready()
            await stop_requested.wait()
            log.info("shutdown requested; draining")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()


def dev_security(settings: Settings) -> tuple[SecurityConfig, str]:
    """Configured security; with no credentials configured at all, a development key for tenant ``demo``.

    Returns the security and the path of the generated token file ("" when credentials were configured). The
    ``serve`` supervisor calls this once and hands the result to every gateway, so all of them take one key.
    """
    security = settings.security
    if security.api_keys or security.jwt is not None or security.tls is not None:
        return security, ""
    raw, digest = generate_api_key()
    token_file = settings.data_dir / "dev-token"
    write_private_file(token_file, raw + "\n")
    log.warning("no credentials configured: generated a development API key in %s", token_file)
    dev = ApiKeyConfig(name="dev", tenant_id=DEMO_TENANT, roles=DEV_ROLES, sha256=digest)
    return security.model_copy(update={"api_keys": [dev]}), str(token_file)


_STOP_MARGIN_SECONDS = 5.0
_STEP_MINIMUM_SECONDS = 0.5


async def configure_remote_notifier(simulator_url: str, config: NotifierConfig) -> None:
    """Point a simulator in another process (``serve``'s simulators child) at this receiver, over its control route."""
    body = config.model_dump(mode="json") | {"secret": config.secret.get_secret_value()}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.put(simulator_url.rstrip("/") + CONTROL_PREFIX + "notifications", json=body) as response,
    ):
        if response.status != 200:
            raise ConfigError(
                f"simulator at {simulator_url} refused its notification settings: "
                f"{response.status} {await response.text()}"
            )


def _async(fn: Callable[[], None]) -> Cleanup:
    async def run() -> None:
        fn()

    return run
