"""`returnbridge serve` on an external NATS: SIGTERM while the server disappears still exits within the grace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from returnbridge.bus.embedded import EmbeddedNatsServer

CLI = [sys.executable, "-m", "returnbridge.cli"]
GRACE = 2.0


@pytest.mark.parametrize(
    "nats_first", [True, False], ids=["nats-gone-then-sigterm", "sigterm-then-nats-gone"]
)
def test_sigterm_while_nats_vanishes_exits_within_the_grace(tmp_path: Path, nats_first: bool) -> None:
    nats_server = EmbeddedNatsServer(tmp_path / "nats", sync_always=False)
    nats_server.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNBRIDGE_")}
    env.update(
        RETURNBRIDGE_METRICS__ENABLED="false",
        RETURNBRIDGE_SIMULATORS__ENABLED="true",
        RETURNBRIDGE_GRPC__SHUTDOWN_GRACE_SECONDS=str(GRACE),
        RETURNBRIDGE_NATS__DURABILITY_CHECK="skip",
    )
    proc = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--grpc-port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--nats-url",
            nats_server.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        output = []
        # Start-up is not what is measured: on a shared 2-core machine four processes take a while.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("Ctrl-C stops everything"):
                break
        else:
            raise AssertionError("".join(output))
        # NATS goes away and the stop request comes at the same moment.
        assert nats_server.process is not None
        started = time.monotonic()
        if nats_first:
            nats_server.process.kill()
            proc.send_signal(signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)  # stopping has begun (gRPC grace) when NATS disappears
            nats_server.process.kill()
        code = proc.wait(timeout=GRACE + 20)
        elapsed = time.monotonic() - started
        assert code == 0, "".join(output) + proc.stdout.read()
        # Grace for in-flight calls plus the bounded close of the rest (5 s margin in App.stop).
        assert elapsed < GRACE + 5 + 3, elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        nats_server.stop()
