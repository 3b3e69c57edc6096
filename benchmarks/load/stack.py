"""The service as separate processes: nats-server node(s), the simulators, gateway and worker processes.

Everything binds to 127.0.0.1. Each process writes to its own log file under the stack's work directory; a
process is ready when its banner line appears there. A killed process is restarted on the same ports, the
way a supervisor (systemd ``Restart=always``) would. The gateways share one gRPC port (``SO_REUSEPORT``, as
``serve`` lays them out): the kernel spreads the clients' connections over them, and a client whose gateway was
killed reconnects to one still running, so a gateway kill measures the service, not one gateway's restart.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from returnbridge.bus.embedded import find_nats_server, free_port
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.runner import SimulatorConfigs, SimulatorSet

CLI = [sys.executable, "-m", "returnbridge.cli"]
DEMO_REFERENCE_DATA = (
    Path(__file__).resolve().parents[2]
    / "python"
    / "returnbridge"
    / "simulators"
    / "demo_reference_data.yaml"
)
TENANT = "load"
API_KEY = "rb-load-chaos-key-000000000001"
TARGETS = ("netsuite", "sap", "oracle_fusion")


class StackError(RuntimeError):
    """A process of the stack did not come up; the message carries the tail of its log."""


@dataclass
class Proc:
    """One child process with a log file, restartable with the same command line."""

    name: str
    argv: list[str]
    log: Path
    ready: str  # a regex that appears in the log once the process serves
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _offset: int = 0

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env or None,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    async def wait_ready(self, timeout: float = 90.0) -> str:
        """The first match of ``ready`` written since the last start; raises when the process exits first."""
        pattern = re.compile(self.ready)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_bytes()[self._offset :].decode(errors="replace")
            match = pattern.search(text)
            if match:
                return match.group(0)
            if not self.alive:
                raise StackError(
                    f"{self.name} exited ({self.popen and self.popen.returncode}):\n{text[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} not ready after {timeout:.0f} s:\n{text[-3000:]}")
            await asyncio.sleep(0.1)

    def kill9(self) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only our own child, by its pid."""
        if not self.alive:
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def rss_kb(self) -> int | None:
        """Resident set size from /proc (None when the process is not running)."""
        if not self.alive:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None


@dataclass
class NatsNode:
    """One nats-server (JetStream, fsync on every write as on served defaults), alone or in a cluster."""

    name: str
    store: Path
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def configure(self, peers: list[NatsNode], sync_always: bool) -> None:
        conf = self.store.parent / f"{self.name}.conf"
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'http: "127.0.0.1:{self.monitor_port}"',
            f'jetstream {{ store_dir: "{self.store}"{", sync_interval: always" if sync_always else ""} }}',
        ]
        if peers:
            routes = ", ".join(f'"nats-route://127.0.0.1:{p.cluster_port}"' for p in peers if p is not self)
            lines.append(
                f'cluster {{ name: "rb-chaos", listen: "127.0.0.1:{self.cluster_port}", routes: [{routes}] }}'
            )
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text("\n".join(lines) + "\n")
        self.proc = Proc(
            f"nats-{self.name}",
            [find_nats_server(), "-c", str(conf)],
            self.store.parent / f"{self.name}.log",
            ready=r"Server is ready",
        )


@dataclass
class StackConfig:
    nodes: int = 1
    gateways: int = 1
    workers: int = 1
    sync_always: bool = True
    # JetStream replicas of streams and KV; None = the node count (R3 on a 3-node cluster).
    replicas: int | None = None
    alert_webhook: str | None = None
    # How long an ERP may be unreachable before the erp_unreachable alert (served default 300 s).
    erp_unreachable_after_s: float = 5.0
    # How soon after its resolution an incident re-opens quietly (served default 300 s). The scenarios share one
    # stack: an incident one of them left (an erp_errors blip) must not hold down the next one's page.
    incident_hold_down_s: float = 10.0
    log_level: str = "WARNING"
    # Merged over the generated service settings (nested dicts), e.g. shorter ack waits for CI.
    overrides: dict[str, Any] = field(default_factory=dict)


