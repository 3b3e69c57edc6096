"""Recording a step's outcome: delivered, retrying or dead-lettered, with the alerts and audit entries it brings."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from returnbridge.audit.log import AuditLog
from returnbridge.connectors.base import DocumentResult
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.headers import H_ACCEPTED_AT
from returnbridge.delivery.ports import AlerterLike
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.delivery.work import Work, error_proto
from returnbridge.domain.steps import PlannedStep
from returnbridge.errors import ErpAuthError, ErpError, TransientErpError
from returnbridge.observability.metrics import count_processing, observe_sync_latency, set_dlq_size
from returnbridge.sync.status import RESOLVED, SyncStateStore, doc_key

__all__ = ["OutcomeRecorder", "mark_dead_lettered"]

log = logging.getLogger(__name__)


class OutcomeRecorder:
    """Writes outcomes to the sync state and settles the message; one per worker (it remembers open alerts)."""

    def __init__(
        self,
        target: str,
        status: SyncStateStore,
        dead_letters: DeadLetterStore,
        retry: RetryPolicy,
        *,
        alerter: AlerterLike | None = None,
        audit: AuditLog | None = None,
        erp_answering: Callable[[], bool] = lambda: True,
    ) -> None:
        self.target = target
        self._status = status
        self._dlq = dead_letters
        self._retry = retry
        self._alerter = alerter
        self._audit = audit
        self._unreachable_alerted = False
        # Whether no ERP call failed since the last answer (the breaker's count). A delivery is written a while
        # after its answer: calls failing meanwhile mean the outage goes on, and resolving would restart its
        # clock (make test's erp_outage scenario then never paged: the probes after it were too few).
        self._erp_answering = erp_answering

    async def delivered(
        self,
        work: Work,
        step: PlannedStep,
        known: tuple[dict[str, Any], int],
        result: DocumentResult,
        *,
        erp: str,
        reference: str,
        attempted: bool,
    ) -> tuple[dict[str, Any] | None, int]:
        """Audit the ERP document, then store DELIVERED with its id (CAS on ``known``); returns the stored record.

        Audit first: DELIVERED in the sync state then always has its audit entry. If the append fails, the
        message is retried, the redelivery looks the document up, finds it and audits it as found; a crash in
        between can only add an entry, never lose one.
        """
        order = work.order
        if self._audit is not None:
            await self._audit.record(
                action="erp.document_created" if result.created else "erp.document_found",
                object_type="return",
                object_id=f"{order.return_id}:{order.version}",
                tenant_id=order.tenant_id,
                actor="system",
                after=body if isinstance(body := work.translations.get(step.mapping), bytes) else None,
                details={
                    "target": self.target,
                    "step": step.step,
                    "document_type": step.document_type,
                    "erp_document_id": result.document_id,
                    "external_reference": reference,
                },
            )
        stored = await self._status.transition(
            order.tenant_id,
            order.return_id,
            int(order.version),
            step.step,
            "DELIVERED",
            erp_document_id=result.document_id,
            attempt=attempted,
            known=known,
        )
        count_processing("delivered")
        if self._unreachable_alerted and self._alerter is not None and self._erp_answering():
            self._unreachable_alerted = False
            await self._alerter.resolve(kind="erp_unreachable", key=self.target)
        accepted_at = float(work.headers.get(H_ACCEPTED_AT, "0") or 0)
        if accepted_at:
            observe_sync_latency(erp, step.document_type, max(time.time() - accepted_at, 0.0))
        return stored

    async def transient(
        self,
        work: Work,
        step: PlannedStep,
        doc: dict[str, Any],
        exc: TransientErpError,
        *,
        erp: str,
        attempted: bool,
        ambiguous_at: float | None = None,
    ) -> None:
        """RETRYING and a nak with backoff, or a dead letter once the retries are exhausted.

        ``ambiguous_at``: when a create's answer was found lost; stored with the document, so no worker creates it
        again before the ERP had time to commit it (``StepDeliverer._check_settled``).
        """
        attempts = max(int(doc["attempts"]), 1)
        error = error_proto(exc, int(doc["erp"]), "transient")
        await self.erp_unreachable(erp, exc)
        if self._retry.exhausted(attempts):
            await self.dead_letter(
                work,
                step,
                doc,
                f"retries exhausted after {attempts} attempts: {exc}",
                exc,
                attempted=attempted,
                ambiguous_at=ambiguous_at,  # a replay soon after must not create it again either
            )
            return
        order = work.order
        await self._status.transition(
            order.tenant_id,
            order.return_id,
            int(order.version),
            step.step,
            "RETRYING",
            error=error,
            attempt=attempted,
            ambiguous_at=ambiguous_at,
        )
        await work.nak(delay=self._retry.delay(attempts, exc.retry_after))

    async def refused(
        self, work: Work, step: PlannedStep, doc: dict[str, Any], exc: ErpError, *, erp: str, attempted: bool
    ) -> None:
        """A permanent or credential refusal: alert on credentials, then dead-letter."""
        if isinstance(exc, ErpAuthError) and self._alerter is not None:
            await self._alerter.alert(
                kind="erp_auth",
                key=f"{self.target}",
                severity="critical",
                summary=f"{erp} refused our credentials: {exc.erp_message}",
            )
        await self.dead_letter(work, step, doc, str(exc), exc, attempted=attempted)

    async def erp_unreachable(self, erp: str, exc: TransientErpError) -> None:
        """Report a failed ERP call the ERP did not answer (throttling and a create still settling are answers);
        the alerter fires only once the target stayed unreachable long enough.

        Also called by the breaker's failed probes: while delivery is paused they are the only calls, and the
        incident must still page once the outage outlasts ``alerts.erp_unreachable_after_s``."""
        if self._alerter is None or not exc.unanswered:
            return
        self._unreachable_alerted = True
        await self._alerter.alert(
            kind="erp_unreachable",
            key=self.target,
            severity="critical",
            summary=f"{erp} target {self.target} failing: {exc.erp_message[:200]}",
            details={"code": exc.code, "http_status": str(exc.http_status)},
        )

    async def dead_letter(
        self,
        work: Work,
        step: PlannedStep,
        doc: dict[str, Any],
        reason: str,
        exc: Exception | None,
        *,
        attempted: bool = False,
        ambiguous_at: float | None = None,
    ) -> None:
        """DLQ copy first, then term: a crash in between leaves a duplicate DLQ entry, never a lost message."""
        order = work.order
        error_class = "auth" if isinstance(exc, ErpAuthError) else "permanent"
        error = error_proto(exc, int(doc["erp"]), error_class) if exc is not None else None
        dead_letter_id = await self._dlq.put(
            target=self.target,
            tenant=order.tenant_id,
            payload=work.msg.data,
            headers=work.headers,
            step=step.step,
            document_type=step.document_type,
            reason=reason,
            error=error,
            attempts=int(doc["attempts"]),
            source_sequence=work.msg.metadata.sequence.stream,
        )
        await work.msg.term()
        await self._status.transition(
            order.tenant_id,
            order.return_id,
            int(order.version),
            step.step,
            "DEAD_LETTERED",
            error=error,
            dead_letter_id=dead_letter_id,
            attempt=attempted,
            ambiguous_at=ambiguous_at,
        )
        count_processing("dead_lettered")
        if self._audit is not None:
            await self._audit.record(
                action="dlq.dead_lettered",
                object_type="dead_letter",
                object_id=str(dead_letter_id),
                tenant_id=order.tenant_id,
                actor="system",
                details={
                    "return_id": order.return_id,
                    "version": str(order.version),
                    "step": step.step,
                    "reason": reason[:500],
                },
            )
        with contextlib.suppress(Exception):
            set_dlq_size(await self._dlq.count())
        if self._alerter is not None:
            await self._alerter.alert(
                kind="dead_letter",
                key=f"{order.tenant_id}:{order.return_id}:{order.version}:{step.step}",
                severity="warning",
                summary=f"{step.document_type} for return {order.return_id} v{order.version} dead-lettered: {reason}",
                details={"dead_letter_id": str(dead_letter_id), "target": self.target, "step": step.step},
            )

    async def give_up(self, work: Work, reason: str, *, failures: int) -> int:
        """Dead-letter a message whose handling kept failing unexpectedly (KV down, a bug); returns the DLQ id.

        The DLQ copy, the term and the alert come first and must succeed (an exception leaves the message to
        the caller's backoff); the sync state and the audit entry follow best effort, since they may be the
        very thing that is failing.
        """
        order = work.order
        step = work.steps[0] if work.steps else None
        dead_letter_id = await self._dlq.put(
            target=self.target,
            tenant=order.tenant_id,
            payload=work.msg.data,
            headers=work.headers,
            step=step.step if step else "",
            document_type=step.document_type if step else "",
            reason=reason,
            error=None,
            attempts=failures,
            source_sequence=work.msg.metadata.sequence.stream,
        )
        await work.msg.term()
        count_processing("dead_lettered")
        if self._alerter is not None:
            await self._alerter.alert(
                kind="dead_letter",
                key=f"{order.tenant_id}:{order.return_id}:{order.version}:unexpected",
                severity="critical",
                summary=f"return {order.return_id} v{order.version} dead-lettered: {reason}",
                details={"dead_letter_id": str(dead_letter_id), "target": self.target},
            )
        try:
            order = work.order
            await mark_dead_lettered(
                self._status,
                self._audit,
                tenant=order.tenant_id,
                return_id=order.return_id,
                version=int(order.version),
                steps=work.steps,
                dead_letter_id=dead_letter_id,
                reason=reason,
            )
            with contextlib.suppress(Exception):
                set_dlq_size(await self._dlq.count())
        except Exception:
            log.exception("dead letter %s stored, but its sync state or audit entry was not", dead_letter_id)
        return dead_letter_id


async def mark_dead_lettered(
    status: SyncStateStore,
    audit: AuditLog | None,
    *,
    tenant: str,
    return_id: str,
    version: int,
    steps: list[PlannedStep],
    dead_letter_id: int,
    reason: str,
) -> None:
    """Record a dead letter made outside a step's outcome: its unresolved documents and the audit entry."""
    record = await status.get(tenant, return_id)
    documents = record["documents"] if record else {}
    for step in steps:
        doc = documents.get(doc_key(version, step.step))
        if doc is None or doc["state"] in RESOLVED or doc["state"] == "DEAD_LETTERED":
            continue
        await status.transition(
            tenant, return_id, version, step.step, "DEAD_LETTERED", dead_letter_id=dead_letter_id
        )
    if audit is not None:
        await audit.record(
            action="dlq.dead_lettered",
            object_type="dead_letter",
            object_id=str(dead_letter_id),
            tenant_id=tenant,
            actor="system",
            details={"return_id": return_id, "version": str(version), "reason": reason[:500]},
        )
