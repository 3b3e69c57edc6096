"""`returnbridge serve` as real processes: supervisor, embedded nats-server, gateway/worker children, restarts,
SIGINT stops everything, no orphans."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc
from returnbridge.gateway.admission_board import read_board

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


class Serve:
    """A ``returnbridge serve`` child whose output is read by a thread, so waiting for a line has a deadline."""

    def __init__(self, args: list[str], data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--grpc-port", "0", "--data-dir", str(data_dir), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env or _env(data_dir),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 90.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            self.output.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "".join(self.output))

    def close(self) -> None:
        """Stop ``serve`` as an operator would (SIGINT, a minute to finish), and kill it only if that fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        return int(
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status
        )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("layout", [[], ["--single-process"]], ids=["supervised", "single-process"])
def test_serve_embedded_then_sigint_leaves_nothing_behind(tmp_path: Path, layout: list[str]) -> None:
    data_dir = tmp_path / "data"
    serve = Serve([*layout, "--gateway-processes", "2"], data_dir)
    try:
        target = serve.wait_for(r"gRPC\s+(\S+:\d+)").group(1)
        serve.wait_for(r"^Ctrl-C stops everything")
        children = [
            int(pid) for name, pid in re.findall(r"process\s+(\S+)\s+pid (\d+)", "".join(serve.output))
        ]
        if layout:
            assert children == []
        else:
            names = re.findall(r"process\s+(\S+)\s+pid", "".join(serve.output))
            assert names == ["worker-0", "gateway-0", "gateway-1"]  # simulators are off in _env
            assert all(_alive(pid) for pid in children)
            # Accepting before delivering: the worker runs at process.background_nice (10) above the gateways.
            base = os.getpriority(os.PRIO_PROCESS, serve.proc.pid)
            nice = [os.getpriority(os.PRIO_PROCESS, pid) - base for pid in children]
            assert nice == [10, 0, 0]
        assert _nats_processes_for(data_dir), "embedded nats-server not running"
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING

        started = time.monotonic()
        serve.proc.send_signal(signal.SIGINT)
        assert serve.proc.wait(timeout=30) == 0, "".join(serve.output)
        assert time.monotonic() - started < 15
        assert _nats_processes_for(data_dir) == []
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        serve.close()


