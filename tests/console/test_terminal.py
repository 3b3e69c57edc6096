"""``returnbridge status`` and ``inventory`` against the served app: rich tables, JSON, documented exit codes."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from returnbridge.cli import main

from .harness import KEYS, ServedApp, sample_order


def run(served: ServedApp, monkeypatch: pytest.MonkeyPatch, who: str | None, *argv: str) -> int:
    if who is None:
        monkeypatch.delenv("RETURNBRIDGE_TOKEN", raising=False)
    else:
        monkeypatch.setenv("RETURNBRIDGE_TOKEN", KEYS[who][0])
    return main([*argv, "--server", served.app.endpoints.grpc])


def test_status_json_and_table(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served.submit("acme_admin", "term-1")
    assert run(served, monkeypatch, "acme_admin", "status", "term-1", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"]["return_id"] == "term-1"
    assert data["status"]["state"] == "SYNC_STATE_DELIVERED"
    assert data["versions"][0]["rule"] and data["versions"][0]["event"] == "AUTHORIZED"
    assert data["dead_letters"] == []

    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells to the terminal width (80 when captured)
    assert run(served, monkeypatch, "acme_admin", "status", "term-1") == 0
    table = capsys.readouterr().out
    assert "term-1" in table and "DELIVERED" in table and "return_authorization" in table


def test_status_leaves_out_what_the_token_may_not_read(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served.submit("acme_admin", "term-2")
    assert run(served, monkeypatch, "acme_reader", "status", "term-2", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"]["return_id"] == "term-2"
    assert data["dead_letters"] is None  # reader lacks dlq.read
    assert data["versions"][0]["audit"] == []  # and audit.read


def test_exit_codes(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served.submit("acme_admin", "term-3")
    assert run(served, monkeypatch, "globex_admin", "status", "term-3") == 3  # another tenant's: not found
    assert run(served, monkeypatch, None, "status", "term-3") == 2  # no token
    monkeypatch.setenv("RETURNBRIDGE_TOKEN", "rbk_wrong_key_0123456789abcdef")
    assert main(["status", "term-3", "--server", served.app.endpoints.grpc]) == 4
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("RETURNBRIDGE_TOKEN", KEYS["acme_admin"][0])
    assert main(["status", "term-3", "--server", closed, "--timeout", "2"]) == 5
    assert "returnbridge:" in capsys.readouterr().err


def test_inventory_json(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    levels: list[dict[str, Any]] = []
    for _ in range(120):  # the poller stores the simulators' stock shortly after start
        assert run(served, monkeypatch, "acme_reader", "inventory", "--format", "json") == 0
        levels = json.loads(capsys.readouterr().out)
        if levels:
            break
        time.sleep(0.5)
    assert levels and all(level["tenant_id"] == "acme" for level in levels)
    assert run(served, monkeypatch, "globex_admin", "inventory", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == []  # another tenant's stock is not visible
    assert run(served, monkeypatch, "acme_reader", "inventory") == 0
    assert "SKU" in capsys.readouterr().out


def test_the_readme_client_example_runs(served: ServedApp, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = readme.split("## Client library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "127.0.0.1:50051" in code
    namespace: dict[str, Any] = {}
    # The example as printed, pointed at this test's server instead of the default port.
    exec(compile(code.replace("127.0.0.1:50051", served.app.endpoints.grpc), "README.md", "exec"), namespace)
    served.run(namespace["main"](sample_order("readme-1", "acme"), KEYS["acme_admin"][0]))
    out = capsys.readouterr().out
    assert "accepted, routed by rule" in out
    assert "return_authorization SYNC_STATE_DELIVERED" in out
