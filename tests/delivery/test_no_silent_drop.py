"""No message dropped silently: every attempt counts (look-ups too), unexpected failures are bounded, and the
MaxDeliver advisory dead-letters whatever still reaches JetStream's limit."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

import pytest
from nats.aio.msg import Msg

from connectors.harnesses.sap import SapODataHarness
from delivery.pipeline_harness import FakeErp, Pipeline, fast_settings, make_order
from helpers.eventually import assert_eventually
from mapping.samples import build_return
from returnbridge.api.v1 import returns_pb2, sync_pb2
from returnbridge.bus import subjects
from returnbridge.bus.consumer import ConsumerSettings, delivery_subscription
from returnbridge.delivery.advisory import MaxDeliveriesListener
from returnbridge.delivery.breaker import BreakerSettings
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.domain.context import Principal, set_principal
from returnbridge.mapping import MappingRegistry

RETURNS = 4
MAX_ATTEMPTS = 5


def as_tenant(tenant: str) -> None:
    set_principal(Principal(name="rms", tenant_id=tenant))


async def submit(pipeline: Pipeline, order: returns_pb2.ReturnOrder) -> None:
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))


async def wait_state(
    pipeline: Pipeline, tenant: str, return_id: str, wanted: dict[str, str], within: float = 30
) -> dict[str, Any]:
    async def check() -> dict[str, Any]:
        record = await pipeline.status.get(tenant, return_id)
        assert record is not None
        assert {key: doc["state"] for key, doc in record["documents"].items()} == wanted, record
        return record

    return await assert_eventually(check, timeout=within)


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


async def test_long_outage_counts_lookups_backs_off_and_dead_letters_with_an_alert(
    pipeline: Pipeline, registry: MappingRegistry
) -> None:
    """SAP down for the whole test: after the first create fails, every retry starts with a look-up that fails
    too. Each must count, back off further and end in the DLQ long before MaxDeliver (here 40)."""
    intake = pipeline.routed_intake("sap")
    harness = SapODataHarness()
    await harness.start()
    try:
        # Retry-After 0: the worker's own backoff sets the pace, as it would for a plain connection refusal.
        await harness.set_faults({"outage": True, "retry_after": 0})
        retry = RetryPolicy(
            base_delay=0.1, multiplier=2.0, max_delay=2.0, jitter=0.0, max_attempts=MAX_ATTEMPTS
        )
        settings = fast_settings(
            retry=retry,
            consumer=ConsumerSettings(ack_wait_seconds=10.0, max_deliver=40),
            # The retry budget itself is under test: no breaker pausing the target (test_breaker.py).
            breaker=BreakerSettings(enabled=False),
        )
        await pipeline.start_connector_worker("sap", harness.connector(timeout=2.0), registry, settings)
        retries: dict[str, list[tuple[float, int]]] = defaultdict(list)

        async def on_event(msg: Msg) -> None:
            event = sync_pb2.SyncEvent.FromString(msg.data)
            if event.state == sync_pb2.SYNC_STATE_RETRYING:
                retries[event.return_id].append((time.monotonic(), event.attempt))

        events = await pipeline.nc.subscribe(subjects.status("acme"), cb=on_event)
        as_tenant("acme")
        orders = [
            build_return(1, seed=10 + i, serialized_every=0, version=1, erp="sap") for i in range(RETURNS)
        ]
        for order in orders:
            await intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))

        await pipeline.wait_documents("acme", orders, "DEAD_LETTERED", timeout=60)
        outage_requests = harness.sim.kit.faults.injected.get("outage", 0)
    finally:
        await harness.stop()
        await events.unsubscribe()

    for order in orders:
        doc = await pipeline.only_document("acme", order.return_id)
        # The attempt counter advanced through the failed look-ups up to the budget.
        assert doc["attempts"] == MAX_ATTEMPTS
        # RETRYING after each failed attempt but the last, the counter one higher each time ...
        trail = retries[order.return_id]
        assert [a for _, a in trail] == list(range(1, MAX_ATTEMPTS)), trail
        # ... and the pause before the next attempt growing: 0.1, 0.2, 0.4 s (a lower bound: load only slows).
        gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(trail)]
        assert all(gap >= 0.09 * 2**i for i, gap in enumerate(gaps)), gaps
        letter = await pipeline.dead_letters.get("acme", doc["dead_letter_id"])
        assert "retries exhausted" in letter.reason
    # Bounded request rate: at most two ERP calls (CSRF token fetch + write or look-up) per attempt.
    assert 0 < outage_requests <= RETURNS * MAX_ATTEMPTS * 2, outage_requests
    alerts = [a for a in pipeline.alerter.alerts if a["kind"] == "dead_letter"]
    assert {a["key"].split(":")[1] for a in alerts} == {o.return_id for o in orders}


async def test_unexpected_exception_is_bounded_and_dead_lettered(pipeline: Pipeline) -> None:
    """A bug in the connector (not an ERP error) must not loop until MaxDeliver."""
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp

    def bug(_request: object) -> Exception:
        return RuntimeError("connector bug")

    erp.fault_fn = bug
    settings = fast_settings(consumer=ConsumerSettings(ack_wait_seconds=10.0, max_deliver=40))
    await pipeline.start_worker("netsuite", settings)
    await submit(pipeline, make_order("U1"))
    record = await wait_state(pipeline, "acme", "U1", {"1:return_authorization": "DEAD_LETTERED"})
    assert len(erp.requests) == settings.retry.max_attempts
    letter = await pipeline.dead_letters.get(
        "acme", record["documents"]["1:return_authorization"]["dead_letter_id"]
    )
    assert "connector bug" in letter.reason and "failed unexpectedly 5 times" in letter.reason
    assert [a["key"] for a in pipeline.alerter.alerts if a["kind"] == "dead_letter"] == [
        "acme:U1:1:unexpected"
    ]


async def test_state_store_down_for_good_still_ends_in_the_dlq(pipeline: Pipeline) -> None:
    """The batch cannot even read the sync state: each message is counted, backed off and dead-lettered."""
    as_tenant("acme")
    await submit(pipeline, make_order("K1"))

    async def kv_down(tenant: str, return_id: str) -> None:
        raise ConnectionError("KV unavailable")

    real_read = pipeline.status.get_versioned
    pipeline.status.get_versioned = kv_down  # type: ignore[method-assign,assignment]
    erp = await pipeline.start_worker("netsuite", fast_settings(consumer=ConsumerSettings(max_deliver=40)))

    async def parked() -> int:
        count = await pipeline.dead_letters.count()
        assert count == 1
        return count

    await assert_eventually(parked, timeout=30)
    pipeline.status.get_versioned = real_read  # type: ignore[method-assign]
    assert erp.requests == []
    # The sync state was reachable for the best-effort part (only the batch read was broken).
    await wait_state(pipeline, "acme", "K1", {"1:return_authorization": "DEAD_LETTERED"})
    assert any(a["key"] == "acme:K1:1:unexpected" for a in pipeline.alerter.alerts)


async def test_max_deliveries_advisory_dead_letters_what_reaches_the_limit(pipeline: Pipeline) -> None:
    """A consumer that only naks (a worker without budgets) hits MaxDeliver: the advisory listener parks it."""
    as_tenant("acme")
    listener = MaxDeliveriesListener(
        pipeline.nc, pipeline.dead_letters, pipeline.status, alerter=pipeline.alerter
    )
    await listener.start()
    try:
        await submit(pipeline, make_order("M1"))
        sub = await delivery_subscription(
            pipeline.nc.jetstream(), "netsuite", ConsumerSettings(ack_wait_seconds=30.0, max_deliver=2)
        )
        for _ in range(2):
            (msg,) = await sub.fetch(1, timeout=5)
            await msg.nak()
        # The server notices the limit when it next looks for a message to deliver (a pull waiting).
        with pytest.raises(TimeoutError):
            await sub.fetch(1, timeout=1)
        record = await wait_state(pipeline, "acme", "M1", {"1:return_authorization": "DEAD_LETTERED"})
        letter = await pipeline.dead_letters.get(
            "acme", record["documents"]["1:return_authorization"]["dead_letter_id"]
        )
        assert letter.reason.startswith("JetStream gave up after 2 deliveries")
        assert letter.return_id == "M1"
        assert [a["key"] for a in pipeline.alerter.alerts] == ["acme:M1:1:max_deliver"]
        # The work queue no longer holds it: the DLQ copy owns the message now.
        info = await pipeline.nc.jetstream().stream_info(subjects.DELIVER_STREAM)
        assert info.state.messages == 0
        # Replay from the DLQ delivers it once through a real worker.
        await sub.unsubscribe()
        await pipeline.nc.jetstream().delete_consumer(
            subjects.DELIVER_STREAM, subjects.deliver_consumer("netsuite")
        )
        erp = await pipeline.start_worker("netsuite")
        await pipeline.dead_letters.replay("acme", letter.id)
        await wait_state(pipeline, "acme", "M1", {"1:return_authorization": "DELIVERED"})
        assert sum(erp.creates.values()) == 1
    finally:
        await listener.stop()
