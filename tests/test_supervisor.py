"""What the ``serve`` supervisor hands each child: its parts, the shared NATS and port, its share of the bounds."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from returnbridge.config import Settings, load_settings
from returnbridge.errors import ConfigError
from returnbridge.supervisor import _check_port, child_settings, gateway_count


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(None, env={}, overrides={"data_dir": str(tmp_path), **overrides})


def _children(settings: Settings, gateways: int, **extra: Any) -> tuple[list[Settings], list[Settings]]:
    common: dict[str, Any] = {
        "nats_url": "nats://127.0.0.1:4222",
        "grpc_port": 50123,
        "gateways": gateways,
        "connectors": None,
        "security": settings.security,
        "await_workers": True,
        **extra,
    }
    front = [child_settings(settings, "gateway", i, **common) for i in range(gateways)]
    back = [child_settings(settings, "worker", i, **common) for i in range(2)]
    return front, back


@pytest.mark.parametrize("gateways", [1, 2, 3, 7])
def test_gateway_admission_shares_add_up_to_the_configured_bound(tmp_path: Path, gateways: int) -> None:
    settings = _settings(
        tmp_path, grpc={"admission": {"max_in_flight": 256, "contended_in_flight": 8, "max_queued": 4096}}
    )
    front, _ = _children(settings, gateways)
    in_flight = [s.grpc.admission.max_in_flight for s in front]
    contended = [s.grpc.admission.contended_in_flight for s in front]
    queued = [s.grpc.admission.max_queued for s in front]
    assert sum(in_flight) <= 256 and sum(in_flight) > 256 - gateways
    assert all(share >= 1 for share in contended) and sum(contended) <= max(8, gateways)
    assert sum(queued) <= 4096 and sum(queued) > 4096 - gateways


@pytest.mark.parametrize("gateways", [2, 3])
def test_gateways_on_an_admission_board_hold_the_ports_bounds(tmp_path: Path, gateways: int) -> None:
    settings = _settings(
        tmp_path, grpc={"admission": {"max_in_flight": 256, "contended_in_flight": 8, "max_queued": 4096}}
    )
    board = tmp_path / "admission" / "board"
    front, _ = _children(settings, gateways, admission_board=board)
    # The in-flight bounds are the port's, taken from one board (each process its own record); the queue is
    # memory held by one process, so it is still a share.
    assert [(s.grpc.admission.shared_board, s.grpc.admission.board_slot) for s in front] == [
        (str(board), i) for i in range(gateways)
    ]
    assert {(s.grpc.admission.max_in_flight, s.grpc.admission.contended_in_flight) for s in front} == {
        (256, 8)
    }
    assert sum(s.grpc.admission.max_queued for s in front) <= 4096


@pytest.mark.parametrize("gateways", [1, 2, 3])
def test_gateway_rate_limits_are_the_ports_and_the_rpc_cap_is_shared(tmp_path: Path, gateways: int) -> None:
    rates = {
        "tenant_rate_per_second": 90.0,
        "tenant_burst": 300,
        "principal_rate_per_second": 30.0,
        "principal_burst": 100,
    }
    settings = _settings(tmp_path, security={"rate_limits": {**rates, "max_concurrent_rpcs": 1000}})
    table = tmp_path / "ratelimit" / "buckets"
    front, _ = _children(settings, gateways, rate_buckets=table)
    shares = [gw.security.rate_limits for gw in front]
    for share in shares:
        # Every gateway charges the same buckets (one table), so each holds the configured rates and bursts.
        assert {key: getattr(share, key) for key in rates} == rates
        assert share.shared_buckets == (str(table) if gateways > 1 else None)
    cap = sum(share.max_concurrent_rpcs for share in shares)
    assert 1000 - gateways < cap <= 1000


def test_each_child_runs_its_parts_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    front, back = _children(settings, 2)
    for i, gw in enumerate(front):
        assert gw.process.gateway and gw.process.workers == [] and not gw.process.sync
        assert not gw.process.monitor and not gw.process.audit_scribe
        assert gw.grpc.port == 50123 and gw.grpc.so_reuseport
        assert gw.console.enabled == (i == 0)
        assert gw.process.await_workers
    # Only the first worker polls the ERPs and samples the queue gauges.
    assert [(w.process.sync, w.process.monitor) for w in back] == [(True, True), (False, False)]
    assert all(not w.process.gateway and w.process.audit_scribe for w in back)
    for child in [*front, *back]:
        # The supervisor started the embedded server with the configured fsync setting: nothing to probe.
        assert child.nats.url == "nats://127.0.0.1:4222" and child.nats.durability_check == "skip"
        # The supervisor serves /metrics for all of them; simulators run in their own child.
        assert not child.metrics.enabled and not child.simulators.enabled


def test_one_gateway_does_not_set_so_reuseport(tmp_path: Path) -> None:
    front, _ = _children(_settings(tmp_path), 1)
    assert not front[0].grpc.so_reuseport


def test_gateway_count_defaults_to_the_usable_cores(tmp_path: Path) -> None:
    assert gateway_count(_settings(tmp_path)) == len(os.sched_getaffinity(0))
    assert gateway_count(_settings(tmp_path, process={"gateway_processes": 3})) == 3
    assert gateway_count(_settings(tmp_path, process={"gateway": False})) == 0


def test_a_taken_port_is_refused_before_any_child_starts() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            _check_port("127.0.0.1", port, reuse=True)
