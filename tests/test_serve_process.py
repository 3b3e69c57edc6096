"""`returnbridge serve` as a real process: embedded nats-server, SIGINT stops everything, no orphans."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

CLI = [sys.executable, "-m", "returnbridge.cli"]


def _nats_processes_for(data_dir: Path) -> list[int]:
    """PIDs of nats-server processes whose config lives under ``data_dir``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "nats-server" in cmdline and str(data_dir) in cmdline:
            pids.append(int(entry.name))
    return pids


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNBRIDGE_")}
    env.update(
        RETURNBRIDGE_METRICS__PORT="0",
        RETURNBRIDGE_CONSOLE__PORT="0",
        RETURNBRIDGE_SIMULATORS__ENABLED="false",
        RETURNBRIDGE_NATS__SYNC_ALWAYS="false",
    )
    return env


def test_serve_embedded_then_sigint_leaves_nothing_behind(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [*CLI, "serve", "--grpc-port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(data_dir),
    )
    try:
        target = None
        output = []
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(r"gRPC\s+(\S+:\d+)", line)
            if match:
                target = match.group(1)
                break
        assert target, "".join(output)
        assert _nats_processes_for(data_dir), "embedded nats-server not running"
        with grpc.insecure_channel(target) as channel:
            status = (
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status
            )
        assert status == health_pb2.HealthCheckResponse.SERVING

        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        assert _nats_processes_for(data_dir) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_failed_startup_leaves_no_nats_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*CLI, "serve", "--grpc-port", str(port), "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env=_env(data_dir),
            timeout=30,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot listen" in result.stderr and str(port) in result.stderr
    assert _nats_processes_for(data_dir) == []


def test_bad_config_value_is_refused_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "rb.yaml"
    config.write_text("grpc:\n  port: lots\n")
    result = subprocess.run(
        [*CLI, "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=_env(tmp_path),
    )
    assert result.returncode == 2
    assert f"{config}:2" in result.stderr and "grpc.port" in result.stderr
