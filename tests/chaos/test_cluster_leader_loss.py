"""3-node NATS cluster, R3 streams and KV, two gateways and two workers: the RB_DELIVER leader is killed.

Nothing lost, duplicated, unknown or unaudited; the backlog drains once the old leader rejoins. How fast
writes resumed is reported (`writes_resumed_after_leader_loss_s`), not asserted: no timing in the suite.
"""

from __future__ import annotations

from collections.abc import Iterator

import nats
import pytest

from load.faults import AlertSink
from load.scenarios import run_scenario, scenarios
from load.stack import Stack, StackConfig

from .support import CI_OVERRIDES, assert_clean, start_stack


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, alert_sink: AlertSink) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("chaos-cluster"),
        StackConfig(nodes=3, gateways=2, workers=2, alert_webhook=alert_sink.url, overrides=CI_OVERRIDES),
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(300)
async def test_every_stream_bucket_and_the_audit_log_have_three_replicas(cluster: Stack) -> None:
    nc = await nats.connect(servers=cluster.nats_url.split(","))
    try:
        js = nc.jetstream()
        for stream in (
            "RB_DELIVER",
            "RB_EVENTS",
            "RB_DLQ",
            "RB_AUDIT",
            "KV_rb_sync_state",
            "KV_rb_idempotency",
        ):
            info = await js.stream_info(stream)
            assert info.config.num_replicas == 3, stream
            assert info.cluster is not None and info.cluster.leader, stream
            assert len(info.cluster.replicas or []) == 2, (stream, info.cluster)
    finally:
        await nc.close()


@pytest.mark.timeout(300)
async def test_leader_loss_mid_load_loses_nothing(cluster: Stack, alert_sink: AlertSink) -> None:
    result = await run_scenario(
        cluster, scenarios("ci")["leader_loss"], calls=90, in_flight=30, channels=4, idle_seconds=1.0,
        drain_timeout=120.0, alerts=alert_sink,
    )  # fmt: skip
    assert_clean(result)
    killed = [e for e in result["events"] if e["event"] == "kill9_nats"]
    assert len(killed) == 1, result["events"]
    new_leader = [e["leader"] for e in result["events"] if e["event"] == "new_leader"]
    assert new_leader and new_leader[0], result["events"]
    # Writes did resume after the kill (how fast is a figure for benchmarks/README.md, not a test).
    assert result["writes_resumed_after_leader_loss_s"] is not None, result["events"]
