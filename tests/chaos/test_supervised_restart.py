"""`process_restarted` end to end: the real `serve` supervisor, a child killed with SIGKILL, one alert at the
webhook, the child back; a second crash within the re-alert interval is the same incident (no second alert)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from load.faults import AlertSink
from test_serve_process import Serve, _env


@pytest.mark.timeout(240)
def test_a_killed_worker_alerts_once_and_comes_back(tmp_path: Path, alert_sink: AlertSink) -> None:
    data_dir = tmp_path / "data"
    env = {**_env(data_dir), "RETURNBRIDGE_ALERTS__WEBHOOK_URL": alert_sink.url}
    serve = Serve(["--gateway-processes", "1"], data_dir, env=env)
    try:
        victim = int(serve.wait_for(r"process\s+worker-0\s+pid (\d+)").group(1))
        serve.wait_for(r"^Ctrl-C stops everything")
        since = time.monotonic()

        def restarted_alerts() -> list[dict[str, object]]:
            return [
                a for a in alert_sink.between(since, time.monotonic()) if a.get("kind") == "process_restarted"
            ]

        for restart in (1, 2):
            os.kill(victim, signal.SIGKILL)
            serve.wait_for(rf"worker-0 \(pid {victim}\) exited with code -9 .*restarting in")
            back = int(serve.wait_for(rf"worker-0 restarted \(pid (\d+), restart {restart}\)").group(1))
            serve.wait_for(rf"worker-0 \(pid {back}\) is ready again")
            assert back != victim
            victim = back
            deadline = time.monotonic() + 60
            while not restarted_alerts() and time.monotonic() < deadline:
                time.sleep(0.1)  # polling the webhook sink (a condition), not a fixed wait
            assert restarted_alerts(), "".join(serve.output)

        # Both crashes fall within the re-alert interval (1 h): one incident, one notification.
        (alert,) = restarted_alerts()
        assert (alert["key"], alert["status"], alert["severity"]) == ("worker-0", "firing", "warning")
        details = alert["details"]
        assert isinstance(details, dict) and details["exit_code"] == "-9" and details["role"] == "worker"
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=60) == 0, "".join(serve.output)
    finally:
        serve.close()
