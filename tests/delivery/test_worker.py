"""Delivery worker: flows, exactly-once under faults, per-return ordering, dead letters and replay."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import pytest

from delivery.pipeline_harness import LIFECYCLE, FakeErp, Pipeline, fast_settings, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus.consumer import ConsumerSettings
from returnbridge.connectors.base import DocumentRequest, DocumentResult
from returnbridge.delivery.holding import Holding
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.delivery.work import Work
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import ErpAuthError, PermanentErpError, TransientErpError


def as_tenant(tenant: str) -> None:
    set_principal(Principal(name="rms", tenant_id=tenant))


async def submit(pipeline: Pipeline, order: returns_pb2.ReturnOrder) -> returns_pb2.SubmitReturnResponse:
    return await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))


async def wait_state(
    pipeline: Pipeline, tenant: str, return_id: str, wanted: dict[str, str], within: float = 20
) -> dict:
    async def check() -> dict:
        record = await pipeline.status.get(tenant, return_id)
        assert record is not None
        states = {key: doc["state"] for key, doc in record["documents"].items()}
        assert states == wanted, states
        return record

    return await assert_eventually(check, timeout=within)


async def test_full_netsuite_flow_uses_earlier_ids_as_source(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = await pipeline.start_worker("netsuite")
    for version, event in enumerate(LIFECYCLE, start=1):
        await submit(pipeline, make_order("R1", version, event))
    record = await wait_state(
        pipeline,
        "acme",
        "R1",
        {"1:return_authorization": "DELIVERED", "2:item_receipt": "DELIVERED", "3:credit_memo": "DELIVERED"},
    )
    ra = record["documents"]["1:return_authorization"]["erp_document_id"]
    by_type = {r.document_type: r for r in erp.requests}
    assert by_type["itemReceipt"].source_document_id == ra
    assert by_type["itemReceipt"].source_document_type == "returnAuthorization"
    assert by_type["creditMemo"].source_document_id == ra
    assert [r.external_reference for r in erp.requests] == ["RMA-R1-1", "RMA-R1-2", "RMA-R1-3"]
    # The mapper saw the documents delivered before it (erp_references), e.g. the RA for the receipt.
    assert json.loads(by_type["itemReceipt"].payload)["refs"] == [ra]
    assert json.loads(by_type["creditMemo"].payload)["mapping"] == "netsuite/credit_memo"


async def test_refund_method_selects_cash_refund(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R2", 1))
    await submit(pipeline, make_order("R2", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED))
    await submit(
        pipeline,
        make_order(
            "R2", 3, returns_pb2.LIFECYCLE_EVENT_REFUNDED, refund_method=returns_pb2.REFUND_METHOD_CASH
        ),
    )
    await wait_state(
        pipeline,
        "acme",
        "R2",
        {"1:return_authorization": "DELIVERED", "2:item_receipt": "DELIVERED", "3:cash_refund": "DELIVERED"},
    )
    assert [r.document_type for r in erp.requests] == ["returnAuthorization", "itemReceipt", "cashRefund"]


async def test_transient_and_ambiguous_faults_deliver_exactly_once(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["returnAuthorization"] = [
        TransientErpError("503 from ERP", erp="netsuite", http_status=503),
        "ambiguous",
        TransientErpError("throttled", erp="netsuite", http_status=429, retry_after=0.1),
    ]
    await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R3"))
    record = await wait_state(pipeline, "acme", "R3", {"1:return_authorization": "DELIVERED"})
    assert erp.creates[("returnAuthorization", "RMA-R3-1")] == 1
    doc = record["documents"]["1:return_authorization"]
    # Attempt 1 failed, attempt 2 created then lost the answer, attempt 3's look-up found it: no second create.
    # (A look-up is an ERP call too and counts as an attempt, so a failing look-up backs off and runs out.)
    assert doc["attempts"] == 3
    assert doc["erp_document_id"] == erp.documents[("returnAuthorization", "RMA-R3-1")].document_id


async def test_ordering_under_concurrency_with_random_faults(pipeline: Pipeline) -> None:
    """Many returns, three versions each (in order per return, interleaved), random faults, two workers."""
    as_tenant("acme")
    rng = random.Random(7)
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    seen: list[tuple[str, int]] = []

    def fault(request):  # type: ignore[no-untyped-def]
        if rng.random() < 0.25:
            return rng.choice([TransientErpError("timeout", erp="netsuite"), "ambiguous"])
        return None

    original = erp.create_document

    async def tracking(request):  # type: ignore[no-untyped-def]
        result = await original(request)
        seen.append((request.return_id, int(request.external_reference.rsplit("-", 1)[1])))
        return result

    erp.fault_fn = fault
    erp.create_document = tracking  # type: ignore[method-assign]
    settings = fast_settings(retry=RetryPolicy(base_delay=0.02, max_delay=0.1, max_attempts=50))
    await pipeline.start_worker("netsuite", settings)
    await pipeline.start_worker("netsuite", settings)
    returns = [f"O{i}" for i in range(25)]

    async def life(rid: str) -> None:
        # The lifecycle admission takes a return's versions in order only; returns interleave freely.
        for version in (1, 2, 3):
            await submit(pipeline, make_order(rid, version, LIFECYCLE[version - 1]))

    await asyncio.gather(*(life(rid) for rid in returns))

    async def all_delivered() -> None:
        for rid in returns:
            record = await pipeline.status.get("acme", rid)
            assert record is not None
            assert all(doc["state"] == "DELIVERED" for doc in record["documents"].values()), rid

    await assert_eventually(all_delivered, timeout=60)
    assert all(count == 1 for count in erp.creates.values())
    assert len(erp.creates) == 75
    for rid in returns:
        versions = [v for r, v in seen if r == rid]
        assert versions == sorted(versions), (rid, versions)


async def test_permanent_fault_dead_letters_alerts_and_replay_delivers_once(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["returnAuthorization"] = [
        PermanentErpError("customer 42 does not exist", erp="netsuite", code="USER_ERROR")
    ]
    await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R4", 1))
    await submit(pipeline, make_order("R4", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED))
    record = await wait_state(
        pipeline, "acme", "R4", {"1:return_authorization": "DEAD_LETTERED", "2:item_receipt": "WAITING"}
    )
    dead_letter_id = record["documents"]["1:return_authorization"]["dead_letter_id"]
    letter = await pipeline.dead_letters.get("acme", dead_letter_id)
    assert letter.step == "return_authorization" and letter.error.code == "USER_ERROR"
    assert [a["kind"] for a in pipeline.alerter.alerts] == ["dead_letter"]
    assert erp.creates == {}
    _, sequence = await pipeline.dead_letters.replay("acme", dead_letter_id)
    assert sequence > 0
    await wait_state(
        pipeline, "acme", "R4", {"1:return_authorization": "DELIVERED", "2:item_receipt": "DELIVERED"}
    )
    assert erp.creates[("returnAuthorization", "RMA-R4-1")] == 1
    assert erp.creates[("itemReceipt", "RMA-R4-2")] == 1


async def test_mapping_fix_then_replay(pipeline: Pipeline) -> None:
    as_tenant("acme")
    pipeline.mappers.broken.add("R5")
    erp = await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R5"))
    record = await wait_state(pipeline, "acme", "R5", {"1:return_authorization": "DEAD_LETTERED"})
    doc = record["documents"]["1:return_authorization"]
    assert doc["last_error"]["code"] == "TRANSLATION_FAILED:lines.rate"  # no Python class names reach tenants
    pipeline.mappers.broken.clear()
    await pipeline.dead_letters.replay("acme", doc["dead_letter_id"])
    await wait_state(pipeline, "acme", "R5", {"1:return_authorization": "DELIVERED"})
    assert len(erp.requests) == 1


async def test_exhausted_retries_and_auth_errors_dead_letter(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["returnAuthorization"] = [TransientErpError("down", erp="netsuite")] * 5
    erp.faults["itemReceipt"] = [ErpAuthError("token expired", erp="netsuite", http_status=401)]
    await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R6"))
    record = await wait_state(pipeline, "acme", "R6", {"1:return_authorization": "DEAD_LETTERED"})
    assert record["documents"]["1:return_authorization"]["attempts"] == 5
    await submit(pipeline, make_order("R7"))
    await submit(pipeline, make_order("R7", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED))
    await wait_state(
        pipeline, "acme", "R7", {"1:return_authorization": "DELIVERED", "2:item_receipt": "DEAD_LETTERED"}
    )
    assert {a["kind"] for a in pipeline.alerter.alerts} == {"dead_letter", "erp_auth", "erp_unreachable"}
    # R7's return authorization went through after the outage: the unreachable incident is resolved.
    assert ("erp_unreachable", "netsuite") in pipeline.alerter.resolved


class DownButForA(FakeErp):
    """Every create but A's finds the ERP down (503) until ``up``; C's failure is signalled."""

    def __init__(self) -> None:
        super().__init__()
        self.up = False
        self.c_failed = asyncio.Event()

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        if request.return_id != "A" and not self.up:
            if request.return_id == "C":
                self.c_failed.set()
            raise TransientErpError("503 Service Unavailable", erp=self.erp, http_status=503)
        return await super().create_document(request)


class AuditWaitingForC(AuditLog):
    """The real log, whose append for A (the first write after its ERP answer) waits until C's create failed."""

    c_failed: asyncio.Event  # set by the test: the ERP double's event

    async def record(self, **entry: Any) -> int:
        if entry["object_id"].startswith("A:"):
            await self.c_failed.wait()
        return await super().record(**entry)


