"""Messages a worker holds while they wait for a slot or their return's turn must not reach their ack wait.

A worker fetches two batches (400 messages on defaults) and works on 64 at a time. With an ERP that answers
slowly (each call near its deadline), the last messages of a batch wait several ack waits for a slot. Without a
sign of life JetStream hands them to another worker too; that worker looks up and creates, and this one, whose
batch read of the sync record is old by then and whose copy is a first delivery, creates again.
"""

from __future__ import annotations

import asyncio

from delivery.pipeline_harness import FakeErp, Pipeline, fast_settings, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.bus.consumer import ConsumerSettings
from returnbridge.connectors.base import DocumentRequest, DocumentResult
from returnbridge.domain.context import Principal, set_principal

RETURNS = [f"H{n}" for n in range(6)]


class SlowErp(FakeErp):
    """Every create takes most of the ERP deadline (an ERP answering slowly under load)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        await asyncio.sleep(self.seconds)
        return await super().create_document(request)


async def test_messages_waiting_for_a_slot_are_not_handed_to_a_second_worker(pipeline: Pipeline) -> None:
    # One slot and 0.7 s per create: the sixth message waits 3.5 s, well past the 2 s ack wait.
    settings = fast_settings(
        concurrency=1, erp_timeout_seconds=1.0, consumer=ConsumerSettings(ack_wait_seconds=2.0)
    )
    erp = pipeline.erps["netsuite"] = SlowErp(0.7)
    set_principal(Principal(name="rms", tenant_id="acme"))
    for return_id in RETURNS:
        await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order(return_id)))
    await pipeline.start_worker("netsuite", settings)  # fetches all six in one batch

    async def first_create_started() -> None:
        assert erp.requests

    await assert_eventually(first_create_started, timeout=10, interval=0.05)
    await pipeline.start_worker("netsuite", settings)  # would get whatever reaches its ack wait

    async def all_delivered() -> None:
        for return_id in RETURNS:
            record = await pipeline.status.get("acme", return_id)
            assert record is not None
            assert [d["state"] for d in record["documents"].values()] == ["DELIVERED"], return_id

    await assert_eventually(all_delivered, timeout=30, interval=0.1)
    await asyncio.sleep(2.5)  # one more ack wait: a copy handed out again would have been created by now
    assert sorted(erp.creates.values()) == [1] * len(RETURNS), erp.creates
