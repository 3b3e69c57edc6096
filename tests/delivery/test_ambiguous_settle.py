"""A create whose answer was lost may still be committed by the ERP later: no second create before it settles.

Real nats-server, the real worker; the ERP double accepts duplicate references (as S/4HANA does by default), so a
second create would be a second document.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError

from delivery.pipeline_harness import FakeErp, Pipeline, fast_settings, make_order
from delivery.test_worker import as_tenant, submit, wait_state
from returnbridge.connectors.base import DocumentRequest, DocumentResult
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.errors import AmbiguousErpError

KEY = ("returnAuthorization", "RMA-S1-1")
# The ERP deadline 0.5 s; a create's answer lost at once; the ERP may commit it up to 2 s after it was sent.
SETTINGS = fast_settings(erp_timeout_seconds=0.5, ambiguous_settle_seconds=2.0)


class SlowCommitErp(FakeErp):
    """The first create times out on our side while the ERP keeps working on it: it commits ``late`` s later
    (``None``: never). Every create's send time is kept."""

    def __init__(self, late: float | None) -> None:
        super().__init__()
        self.late = late
        self.sent: list[float] = []
        self._pending: asyncio.Task[DocumentResult] | None = None

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        self.sent.append(time.time())
        if len(self.sent) > 1:
            return await super().create_document(request)
        if self.late is not None:
            self._pending = asyncio.ensure_future(self._commit_later(request, self.late))
        raise AmbiguousErpError("create exceeded the ERP deadline", erp=self.erp)

    async def _commit_later(self, request: DocumentRequest, late: float) -> DocumentResult:
        await asyncio.sleep(late)
        return await super().create_document(request)


async def test_a_late_commit_is_found_not_created_again(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = SlowCommitErp(late=1.0)
    pipeline.erps["netsuite"] = erp
    await pipeline.start_worker("netsuite", SETTINGS)
    await submit(pipeline, make_order("S1"))
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DELIVERED"})
    # Retries come every 0.05-0.2 s: without the settle window the first look-up (before the ERP committed)
    # finds nothing and a second create makes a second document.
    assert len(erp.sent) == 1 and erp.creates[KEY] == 1
    doc = record["documents"]["1:return_authorization"]
    assert doc["erp_document_id"] == erp.documents[KEY].document_id


async def test_a_create_that_never_committed_is_sent_again_once_it_settled(pipeline: Pipeline) -> None:
    as_tenant("acme")
    erp = SlowCommitErp(late=None)
    pipeline.erps["netsuite"] = erp
    await pipeline.start_worker("netsuite", SETTINGS)
    await submit(pipeline, make_order("S1"))
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DELIVERED"})
    assert erp.creates[KEY] == 1 and len(erp.sent) == 2
    # The second create waited out the window from the first one's send, not the retry backoff (0.05-0.2 s).
    assert erp.sent[1] - erp.sent[0] >= 2.0
    doc = record["documents"]["1:return_authorization"]
    assert doc["erp_document_id"] == erp.documents[KEY].document_id
    # Ambiguous create, look-up while settling, look-up and create: 3 attempts of the budget of 5.
    assert doc["attempts"] == 3
    # Only the lost answer is reported as the ERP failing; the wait is the ERP answering "not yet".
    failing = [a for a in pipeline.alerter.alerts if a["kind"] == "erp_unreachable"]
    assert len(failing) == 1


async def test_a_replay_of_a_create_dead_lettered_while_ambiguous_waits_for_it_too(
    pipeline: Pipeline,
) -> None:
    as_tenant("acme")
    erp = SlowCommitErp(late=1.0)
    pipeline.erps["netsuite"] = erp
    # One attempt: the ambiguous create is dead-lettered at once, and an operator replays it straight away.
    await pipeline.start_worker(
        "netsuite", SETTINGS.model_copy(update={"retry": RetryPolicy(max_attempts=1)})
    )
    await submit(pipeline, make_order("S1"))
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DEAD_LETTERED"})
    doc = record["documents"]["1:return_authorization"]
    assert abs(doc["ambiguous_at"] - erp.sent[0]) < 0.5  # kept with the dead letter
    await pipeline.dead_letters.replay("acme", doc["dead_letter_id"])
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DEAD_LETTERED"})
    doc = record["documents"]["1:return_authorization"]
    # Within the window the replay looked and did not create: still only the first send.
    assert doc["last_error"]["code"] == "SETTLING" and len(erp.sent) == 1
    await asyncio.sleep(max(0.0, erp.sent[0] + 2.0 - time.time()))
    await pipeline.dead_letters.replay("acme", doc["dead_letter_id"])
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DELIVERED"})
    assert len(erp.sent) == 1 and erp.creates[KEY] == 1
    assert record["documents"]["1:return_authorization"]["erp_document_id"] == erp.documents[KEY].document_id


async def test_the_window_holds_when_the_retrying_write_was_lost_too(pipeline: Pipeline) -> None:
    """NATS went away as the answer was lost: the RETRYING write (and its ambiguous_at) never landed. The worker
    that saw the loss still keeps the window for the redelivered copy."""
    as_tenant("acme")
    erp = SlowCommitErp(late=1.0)
    pipeline.erps["netsuite"] = erp
    transition = pipeline.status.transition
    lost_writes: list[str] = []

    async def losing_the_first_retrying_write(*args: Any, **kwargs: Any) -> Any:
        if args[4] == "RETRYING" and not lost_writes:
            lost_writes.append(args[1])
            raise NatsTimeoutError
        return await transition(*args, **kwargs)

    pipeline.status.transition = losing_the_first_retrying_write  # type: ignore[method-assign]
    await pipeline.start_worker("netsuite", SETTINGS)
    await submit(pipeline, make_order("S1"))
    record = await wait_state(pipeline, "acme", "S1", {"1:return_authorization": "DELIVERED"})
    assert lost_writes == ["S1"]
    # Without the worker's own memory of the loss the redelivered copy (0.05-0.2 s later) creates again.
    assert len(erp.sent) == 1 and erp.creates[KEY] == 1
    assert record["documents"]["1:return_authorization"]["erp_document_id"] == erp.documents[KEY].document_id