async def test_an_answer_written_after_later_failures_does_not_resolve_the_outage(pipeline: Pipeline) -> None:
    # A's create was answered as the ERP went down; B failed before A's outcome was written, C after A's answer.
    # Resolving erp_unreachable on A restarted the outage's clock, and an 8 s outage never paged (make test's
    # erp_outage scenario: behind an open breaker only a probe every 5 s reports). A failure since the answer
    # now keeps the incident open; the first delivery with no failure since its answer resolves it.
    as_tenant("acme")
    erp = DownButForA()
    audit = await AuditWaitingForC.open(pipeline.nc.jetstream())
    audit.c_failed = erp.c_failed
    settings = fast_settings(retry=RetryPolicy(base_delay=0.2, max_delay=0.5, max_attempts=50))
    await pipeline.start_worker("netsuite", settings, erp=erp, audit=audit)
    await submit(pipeline, make_order("B"))
    await assert_eventually(lambda: _reported(pipeline), timeout=20)
    await submit(pipeline, make_order("A"))
    await assert_eventually(lambda: _wanted(erp.creates), timeout=20)  # A answered; its write waits for C
    await submit(pipeline, make_order("C"))
    await wait_state(pipeline, "acme", "A", {"1:return_authorization": "DELIVERED"})
    assert ("erp_unreachable", "netsuite") not in pipeline.alerter.resolved
    erp.up = True
    for return_id in ("B", "C"):
        await wait_state(pipeline, "acme", return_id, {"1:return_authorization": "DELIVERED"})
    assert pipeline.alerter.resolved.count(("erp_unreachable", "netsuite")) == 1


