"""``serve`` on the whole machine: one embedded NATS, gateway processes sharing the gRPC port, worker and simulator
processes; a crashed child is restarted with backoff, SIGTERM stops them all within the grace period.

Accepting a submission never shares a GIL with delivering it or with the simulated ERPs answering the workers:

    supervisor (this module)  embedded nats-server, /metrics of every process, restarts, signals
      simulators              NetSuite, SAP and Oracle simulators on fixed ports (a restart keeps them)
      worker-0 .. worker-N    delivery workers of every target (durable consumers share the work); worker-0
                              also polls the ERPs and samples the queue gauges
      gateway-0 .. gateway-N  gRPC on one port (SO_REUSEPORT, the kernel spreads connections); gateway-0 also
                              serves the console

Metrics use prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), the library's documented way for
pre-forked Python servers: one scrape endpoint and the console's KPIs sum every process, a restarted process's
counters are kept, and Prometheus needs no per-process targets. Children are spawned (never forked), so no gRPC or
NATS state crosses the process boundary.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from returnbridge.app import App, Endpoints, dev_security
from returnbridge.bus.embedded import EmbeddedNatsServer, die_with_parent, free_port
from returnbridge.config import Settings
from returnbridge.connectors.registry import parse_connector_config
from returnbridge.errors import AuthError, ConfigError, NotFoundError, ReturnBridgeError
from returnbridge.gateway.admission_board import create_board
from returnbridge.gateway.security_config import SecurityConfig
from returnbridge.gateway.shared_buckets import create_table
from returnbridge.observability.alerts import post_webhook
from returnbridge.observability.metrics import MULTIPROC_ENV

__all__ = ["Supervisor", "child_settings", "gateway_count"]

log = logging.getLogger(__name__)

#: A child that ran this long before crashing restarts after the first backoff step again.
_STABLE_SECONDS = 60.0
#: How long a child may take to report ready at start-up.
_START_TIMEOUT_SECONDS = 120.0
#: Beyond the gRPC grace: App.stop's own margin for closing NATS and the rest, plus process exit.
_STOP_MARGIN_SECONDS = 6.0
_POLL_SECONDS = 0.25
#: Supervisor -> gateway: a delivery worker is up.
_WORKERS_UP = "workers_up"


def gateway_count(settings: Settings) -> int:
    """Gateway processes ``serve`` runs: configured, or one per core this process may use."""
    if not settings.process.gateway:
        return 0
    configured = settings.process.gateway_processes
    return configured or max(len(os.sched_getaffinity(0)), 1)


def _share(total: int, parts: int, minimum: int) -> int:
    """One process's share of a bound, so the shares add up to (at most) the bound."""
    return max(total // parts, minimum)


def child_settings(
    settings: Settings,
    role: str,
    index: int,
    *,
    nats_url: str | None,
    grpc_port: int,
    gateways: int,
    connectors: dict[str, Any] | None,
    security: Any,
    simulator_urls: dict[str, str] | None = None,
    await_workers: bool = False,
    rate_buckets: Path | None = None,
    admission_board: Path | None = None,
) -> Settings:
    """The settings of one child: its parts, the shared NATS, the simulators' connectors, its share of the bounds."""
    process = settings.process
    nats = settings.nats
    if nats_url is not None:
        # The supervisor configured the embedded server itself (sync_always from settings): nothing to probe.
        nats = nats.model_copy(update={"url": nats_url, "durability_check": "skip"})
    update: dict[str, Any] = {
        "nats": nats,
        "metrics": settings.metrics.model_copy(update={"enabled": False}),
        "simulators": settings.simulators.model_copy(update={"enabled": False}),
    }
    if connectors is not None:
        update["connectors"] = connectors
    bundled = connectors is not None
    sim_urls = dict(simulator_urls or {}) if bundled else {}
    if role == "gateway":
        admission = settings.grpc.admission
        # The configured bounds are the gateway's as a whole. On the shared board each process takes what the
        # others leave of the in-flight bounds (gateway/admission_board.py); without one, each takes a fixed share.
        # The queue bound is memory held by one process: always a share.
        bounds: dict[str, Any] = {"max_queued": _share(admission.max_queued, gateways, 0)}
        if admission_board is not None and gateways > 1:
            bounds.update(shared_board=str(admission_board), board_slot=index)
        else:
            bounds.update(
                max_in_flight=_share(admission.max_in_flight, gateways, 1),
                contended_in_flight=_share(admission.contended_in_flight, gateways, 1),
            )
        shared = admission.model_copy(update=bounds)
        update["grpc"] = settings.grpc.model_copy(
            update={"port": grpc_port, "so_reuseport": gateways > 1, "admission": shared}
        )
        update["console"] = settings.console.model_copy(
            update={"enabled": settings.console.enabled and index == 0}
        )
        update["security"] = _shared_rate_limits(security, gateways, rate_buckets)
        update["process"] = process.model_copy(
            update={
                "await_workers": await_workers,
                "gateway": True,
                "workers": [],
                "sync": False,
                "monitor": False,
                "audit_scribe": False,
                "bundled_simulators": bundled,
            }
        )
    else:
        update["process"] = process.model_copy(
            update={
                "gateway": False,
                "sync": process.sync and index == 0,
                "monitor": index == 0,
                "audit_scribe": True,
                "bundled_simulators": bundled,
                "simulator_urls": sim_urls,
            }
        )
    return settings.model_copy(update=update)


def _shared_rate_limits(security: SecurityConfig, gateways: int, buckets: Path | None) -> SecurityConfig:
    """The rate limits of one gateway of several: the port's buckets in a shared file, its share of the RPC cap.

    The kernel spreads connections, not calls, over the gateways, so per-process buckets would give a client on
    one connection one process's share and a client on many the sum; the shared table (gateway/shared_buckets.py)
    makes the configured rates and bursts the port's. The concurrency cap bounds each process's own memory, so
    each takes its share of it.
    """
    limits = security.rate_limits
    shared = limits.model_copy(
        update={
            "shared_buckets": str(buckets) if buckets is not None and gateways > 1 else None,
            "max_concurrent_rpcs": _share(limits.max_concurrent_rpcs, gateways, 1),
        }
    )
    return security.model_copy(update={"rate_limits": shared})


def _check_port(host: str, port: int, *, reuse: bool) -> None:
    """Fail in a second, before any child starts, when the gRPC port is taken (as one process would).

    Raises:
        ConfigError: the address cannot be bound the way the gateways will bind it.
    """
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"grpc: cannot listen on {host}:{port} (grpc.host/grpc.port): {exc}") from None


