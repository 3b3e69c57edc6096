"""3-node NATS cluster, R3 streams, KV and audit log, a gateway and a worker: the RB_DELIVER leader is killed.

Every call gets an answer, nothing is lost or duplicated, the audit chain holds, writes resume and the backlog
drains; missing return.submitted entries are a known gap (an XFAIL naming them when they show). How fast writes resumed is
reported (``writes_resumed_after_leader_loss_s``), not asserted: no timing in the suite. ``make chaos`` runs the
full-size version with two gateways and two workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from load.faults import AlertSink
from load.scenarios import run_scenario, scenarios
from load.stack import Stack, StackConfig
from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_stream

from .support import CI_OVERRIDES, assert_clean, start_stack


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, alert_sink: AlertSink) -> Iterator[Stack]:
    stack = start_stack(
        tmp_path_factory.mktemp("chaos-cluster"),
        StackConfig(nodes=3, gateways=1, workers=1, alert_webhook=alert_sink.url, overrides=CI_OVERRIDES),
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
async def test_concurrent_audit_writers_on_r3_keep_one_chain(cluster: Stack) -> None:
    # Two writers (as two processes would be) racing on the R3 audit stream: a pipelined append once turned a
    # lost race into a critical write error on every replica and took the stream down (JetStream 10008).
    nc = await nats.connect(servers=cluster.nats_url.split(","))
    try:
        writers = [await AuditLog.open(nc.jetstream(), replicas=3) for _ in range(2)]
        before = await writers[0].last_sequence()

        async def write(log: AuditLog, n: int) -> int:
            return await log.record(
                action="chaos.race", object_type="test", object_id=str(n), tenant_id="load", actor="test"
            )

        await asyncio.gather(*(write(writers[n % 2], n) for n in range(60)))
        assert await writers[0].last_sequence() == before + 60
        report = await verify_stream(writers[0])
        assert report.ok, report.problems[:5]
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def leader_loss(cluster: Stack, alert_sink: AlertSink) -> dict[str, Any]:
    """One run of the scenario, judged by the tests below."""
    # The drain is bounded well below the test timeout: a stuck backlog shows as not drained, not a hang.
    return asyncio.run(
        run_scenario(
            cluster, scenarios("ci")["leader_loss"], calls=90, in_flight=30, channels=4, idle_seconds=0.5,
            drain_timeout=45.0, alerts=alert_sink,
        )
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_leader_loss_answers_every_call_and_keeps_the_chain(leader_loss: dict[str, Any]) -> None:
    result, check = leader_loss, leader_loss["check"]
    killed = [e for e in result["events"] if e["event"] == "kill9_nats"]
    assert len(killed) == 1, result["events"]
    assert [e["leader"] for e in result["events"] if e["event"] == "new_leader"] != [""], result["events"]
    # Writes did resume after the kill (how fast is a figure for benchmarks/README.md, not a test).
    assert result["writes_resumed_after_leader_loss_s"] is not None, result["events"]
    assert check["client_ok"] == result["calls"], check
    assert (check["duplicated"], check["unknown"], check["false_ok"]) == (0, 0, 0), check
    assert check["audit_chain_ok"], check


def test_leader_loss_answers_no_call_internal(leader_loss: dict[str, Any]) -> None:
    # During the election the PubAck request finds no stream leader (NoStreamResponseError): UNAVAILABLE, which
    # the client retries with the same idempotency key. Before bus/link.py listed it, about 150 attempts
    # of this run (247 in the full-size one) were answered INTERNAL.
    errors = leader_loss["client_errors_seen"]
    assert leader_loss["internal_answers"] == 0, errors
    assert "INTERNAL" not in errors, errors


def test_leader_loss_loses_nothing(leader_loss: dict[str, Any]) -> None:
    # Lost, duplicated, unknown, drift and a drained backlog are asserted. Before the worker kept pulling
    # through a failed fetch, 373 of 2,000 returns were never posted and the backlog never drained.
    assert_clean(leader_loss)