class Stack:
    """Starts and supervises every process of one deployment; ``await start()``, ``stop()`` always."""

    def __init__(self, workdir: Path, config: StackConfig) -> None:
        self.workdir = workdir
        self.config = config
        self.nodes = [NatsNode(f"n{i + 1}", workdir / "nats" / f"n{i + 1}") for i in range(config.nodes)]
        self.sim_ports = {"netsuite": free_port(), "sap": free_port(), "oracle": free_port()}
        self.simulators: Proc | None = None
        self.gateways: list[Proc] = []
        self.workers: list[Proc] = []
        self.gateway_port = free_port()
        self.gateway_targets = [f"127.0.0.1:{self.gateway_port}"]

    # ------------------------------------------------------------------ addresses
    @property
    def nats_url(self) -> str:
        return ",".join(n.url for n in self.nodes)

    @property
    def sim_urls(self) -> dict[str, str]:
        return {name: f"http://127.0.0.1:{port}" for name, port in self.sim_ports.items()}

    @property
    def processes(self) -> list[Proc]:
        procs = [n.proc for n in self.nodes if n.proc is not None]
        return [*procs, *([self.simulators] if self.simulators else []), *self.gateways, *self.workers]

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        cluster = self.nodes if len(self.nodes) > 1 else []
        for node in self.nodes:
            node.configure(cluster, self.config.sync_always)
            assert node.proc is not None
            node.proc.start()
        await asyncio.gather(*(n.proc.wait_ready(30) for n in self.nodes if n.proc is not None))
        await asyncio.gather(*(_wait_port(n.port) for n in self.nodes))
        await asyncio.gather(*(wait_healthy(n) for n in self.nodes))
        env = _child_env()
        ports = self.sim_ports
        self.simulators = Proc(
            "simulators",
            [
                *CLI,
                "simulate",
                "--netsuite-port",
                str(ports["netsuite"]),
                "--sap-port",
                str(ports["sap"]),
                "--oracle-port",
                str(ports["oracle"]),
                # Visible, not refused: a second document for one reference is what the checker counts.
                "--duplicates",
                "accept",
            ],
            self.workdir / "logs" / "simulators.log",
            ready=r"Ctrl-C stops them",
            env=env,
        )
        self.simulators.start()
        config_file = self._write_config()
        targets = [arg for t in TARGETS for arg in ("--target", t)]
        # One monitor process (queue gauges, nats_disconnected, stream leader advisories), as serve lays it out:
        # the first worker, else the first gateway. Every process monitoring would alert a NATS restart N times.
        quiet = {**env, "RETURNBRIDGE_PROCESS__MONITOR": "false"}
        monitor = "worker-1" if self.config.workers else "gateway-1"
        for i in range(self.config.gateways):
            self.gateways.append(
                Proc(
                    f"gateway-{i + 1}",
                    # One gateway per process: the tool lays the processes out itself (no serve supervisor).
                    [*CLI, "serve", "--single-process", "--config", str(config_file), "--grpc-port", str(self.gateway_port),
                     "--data-dir",
                     str(self.workdir / "data" / f"gateway-{i + 1}")],
                    self.workdir / "logs" / f"gateway-{i + 1}.log",
                    ready=r"returnbridge is serving",
                    env=env if monitor == f"gateway-{i + 1}" else quiet,
                )
            )  # fmt: skip
        for i in range(self.config.workers):
            self.workers.append(
                Proc(
                    f"worker-{i + 1}",
                    [*CLI, "worker", "--config", str(config_file), *targets, "--data-dir",
                     str(self.workdir / "data" / f"worker-{i + 1}")],
                    self.workdir / "logs" / f"worker-{i + 1}.log",
                    ready=r"returnbridge is serving",
                    env=env if monitor == f"worker-{i + 1}" else quiet,
                )
            )  # fmt: skip
        await self.simulators.wait_ready()
        # The first process creates the streams; the others then only update them (no create race).
        first, *rest = [*self.gateways, *self.workers]
        first.start()
        await first.wait_ready()
        for proc in rest:
            proc.start()
        await asyncio.gather(*(p.wait_ready() for p in rest))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    async def restart(self, proc: Proc) -> None:
        proc.kill9()
        proc.start()
        await proc.wait_ready()

    def rss_kb(self) -> dict[str, int | None]:
        return {p.name: p.rss_kb() for p in self.processes}

    # ------------------------------------------------------------------ configuration
    def service_settings(self) -> dict[str, Any]:
        """The YAML every gateway and worker process reads (``serve`` runs the gateway part only)."""
        configs = SimulatorConfigs()
        for name in ("netsuite", "sap", "oracle"):
            configs = configs.with_duplicates(name, "accept")
        sims = SimulatorSet(
            running={
                name: RunningSimulator(web.Application(), "127.0.0.1", port)
                for name, port in self.sim_ports.items()
            },
            configs=configs,
        )
        replicas = self.config.replicas or len(self.nodes)
        alerts: dict[str, Any] = {
            "publish_nats": True,
            "realert_interval_s": 0,
            "erp_unreachable_after_s": self.config.erp_unreachable_after_s,
            "incident_hold_down_s": self.config.incident_hold_down_s,
        }
        if self.config.alert_webhook:
            alerts["webhook_url"] = self.config.alert_webhook
        return {
            "nats": {
                "url": self.nats_url,
                "monitor_url": self.nodes[0].monitor_url,
                "durability_check": "warn",
            },
            "grpc": {"host": "127.0.0.1", "so_reuseport": True},
            "metrics": {"enabled": False},
            "console": {"enabled": False},
            "simulators": {"enabled": False},
            "logging": {"level": self.config.log_level},
            "process": {"gateway": True, "workers": [], "sync": False},
            "security": {
                "api_keys": [
                    {
                        "name": "load",
                        "tenant_id": TENANT,
                        "roles": ["submitter", "reader"],
                        "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
                    }
                ]
            },
            "reference_data": {"file": str(DEMO_REFERENCE_DATA)},
            "connectors": sims.connector_configs(),
            "alerts": alerts,
            "delivery": {"streams": {"replicas": replicas}},
        }

    def _write_config(self) -> Path:
        path = self.workdir / "returnbridge.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        settings = _merge(self.service_settings(), self.config.overrides)
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        return path


async def wait_healthy(node: NatsNode, timeout: float = 60.0) -> None:
    """Until the node's /healthz says JetStream is usable (in a cluster: a meta leader is elected)."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{node.monitor_url}/healthz", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"nats {node.name} not healthy after {timeout:.0f} s")
            await asyncio.sleep(0.2)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


# Loaded once in the parent: the child between fork and exec only calls it (no dlopen, no imports).
_PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: Linux SIGTERMs it when the tool dies, so even a killed tool leaves no orphan."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNBRIDGE_")}
    env["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