def test_a_crashed_gateway_is_restarted_while_the_other_keeps_serving(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    serve = Serve(["--gateway-processes", "2"], data_dir)
    try:
        target = serve.wait_for(r"gRPC\s+(\S+:\d+)").group(1)
        victim = int(serve.wait_for(r"process\s+gateway-1\s+pid (\d+)").group(1))
        serve.wait_for(r"^Ctrl-C stops everything")
        os.kill(victim, signal.SIGKILL)
        serve.wait_for(rf"gateway-1 \(pid {victim}\) exited with code -9 .*restarting in")
        # gateway-0 holds the port on its own meanwhile (SO_REUSEPORT: the kernel stops routing to the dead one).
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING
        restarted = int(serve.wait_for(r"gateway-1 restarted \(pid (\d+), restart 1\)").group(1))
        assert restarted != victim
        serve.wait_for(rf"gateway-1 \(pid {restarted}\) is ready again")
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
        assert not _alive(restarted)
    finally:
        serve.close()


def _eventually_serving(target: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    status = -1
    while time.monotonic() < deadline:
        status = _health(target)
        if status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.1)
    raise AssertionError(f"health {status}, not SERVING within {timeout:g} s")


def test_readiness_follows_the_worker_at_start_and_survives_its_crash(tmp_path: Path) -> None:
    """One gateway (so every health check reaches it): a restarted gateway is told again that a worker is up; a
    crashed worker does not turn the gateway NOT_SERVING (the accepted work waits in the stream)."""
    serve = Serve(["--gateway-processes", "1"], tmp_path / "data")
    try:
        target = serve.wait_for(r"gRPC\s+(\S+:\d+)").group(1)
        worker = int(serve.wait_for(r"process\s+worker-0\s+pid (\d+)").group(1))
        gateway = int(serve.wait_for(r"process\s+gateway-0\s+pid (\d+)").group(1))
        serve.wait_for(r"^Ctrl-C stops everything")
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING

        os.kill(gateway, signal.SIGKILL)
        restarted = int(serve.wait_for(r"gateway-0 restarted \(pid (\d+), restart 1\)").group(1))
        serve.wait_for(rf"gateway-0 \(pid {restarted}\) is ready again")
        # Without the supervisor's workers_up message it would stay NOT_SERVING for good.
        _eventually_serving(target)

        os.kill(worker, signal.SIGKILL)
        serve.wait_for(rf"worker-0 \(pid {worker}\) exited with code -9")
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING
        serve.wait_for(r"worker-0 \(pid \d+\) is ready again")
        assert _health(target) == health_pb2.HealthCheckResponse.SERVING
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0
    finally:
        serve.close()


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


def test_supervised_serve_points_the_simulators_pushes_at_its_receiver(tmp_path: Path) -> None:
    """`make run`'s layout: simulators in their own process still push to the receiver in the polling worker."""
    env = _env(tmp_path) | {"RETURNBRIDGE_SIMULATORS__ENABLED": "true"}
    serve = Serve(["--gateway-processes", "1"], tmp_path, env)
    try:
        inbound = serve.wait_for(r"inbound\s+(http://\S+)", timeout=180).group(1)
        sap = serve.wait_for(r"simulator\s+sap\s+(http://\S+)").group(1)
        serve.wait_for(r"returnbridge ready|try: ")
        with httpx.Client(timeout=10) as http:
            settings = http.get(f"{sap}/_sim/notifications").json()
            assert settings["config"]["enabled"] is True
            assert settings["config"]["url"] == inbound
            # A clerk's stock adjustment inside SAP is pushed, signed, and accepted by the receiver.
            adjusted = http.post(
                f"{sap}/_sim/actions/stock/adjust", json={"sku": "SKU-1001", "site": "DAL1", "delta": "3"}
            )
            assert adjusted.status_code < 300, adjusted.text
            deadline = time.monotonic() + 60
            stats: dict[str, object] = {}
            while time.monotonic() < deadline:
                stats = http.get(f"{sap}/_sim/notifications").json()["stats"]
                if stats["sent"] or stats["refused"] or stats["failed"]:
                    break
                time.sleep(0.1)
        assert stats["sent"] >= 1 and stats["refused"] == 0 and stats["failed"] == 0, stats
    finally:
        serve.close()


def test_a_tenant_rate_limit_holds_across_gateway_processes(tmp_path: Path) -> None:
    """The configured burst is the port's, not each gateway's: one connection (on one gateway) gets all of it, and
    then calls over 16 more connections (spread by the kernel over both gateways) get nothing more."""
    env = _env(tmp_path) | {
        "RETURNBRIDGE_SECURITY__RATE_LIMITS__TENANT_BURST": "6",
        # Practically no refill while the test runs.
        "RETURNBRIDGE_SECURITY__RATE_LIMITS__TENANT_RATE_PER_SECOND": "0.0001",
    }
    serve = Serve(["--gateway-processes", "2"], tmp_path / "data", env)
    try:
        target = serve.wait_for(r"gRPC\s+(\S+:\d+)").group(1)
        token = Path(serve.wait_for(r"--token-file (\S+)").group(1)).read_text().strip()
        serve.wait_for(r"^Ctrl-C stops everything")
        md = (("authorization", f"Bearer {token}"),)
        # Each channel its own connection; no client retries, so every refusal is seen.
        options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]

        def call(channel: grpc.Channel) -> grpc.StatusCode:
            try:
                returns_pb2_grpc.ReturnsServiceStub(channel).GetReturnStatus(
                    returns_pb2.GetReturnStatusRequest(return_id="none"), metadata=md, timeout=10
                )
                return grpc.StatusCode.OK
            except grpc.RpcError as exc:
                return exc.code()

        with grpc.insecure_channel(target, options=options) as one:
            alone = [call(one) for _ in range(8)]
        # NOT_FOUND: the call passed the limits and reached the servicer.
        assert alone == [grpc.StatusCode.NOT_FOUND] * 6 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
        channels = [grpc.insecure_channel(target, options=options) for _ in range(16)]
        try:
            spread = [call(channel) for _ in range(2) for channel in channels]
        finally:
            for channel in channels:
                channel.close()
        assert set(spread) == {grpc.StatusCode.RESOURCE_EXHAUSTED}, spread
    finally:
        serve.close()


def test_both_gateways_post_on_the_ports_admission_board(tmp_path: Path) -> None:
    """The supervisor hands every gateway the same board and its own record: a read on any of them is seen by all."""
    data_dir = tmp_path / "data"
    serve = Serve(["--gateway-processes", "2"], data_dir)
    try:
        target = serve.wait_for(r"gRPC\s+(\S+:\d+)").group(1)
        token = Path(serve.wait_for(r"--token-file (\S+)").group(1)).read_text().strip()
        serve.wait_for(r"^Ctrl-C stops everything")
        board = data_dir / "admission" / "board"
        assert [record.last_read for record in read_board(board)] == [float("-inf")] * 2
        started = time.monotonic()
        md = (("authorization", f"Bearer {token}"),)
        # 16 connections: the kernel puts some on each gateway (all on one has a chance of 2 in 65,536).
        channels = [
            grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(16)
        ]
        try:
            for channel in channels:
                with pytest.raises(grpc.RpcError) as info:
                    returns_pb2_grpc.ReturnsServiceStub(channel).GetReturnStatus(
                        returns_pb2.GetReturnStatusRequest(return_id="none"), metadata=md, timeout=10
                    )
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
        finally:
            for channel in channels:
                channel.close()
        records = read_board(board)
        assert len(records) == 2 and all(started <= r.last_read <= time.monotonic() for r in records), records
        assert all((r.in_flight, r.queued) == (0, 0) for r in records)
    finally:
        serve.close()