def _exit_code(exc: ReturnBridgeError) -> int:
    for kind, code in ((ConfigError, 2), (NotFoundError, 3), (AuthError, 4)):
        if isinstance(exc, kind):
            return code
    return 1


def child_main(conn: Connection, name: str, role: str, settings: Settings, supervisor_pid: int) -> None:
    """Entry point of a spawned child: run its part, report ``ready`` with its endpoints, stop on SIGTERM."""
    die_with_parent()
    if os.getppid() != supervisor_pid:
        return  # the supervisor died while we were starting
    from returnbridge.audit.redact import install_log_redaction
    from returnbridge.logs import configure_logging

    configure_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    install_log_redaction()
    if role != "gateway" and settings.process.background_nice:
        # Accepting before delivering: on a busy machine the kernel runs the gateways first.
        os.nice(settings.process.background_nice)
    try:
        if role == "simulators":
            asyncio.run(_run_simulators(conn, settings))
        else:
            asyncio.run(_run_app(conn, settings))
    except ReturnBridgeError as exc:
        print(f"returnbridge: {name}: {exc}", file=sys.stderr, flush=True)
        sys.exit(_exit_code(exc))
    except KeyboardInterrupt:
        sys.exit(130)


async def _run_app(conn: Connection, settings: Settings) -> None:
    app = App(settings)
    await app.start()
    if settings.process.await_workers:
        _open_when_told(conn, app)
    endpoints = app.endpoints
    await app.run_until_signal(
        on_ready=lambda: conn.send(
            {
                "grpc": endpoints.grpc,
                "console": endpoints.console,
                "nats": endpoints.nats,
                "inbound": endpoints.inbound,
            }
        )
    )


