"""The load and chaos tool (benchmarks/load) against real processes: one single-node stack per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from load.faults import AlertSink
from load.stack import Stack, StackConfig

from .support import CI_OVERRIDES, start_stack


@pytest.fixture(scope="session")
def alert_sink() -> Iterator[AlertSink]:
    sink = AlertSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="module")
def single_node(tmp_path_factory: pytest.TempPathFactory, alert_sink: AlertSink) -> Iterator[Stack]:
    """nats-server (fsync on), simulators, one gateway and one worker process, shared by the module."""
    stack = start_stack(
        tmp_path_factory.mktemp("chaos-single"),
        StackConfig(
            nodes=1,
            gateways=1,
            workers=1,
            alert_webhook=alert_sink.url,
            erp_unreachable_after_s=2.0,
            overrides=CI_OVERRIDES,
        ),
    )
    try:
        yield stack
    finally:
        stack.stop()
