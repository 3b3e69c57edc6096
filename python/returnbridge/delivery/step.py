"""Delivering one step: look up only when an earlier outcome is unknown, create under the ERP deadline, hand on."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from returnbridge.connectors.base import Connector, DocumentRequest, DocumentResult
from returnbridge.connectors.tally import tally_requests
from returnbridge.delivery.breaker import PROBE_REFERENCE, Breaker
from returnbridge.delivery.headers import H_REPLAY_OF
from returnbridge.delivery.outcome import OutcomeRecorder
from returnbridge.delivery.sessions import Sessions
from returnbridge.delivery.work import Work
from returnbridge.domain.erps import erp_name
from returnbridge.domain.steps import PlannedStep
from returnbridge.domain.validation import MAX_EXTERNAL_REFERENCE
from returnbridge.errors import (
    AmbiguousErpError,
    EarlierCreateSettling,
    ErpAuthError,
    PermanentErpError,
    ReturnBridgeError,
    TransientErpError,
)
from returnbridge.observability.metrics import count_erp_call, count_erp_requests, count_processing
from returnbridge.sync.status import SyncStateStore, doc_key, source_document

__all__ = ["StepDeliverer", "external_reference"]


def external_reference(work: Work) -> str:
    """What the ERP document carries as its external reference (and what a look-up searches for)."""
    return f"{work.order.rma_number or work.order.return_id}-{work.order.version}"


class StepDeliverer:
    """Delivers one planned document of one message to the target's connector.

    Args:
        connector: the target's ERP connector.
        status: sync state (IN_PROGRESS is announced here; outcomes go through ``outcomes``).
        outcomes: records what happened.
        erp_timeout_seconds: deadline handed to the connector; the call itself gets one second more.
        settle_seconds: how long after a create's answer was lost the ERP may still commit it (no second create
            before).
        sessions: the worker's NATS sessions: a message fetched before a reconnect is dropped, one stored
            before it is looked up first (``delivery/sessions.py``); None: trust the delivery count alone.
        breaker: the target's circuit breaker (``delivery/breaker.py``): told of every call; while it is open a
            message is handed back without an attempt.
    """

    def __init__(
        self,
        connector: Connector,
        status: SyncStateStore,
        outcomes: OutcomeRecorder,
        *,
        erp_timeout_seconds: float,
        settle_seconds: float,
        breaker: Breaker,
        sessions: Sessions | None = None,
    ) -> None:
        self.connector = connector
        self._status = status
        self._outcomes = outcomes
        self._timeout = erp_timeout_seconds
        self._settle = settle_seconds
        # (document type, external reference) -> when a create's answer was lost here: the stored ambiguous_at
        # may not have landed (the RETRYING write fails when NATS went away in the same moment).
        self._lost: dict[tuple[str, str], float] = {}
        self._sessions = sessions
        self._breaker = breaker
        # (ERP name, document type) of the first call: what the breaker's probe looks up while it is open.
        self._probe_target: tuple[str, str] | None = None

    async def deliver(
        self, work: Work, step: PlannedStep, record: dict[str, Any], revision: int
    ) -> tuple[dict[str, Any] | None, int] | None:
        """Deliver one document; the stored record and revision when confirmed (None: nak'ed or dead-lettered).

        Only outcomes are stored (DELIVERED, RETRYING, DEAD_LETTERED) so the happy path costs one KV write;
        IN_PROGRESS is announced as an event. Any redelivery, earlier attempt or replay looks the document up
        by its external reference before creating, which covers a crash between the ERP call and the write.
        """
        order, msg = work.order, work.msg
        version = int(order.version)
        # A copy: local attempt counting must not leak into ``record``, the CAS base of the next write.
        doc = dict(record["documents"][doc_key(version, step.step)])
        erp = erp_name(int(doc["erp"]), self.connector.erp)
        reference = external_reference(work)
        if len(reference) > MAX_EXTERNAL_REFERENCE:
            reason = f"external reference {reference!r} exceeds {MAX_EXTERNAL_REFERENCE} characters"
            await self._outcomes.dead_letter(work, step, doc, reason, None)
            return None
        source_id = ""
        if step.source:
            source = source_document(record, step.source, version)
            if source is None:
                reason = f"no delivered {step.source!r} document to follow from"
                await self._outcomes.dead_letter(work, step, doc, reason, None)
                return None
            source_id = source["erp_document_id"]
        attempted = False
        creating = False  # this attempt sent (or was about to send) a create
        if work.stale():
            return None  # fetched before a reconnect: see Work.nak
        if self._breaker.is_open:
            # The ERP is down: back to the stream without spending an attempt; the worker fetches nothing more
            # until a probe gets an answer.
            await work.nak(delay=self._breaker.settings.probe_seconds)
            return None
        if self._probe_target is None:  # one connector, one ERP: any of its document types will do
            self._probe_target = (erp, step.document_type)
        try:
            result: DocumentResult | None = None
            if (
                doc["attempts"] > 0
                or doc["state"] in ("IN_PROGRESS", "RETRYING")
                or msg.metadata.num_delivered > 1
                or H_REPLAY_OF in work.headers
                or (self._sessions is not None and await self._sessions.maybe_attempted(msg))
            ):
                # An earlier attempt may have reached the ERP (ambiguous failure or a crash): look before creating.
                # The look-up is the attempt's first ERP call, so a failing look-up counts and backs off like a
                # failing create; otherwise a long outage retries it forever at the base delay.
                doc["attempts"] += 1
                attempted = True
                result = await self._call(
                    erp, "find_document", self.connector.find_document(step.document_type, reference)
                )
                if result is None:
                    self._check_settled(doc, (step.document_type, reference))
            if result is None:
                translation = work.translations.get(step.mapping)
                if isinstance(translation, ReturnBridgeError) or translation is None:
                    count_processing("translation_failed")
                    await self._outcomes.dead_letter(
                        work,
                        step,
                        doc,
                        f"translation failed: {translation}",
                        translation,
                        attempted=attempted,
                    )
                    return None
                if work.stale():
                    return None
                if not attempted:
                    doc["attempts"] += 1
                    attempted = True
                await self._status.announce(
                    record, version, step.step, "IN_PROGRESS", attempt=doc["attempts"]
                )
                request = self._request(work, step, record, translation, reference, source_id)
                creating = True
                # No beat of its own: the worker's Holding beats every message in hand, this one included.
                result = await self._call(erp, "create_document", self.connector.create_document(request))
        except (PermanentErpError, ErpAuthError) as exc:
            await self._outcomes.refused(work, step, doc, exc, erp=erp, attempted=attempted)
            return None
        except TransientErpError as exc:
            # When the create's answer was found lost, not when the call began: the request may have waited for
            # a connection first, and it was sent no later than now (wall clock: any worker reads it).
            ambiguous_at = time.time() if creating and isinstance(exc, AmbiguousErpError) else None
            if ambiguous_at is not None:
                self._remember_lost((step.document_type, reference), ambiguous_at)
            await self._outcomes.transient(
                work, step, doc, exc, erp=erp, attempted=attempted, ambiguous_at=ambiguous_at
            )
            return None
        return await self._outcomes.delivered(
            work, step, (record, revision), result, erp=erp, reference=reference, attempted=attempted
        )

    def _remember_lost(self, key: tuple[str, str], at: float) -> None:
        # Bounded by age: past the window an entry no longer matters.
        for stale in [k for k, when in self._lost.items() if when + self._settle < at]:
            del self._lost[stale]
        self._lost[key] = at

    def _check_settled(self, doc: dict[str, Any], key: tuple[str, str]) -> None:
        """Raise EarlierCreateSettling while an ambiguous create of this document may still commit."""
        ambiguous_at = max(float(doc.get("ambiguous_at") or 0.0), self._lost.get(key, 0.0))
        if not ambiguous_at:
            return
        remaining = ambiguous_at + self._settle - time.time()
        if remaining > 0:
            raise EarlierCreateSettling(
                f"not found yet; the create whose answer was lost {self._settle - remaining:.0f} s ago may still "
                f"commit, so no second create for another {remaining:.0f} s",
                code="SETTLING",
                retry_after=remaining,
            )

    def _request(
        self,
        work: Work,
        step: PlannedStep,
        record: dict[str, Any],
        payload: bytes,
        reference: str,
        source_id: str,
    ) -> DocumentRequest:
        source_type = ""
        if source_id:
            source_type = next(
                (
                    d["document_type"]
                    for d in record["documents"].values()
                    if d["erp_document_id"] == source_id
                ),
                "",
            )
        return DocumentRequest(
            document_type=step.document_type,
            external_reference=reference,
            payload=payload,
            source_document_type=source_type,
            source_document_id=source_id,
            tenant_id=work.order.tenant_id,
            return_id=work.order.return_id,
            timeout=self._timeout,
        )

    async def _call(self, erp: str, operation: str, call: Any) -> Any:
        """Await one connector call under the ERP deadline, counting it; a deadline overrun is ambiguous."""
        # The HTTP requests the call sends, lookups included: rb_erp_requests_total / delivered documents is
        # the ERP calls per document (1 in the happy path: create only).
        with tally_requests() as tally:
            try:
                return await self._call_counted(erp, operation, call)
            finally:
                count_erp_requests(erp, operation, tally.count)

    async def probe(self) -> None:
        """The breaker's probe: one look-up of a reference nobody uses; raises when the ERP does not answer."""
        if self._probe_target is None:
            return
        erp, document_type = self._probe_target
        try:
            await self._call(erp, "probe", self.connector.find_document(document_type, PROBE_REFERENCE))
        except TransientErpError as exc:
            await self._outcomes.erp_unreachable(erp, exc)  # still down: the outage may page
            raise

    async def _call_counted(self, erp: str, operation: str, call: Any) -> Any:
        try:
            result = await asyncio.wait_for(call, timeout=self._timeout + 1.0)
        except TimeoutError as exc:
            count_erp_call(erp, operation, "error", "transient")
            self._breaker.failed()
            raise AmbiguousErpError(f"{operation} exceeded the ERP deadline", erp=erp) from exc
        except ErpAuthError:
            count_erp_call(erp, operation, "error", "auth")
            self._breaker.answered()
            raise
        except PermanentErpError:
            count_erp_call(erp, operation, "error", "permanent")
            self._breaker.answered()
            raise
        except TransientErpError as exc:
            count_erp_call(erp, operation, "error", "transient")
            if exc.unanswered:
                self._breaker.failed()
            else:
                self._breaker.answered()  # throttled: the ERP is there, it asks for less
            raise
        count_erp_call(erp, operation, "ok")
        self._breaker.answered()
        return result