def _open_when_told(conn: Connection, app: App) -> None:
    """The supervisor sends ``workers_up`` once a delivery worker is ready: only then does health say SERVING."""
    loop = asyncio.get_running_loop()
    opening: set[asyncio.Task[None]] = set()

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())  # the supervisor is gone; parent-death takes this process down
            return
        if message == _WORKERS_UP:
            loop.remove_reader(conn.fileno())
            task = loop.create_task(app.open_for_calls())
            opening.add(task)
            task.add_done_callback(opening.discard)

    loop.add_reader(conn.fileno(), on_message)


async def _run_simulators(conn: Connection, settings: Settings) -> None:
    from returnbridge.simulators.runner import start_simulators

    sims = await start_simulators(settings.simulators)
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        conn.send({"simulators": sims.urls})
        await stop.wait()
    finally:
        await sims.stop()


@dataclass
class _Child:
    name: str
    role: str
    settings: Settings
    process: BaseProcess | None = None
    conn: Connection | None = None
    ready: bool = False
    report: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: float = 0.0
    restarts: int = 0
    alerted_at: float | None = None
    opened: bool = False


class Supervisor:
    """Runs ``serve``'s processes. ``run()`` blocks until SIGINT/SIGTERM and returns the exit code.

    Call from the main thread (signal handlers, and the children's parent-death signal is tied to it).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.endpoints = Endpoints()
        self.nats_server: EmbeddedNatsServer | None = None
        self.children: list[_Child] = []
        self._ctx = multiprocessing.get_context("spawn")
        self._stopping = False
        self._metrics_dir = settings.data_dir / "metrics"

    # ------------------------------------------------------------------ running
    def run(self, on_ready: Any = None) -> int:
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            code = self._start()
            if code:
                return code
            if on_ready is not None and not self._stopping:
                on_ready(self)
            while not self._stopping:
                self._watch()
            log.info("shutdown requested; stopping %d processes", len(self.children))
            return 0
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def _start(self) -> int:
        """Start NATS, the simulators, then workers and gateways; all ready, or the exit code of the start-up."""
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        gateways = gateway_count(settings)
        if gateways and settings.grpc.port:
            _check_port(settings.grpc.host, settings.grpc.port, reuse=gateways > 1)
        self._prepare_metrics()
        nats_url = None
        if settings.nats.url is None:
            self.nats_server = EmbeddedNatsServer(
                settings.data_dir / "nats", port=settings.nats.port, sync_always=settings.nats.sync_always
            )
            self.nats_server.start()
            nats_url = self.nats_server.public_url
        self.endpoints.nats = nats_url or settings.nats.url or ""
        connectors = None
        if settings.simulators.enabled:
            sim_settings = settings.simulators.model_copy(
                update={
                    name: getattr(settings.simulators, name) or free_port(settings.simulators.host)
                    for name in ("netsuite_port", "sap_port", "oracle_port")
                }
            )
            sims = self._add(
                "simulators", "simulators", settings.model_copy(update={"simulators": sim_settings})
            )
            code = self._await_ready([sims])
            if code:
                return code
            urls: dict[str, str] = sims.report["simulators"]
            self.endpoints.simulators = urls
            if not settings.connectors:
                from returnbridge.simulators.runner import SimulatorConfigs, connector_configs_for

                connectors = {
                    name: parse_connector_config(cfg, source=f"simulator {name}")
                    for name, cfg in connector_configs_for(urls, SimulatorConfigs()).items()
                }
        grpc_port = settings.grpc.port or (free_port(settings.grpc.host) if gateways else 0)
        security, self.endpoints.dev_token_file = (
            dev_security(settings) if gateways else (settings.security, "")
        )
        common: dict[str, Any] = {
            "nats_url": nats_url,
            "grpc_port": grpc_port,
            "gateways": gateways,
            "connectors": connectors,
            "security": security,
            "simulator_urls": self.endpoints.simulators if connectors is not None else None,
        }
        if gateways > 1:
            # A fresh table per run: buckets of a previous run would start this one part-empty.
            limits = security.rate_limits
            common["rate_buckets"] = create_table(
                settings.data_dir / "ratelimit" / "buckets", 2 * limits.max_tracked_keys
            )
            common["admission_board"] = create_board(settings.data_dir / "admission" / "board", gateways)
        workers = []
        if settings.process.workers or settings.process.sync:
            workers = [
                self._add(f"worker-{i}", "worker", child_settings(settings, "worker", i, **common))
                for i in range(settings.process.worker_processes)
            ]
        common["await_workers"] = any(w.settings.process.workers for w in workers)
        # Workers and gateways start together (on a busy machine, one after the other doubles the start-up);
        # what a gateway accepts meanwhile waits in the stream.
        front = [
            self._add(f"gateway-{i}", "gateway", child_settings(settings, "gateway", i, **common))
            for i in range(gateways)
        ]
        code = self._await_ready([*workers, *front])
        if code:
            return code
        self._open_gateways()
        # The webhook receiver runs with the poller, in the first worker.
        self.endpoints.inbound = next(
            (w.report.get("inbound", "") for w in workers if w.report.get("inbound")), ""
        )
        if front:
            self.endpoints.grpc = front[0].report["grpc"]
            self.endpoints.console = front[0].report["console"]
        if settings.metrics.enabled:
            from returnbridge.observability.metrics import start_metrics_server

            port = start_metrics_server(settings.metrics.host, settings.metrics.port)
            self.endpoints.metrics = f"http://{settings.metrics.host}:{port}/metrics"
        log.info("returnbridge ready: %s", ", ".join(f"{c.name} pid {self._pid(c)}" for c in self.children))
        return 0

    def _prepare_metrics(self) -> None:
        # Samples of an earlier run would be summed into this one's: start from an empty directory.
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        self._metrics_dir.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(self._metrics_dir.resolve())

    def _add(self, name: str, role: str, settings: Settings) -> _Child:
        child = _Child(name, role, settings)
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: _Child) -> None:
        # Duplex: the child reports ready on it; a gateway hears on it that a worker is up.
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=child_main,
            args=(child_end, child.name, child.role, child.settings, os.getpid()),
            name=child.name,
            daemon=False,
        )
        process.start()
        child_end.close()
        child.process, child.conn, child.ready, child.report = process, parent_end, False, {}
        child.opened = False
        child.started_at, child.restart_at = time.monotonic(), None

    @staticmethod
    def _pid(child: _Child) -> int | None:
        return child.process.pid if child.process is not None else None

    def _await_ready(self, group: list[_Child]) -> int:
        """Wait until every child of ``group`` reported ready; a child that exits first fails the start."""
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not all(c.ready for c in group):
            if self._stopping:
                return 0
            if time.monotonic() > deadline:
                late = [c.name for c in group if not c.ready]
                print(
                    f"returnbridge: {', '.join(late)} not ready within {_START_TIMEOUT_SECONDS:g} s",
                    file=sys.stderr,
                )
                return 1
            for child in group:
                if not child.ready and self._poll_ready(child) is False:
                    code = child.process.exitcode if child.process is not None else 1
                    log.error("%s exited during start-up (exit code %s)", child.name, code)
                    return code if code and code > 0 else 1
            waiting: list[Any] = [c.process.sentinel for c in group if c.process is not None and not c.ready]
            waiting += [c.conn for c in group if c.conn is not None and not c.ready]
            wait(waiting, timeout=_POLL_SECONDS)
        return 0

    def _poll_ready(self, child: _Child) -> bool | None:
        """True once ready, None while starting, False when it exited without reporting ready."""
        if child.ready:
            return True
        assert child.conn is not None and child.process is not None
        try:
            if child.conn.poll():
                child.report = child.conn.recv()
                child.ready = True
                return True
        except (EOFError, OSError):
            pass
        return False if child.process.exitcode is not None else None

    def _watch(self) -> None:
        """One round: notice exits (schedule a restart with backoff), start due restarts, note readiness."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None and process.exitcode is not None and child.restart_at is None:
                self._schedule_restart(child, now)
            elif child.restart_at is not None and now >= child.restart_at and not self._stopping:
                child.restarts += 1
                self._spawn(child)
                log.warning("%s restarted (pid %s, restart %d)", child.name, self._pid(child), child.restarts)
            elif process is not None and not child.ready and self._poll_ready(child):
                log.info("%s (pid %s) is ready again", child.name, process.pid)
                self._open_gateways()
        server = self.nats_server
        if server is not None and server.process is not None and server.process.poll() is not None:
            log.error("embedded nats-server exited (code %s); restarting it", server.process.returncode)
            try:
                server.start()
            except ConfigError as exc:
                log.error("embedded nats-server did not restart: %s", exc)
        sentinels = [
            c.process.sentinel for c in self.children if c.process is not None and c.restart_at is None
        ]
        wait(sentinels, timeout=_POLL_SECONDS)

    def _open_gateways(self) -> None:
        """Tell every ready gateway that waits for one that a delivery worker is up (health may say SERVING).

        Start-up order: gateways and workers start together (one after the other doubles the start-up on a busy
        machine), but a gateway reports SERVING only once a worker reported ready.
        """
        if not any(c.ready and c.settings.process.workers for c in self.children if c.role == "worker"):
            return
        for child in self.children:
            if child.role != "gateway" or not child.ready or child.opened or child.conn is None:
                continue
            if not child.settings.process.await_workers:
                continue
            try:
                child.conn.send(_WORKERS_UP)
                child.opened = True
            except OSError:
                log.warning("%s did not take the workers-up message; it exited", child.name)

    def _schedule_restart(self, child: _Child, now: float) -> None:
        assert child.process is not None
        code, pid = child.process.exitcode, child.process.pid
        if pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]
        first, cap = self.settings.process.restart_backoff_seconds
        ran = now - child.started_at
        child.backoff = first if ran >= _STABLE_SECONDS or not child.backoff else min(child.backoff * 2, cap)
        child.restart_at = now + child.backoff
        child.ready = False
        log.error(
            "%s (pid %s) exited with code %s after %.1f s; restarting in %.1f s",
            child.name,
            pid,
            code,
            ran,
            child.backoff,
        )
        self._alert_restart(child, code, now)

    def _alert_restart(self, child: _Child, code: int | None, now: float) -> None:
        """``process_restarted``, straight to the webhook from here: only the supervisor sees the exit (a child that
        crashes again before reaching NATS could never report its own restart), and there is one supervisor, so
        nothing to de-duplicate across processes. A crash loop alerts once per re-alert interval."""
        alerts = self.settings.alerts
        if self._stopping or not alerts.webhook_url:
            return
        interval = alerts.realert_interval_s
        if child.alerted_at is not None and (interval == 0 or now - child.alerted_at < interval):
            return
        child.alerted_at = now
        summary = f"{child.name} exited unexpectedly (code {code}); restarting in {child.backoff:.1f} s"
        details = {
            "process": child.name,
            "role": child.role,
            "exit_code": str(code),
            "restarts": str(child.restarts),
        }
        # A thread: the webhook may take its timeout, and the watch loop must keep restarting children meanwhile.
        threading.Thread(
            target=post_webhook,
            args=(alerts,),
            kwargs={
                "kind": "process_restarted",
                "key": child.name,
                "severity": "warning",
                "summary": summary,
                "details": details,
            },
            name=f"alert-{child.name}",
            daemon=True,
        ).start()

    # ------------------------------------------------------------------ stopping
    def _stop_all(self) -> None:
        """Every child at once (in-flight calls drain within the grace; a worker's ERP call cut short by the
        simulators stopping is retried, by design), then NATS; stragglers are killed after the grace + margin."""
        self._stop_group(self.children, self.settings.grpc.shutdown_grace_seconds + _STOP_MARGIN_SECONDS)
        if self.nats_server is not None:
            self.nats_server.stop()
        shutil.rmtree(self._metrics_dir, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)
        from returnbridge.observability.metrics import stop_metrics_servers

        stop_metrics_servers()

    def _stop_group(self, group: list[_Child], seconds: float) -> None:
        alive = [c.process for c in group if c.process is not None and c.process.exitcode is None]
        for process in alive:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + seconds
        for process in alive:
            process.join(max(deadline - time.monotonic(), 0.0))
        for process in alive:
            if process.exitcode is None:
                log.error("%s did not stop within %.1f s; killing it", process.name, seconds)
                process.kill()
                process.join(5.0)