async def _reported(pipeline: Pipeline) -> None:
    assert any(a["kind"] == "erp_unreachable" for a in pipeline.alerter.alerts)


async def _wanted(creates: Counter[tuple[str, str]]) -> None:
    assert creates, "A not created yet"


async def test_discard_releases_later_versions(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["returnAuthorization"] = [PermanentErpError("bad", erp="netsuite")]
    await pipeline.start_worker("netsuite")
    await submit(pipeline, make_order("R8", 1))
    await submit(pipeline, make_order("R8", 2, returns_pb2.LIFECYCLE_EVENT_CANCELLED))
    record = await wait_state(pipeline, "acme", "R8", {"1:return_authorization": "DEAD_LETTERED"})
    await pipeline.dead_letters.discard(
        "acme", record["documents"]["1:return_authorization"]["dead_letter_id"]
    )

    async def released() -> None:
        current = await pipeline.status.get("acme", "R8")
        assert current is not None and current["versions"]["2"]["state"] == "DELIVERED"

    await assert_eventually(released, timeout=10)


async def test_queue_depth_gauge_and_backlog_check(pipeline: Pipeline) -> None:
    from prometheus_client import REGISTRY

    as_tenant("acme")
    checks: list[tuple[str, int]] = []

    async def check_backlog(*, key: str, depth: int, severity: str = "warning") -> bool:
        checks.append((key, depth))
        return False

    pipeline.alerter.check_backlog = check_backlog  # type: ignore[attr-defined]
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.fault_fn = lambda request: TransientErpError("down", erp="netsuite", retry_after=5)
    for i in range(3):
        await submit(pipeline, make_order(f"Q{i}"))
    await pipeline.start_worker("netsuite", fast_settings(depth_check_seconds=0.1))

    async def reported() -> None:
        assert ("RB_DELIVER/rb-deliver-netsuite", 3) in checks
        value = REGISTRY.get_sample_value(
            "rb_queue_depth", {"stream": "RB_DELIVER", "consumer": "rb-deliver-netsuite"}
        )
        assert value == 3

    await assert_eventually(reported)


async def test_waiting_message_is_parked_in_dlq_before_max_deliver(pipeline: Pipeline) -> None:
    from returnbridge.bus.consumer import ConsumerSettings

    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    erp.faults["returnAuthorization"] = [PermanentErpError("bad customer", erp="netsuite")]
    settings = fast_settings(
        retry=RetryPolicy(base_delay=0.05, max_delay=0.2, max_attempts=2),
        consumer=ConsumerSettings(ack_wait_seconds=10.0, max_deliver=4),
    )
    await pipeline.start_worker("netsuite", settings)
    await submit(pipeline, make_order("P1", 1))
    await submit(pipeline, make_order("P1", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED))
    record = await wait_state(
        pipeline, "acme", "P1", {"1:return_authorization": "DEAD_LETTERED", "2:item_receipt": "DEAD_LETTERED"}
    )
    parked = await pipeline.dead_letters.get("acme", record["documents"]["2:item_receipt"]["dead_letter_id"])
    assert parked.reason.startswith("gave up waiting for earlier versions (v1 DEAD_LETTERED)")
    # Replaying both in order still delivers each document once.
    await pipeline.dead_letters.replay(
        "acme", record["documents"]["1:return_authorization"]["dead_letter_id"]
    )
    await pipeline.dead_letters.replay("acme", parked.id)
    await wait_state(
        pipeline, "acme", "P1", {"1:return_authorization": "DELIVERED", "2:item_receipt": "DELIVERED"}
    )
    assert sorted(erp.creates.values()) == [1, 1]


async def test_worker_crash_after_erp_applied_is_delivered_once(pipeline: Pipeline) -> None:
    """The ERP created the document, then the worker died before recording it: the redelivery finds it."""
    from returnbridge.bus.consumer import ConsumerSettings

    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    created = asyncio.Event()
    original = erp.create_document

    async def create_then_hang(request):  # type: ignore[no-untyped-def]
        result = await original(request)
        created.set()
        await asyncio.Event().wait()  # the process dies here, before answering
        return result

    erp.create_document = create_then_hang  # type: ignore[method-assign]
    settings = fast_settings(erp_timeout_seconds=1.0, consumer=ConsumerSettings(ack_wait_seconds=1.5))
    await pipeline.start_worker("netsuite", settings)
    await submit(pipeline, make_order("K1"))
    await asyncio.wait_for(created.wait(), timeout=10)
    crashed = pipeline.workers.pop()
    assert crashed._task is not None
    crashed._task.cancel()  # no graceful stop: heartbeats end, nothing is acked or written
    erp.create_document = original  # type: ignore[method-assign]
    await pipeline.start_worker("netsuite", settings)
    record = await wait_state(pipeline, "acme", "K1", {"1:return_authorization": "DELIVERED"})
    assert erp.creates[("returnAuthorization", "RMA-K1-1")] == 1
    assert (
        record["documents"]["1:return_authorization"]["erp_document_id"]
        == next(iter(erp.documents.values())).document_id
    )


class _BeatCounter:
    def __init__(self, fail: bool) -> None:
        self.beats = 0
        self.fail = fail

    async def in_progress(self) -> None:
        self.beats += 1
        if self.fail:
            raise ConnectionError("lost the connection for one beat")


async def test_heartbeat_beats_every_interval_and_survives_failed_beats() -> None:
    for fail in (False, True):
        msg = _BeatCounter(fail)
        held = Work(msg, returns_pb2.ReturnOrder(), [], {})  # type: ignore[arg-type]
        holding = Holding([held], 0.05)
        holding.start()

        async def beat_twice(msg: _BeatCounter = msg) -> None:
            assert msg.beats >= 2

        await assert_eventually(beat_twice)
        holding.release(held)
        stopped_at = msg.beats
        # Once released no beat is scheduled any more (a failed beat's error is consumed, not warned about).
        await asyncio.sleep(0.2)
        assert msg.beats == stopped_at


async def test_slow_erp_call_holds_only_its_return_not_the_next_fetch(pipeline: Pipeline) -> None:
    """Batches overlap: later returns are delivered while one call hangs; its return's next version waits its
    turn in the worker (no WAITING round trips through JetStream) and follows in order."""
    as_tenant("acme")
    erp = FakeErp()
    pipeline.erps["netsuite"] = erp
    release = asyncio.Event()
    hanging = asyncio.Event()
    original = erp.create_document
    order_of_creates: list[str] = []

    async def slow_for_s1(request):  # type: ignore[no-untyped-def]
        if request.external_reference == "RMA-S1-1":
            hanging.set()
            await release.wait()
        order_of_creates.append(request.external_reference)
        return await original(request)

    erp.create_document = slow_for_s1  # type: ignore[method-assign]
    await pipeline.start_worker("netsuite", fast_settings(batch_size=5))
    await submit(pipeline, make_order("S1"))
    await asyncio.wait_for(hanging.wait(), timeout=10)
    await submit(pipeline, make_order("S1", 2, LIFECYCLE[1]))
    for n in range(12):  # more than two batches of 5
        await submit(pipeline, make_order(f"F{n}"))
    for n in range(12):
        await wait_state(pipeline, "acme", f"F{n}", {"1:return_authorization": "DELIVERED"})
    record = await pipeline.status.get("acme", "S1")
    assert record is not None
    assert record["documents"]["2:item_receipt"]["state"] == "ACCEPTED"  # held in the worker, not WAITING
    release.set()
    await wait_state(
        pipeline, "acme", "S1", {"1:return_authorization": "DELIVERED", "2:item_receipt": "DELIVERED"}
    )
    s1 = [ref for ref in order_of_creates if ref.startswith("RMA-S1")]
    assert s1 == ["RMA-S1-1", "RMA-S1-2"]


async def test_batch_that_cannot_read_state_is_redelivered_and_the_worker_keeps_pulling(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    as_tenant("acme")
    real_read = pipeline.status.get_versioned
    failures = [ConnectionError("KV unavailable")]

    async def flaky_read(tenant: str, return_id: str):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        return await real_read(tenant, return_id)

    pipeline.status.get_versioned = flaky_read  # type: ignore[method-assign]
    settings = fast_settings(erp_timeout_seconds=0.5, consumer=ConsumerSettings(ack_wait_seconds=1.0))
    erp = await pipeline.start_worker("netsuite", settings)
    await submit(pipeline, make_order("B1"))
    await wait_state(pipeline, "acme", "B1", {"1:return_authorization": "DELIVERED"})
    await submit(pipeline, make_order("B2"))
    await wait_state(pipeline, "acme", "B2", {"1:return_authorization": "DELIVERED"})
    assert erp.creates[("returnAuthorization", "RMA-B1-1")] == 1
    assert "delivery batch failed" in caplog.text
