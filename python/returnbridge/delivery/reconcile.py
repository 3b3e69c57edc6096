"""Reconciliation that does not trust itself: what the RMS intended against what each ERP holds, read back.

The intent is the accepted submission itself (the ``RB_DELIVER`` stream keeps every accepted event with its
route and planned steps), read from ``--since`` onwards in pages; the truth is what the ERP returns for our
external reference through the connector's ``read_documents``. Our own sync records are used only to say what
we *believe* (a DELIVERED state, a document id), which is itself checked.

Drift classes: ``missing`` (intended, the ERP holds none), ``duplicate`` (more than one document for one
reference), ``unexpected`` (a document of a type this event never created), ``amount_mismatch`` (posted amount
differs from the RMS refund requested, or from the line subtotal where the ERP posts net), ``quantity_mismatch``
(line quantities differ), ``stale_status`` (our record disagrees with the ERP: not DELIVERED though the ERP
holds it, or another document id), ``unbalanced`` (per currency, the intended total differs from the posted
total over the run).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.publisher import Publisher
from returnbridge.connectors.base import DocumentReader, ErpHolding, magnitudes
from returnbridge.delivery.headers import H_IDEMPOTENCY, H_REPLAY_OF, H_STEPS
from returnbridge.domain.steps import PlannedStep, decode_steps
from returnbridge.sync.status import SyncStateStore, doc_key, net_amount

DRIFT_CLASSES = (
    "missing",
    "duplicate",
    "unexpected",
    "amount_mismatch",
    "quantity_mismatch",
    "stale_status",
    "unbalanced",
)
_SEVERITY = {
    "missing": "critical",
    "duplicate": "critical",
    "unbalanced": "critical",
    "amount_mismatch": "critical",
}
# Headers a repair forwards from the accepted message, as the DLQ replay does.
_FORWARDED = ("Rb-Steps", "Rb-Idempotency-Key", "Rb-Rule", "Rb-Lane", "Rb-Erp", "Rb-Accepted-At")


class Alerts(Protocol):
    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool: ...


def external_reference(order: returns_pb2.ReturnOrder) -> str:
    """The reference every connector writes on the ERP document (the delivery worker's rule)."""
    return f"{order.rma_number or order.return_id}-{order.version}"


@dataclass(slots=True)
class Drift:
    """One difference between what the RMS intended and what an ERP holds."""

    drift: str
    tenant: str
    target: str
    return_id: str = ""
    version: int = 0
    step: str = ""
    document_type: str = ""
    external_reference: str = ""
    expected: str = ""
    actual: str = ""
    erp_document_ids: tuple[str, ...] = ()
    detail: str = ""
    repaired: bool = False

    @property
    def key(self) -> str:
        return ":".join(
            (self.drift, self.tenant, self.target, self.return_id, str(self.version), self.document_type)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "tenant": self.tenant,
            "target": self.target,
            "return_id": self.return_id,
            "version": self.version,
            "step": self.step,
            "document_type": self.document_type,
            "external_reference": self.external_reference,
            "expected": self.expected,
            "actual": self.actual,
            "erp_document_ids": ",".join(self.erp_document_ids),
            "detail": self.detail,
            "repaired": self.repaired,
        }


@dataclass(slots=True)
class ReconcileReport:
    tenant: str
    since: float
    submissions: int = 0
    documents_checked: int = 0
    pending: int = 0
    drifts: list[Drift] = field(default_factory=list)
    expected_totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    posted_totals: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(DRIFT_CLASSES, 0)
        for drift in self.drifts:
            out[drift.drift] += 1
        return out


@dataclass(slots=True)
class _Intent:
    order: returns_pb2.ReturnOrder
    target: str
    steps: list[PlannedStep]
    headers: dict[str, str]
    data: bytes
    accepted_at: float


class ErpReconciler:
    """Compares accepted submissions since a time with the ERPs' documents, page by page.

    Args:
        js: JetStream (the ``RB_DELIVER`` stream holds the accepted submissions).
        status: sync state (what we believe was delivered).
        readers: connector per routing target.
        document_types: every document type of each target's flow (for ``unexpected``).
        publisher: needed for ``repair``.
        alerter, audit: every drift is alerted and audited when set.
        grace_seconds: a document younger than this that the ERP lacks is pending, not missing.
        page_size: submissions read and checked per page.
        concurrency: ERP reads in flight.
    """

    def __init__(
        self,
        js: JetStreamContext,
        status: SyncStateStore,
        readers: Mapping[str, DocumentReader],
        document_types: Mapping[str, Sequence[str]],
        *,
        publisher: Publisher | None = None,
        alerter: Alerts | None = None,
        audit: AuditLog | None = None,
        grace_seconds: float = 300.0,
        page_size: int = 200,
        concurrency: int = 16,
    ) -> None:
        self._js = js
        self._status = status
        self._readers = readers
        self._types = document_types
        self._publisher = publisher
        self._alerter = alerter
        self._audit = audit
        self._grace = grace_seconds
        self._page = page_size
        self._slots = asyncio.Semaphore(concurrency)

    async def run(
        self,
        tenant: str,
        *,
        since: float,
        targets: set[str] | None = None,
        repair: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReconcileReport:
        """Reconcile the tenant's submissions accepted at or after ``since`` (epoch seconds).

        ``progress(done, total)`` is called after every page; ``repair`` re-drives each missing document whose
        step we recorded as DELIVERED through the normal pipeline, once.
        """
        report = ReconcileReport(tenant, since)
        expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        posted: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        seen: set[tuple[str, int]] = set()
        done = 0
        async for page, total in self._pages(tenant, since):
            intents = []
            for intent in page:
                key = (intent.order.return_id, int(intent.order.version))
                # Replays and repairs carry the same submission again: one intent per version.
                if key in seen or (targets and intent.target not in targets):
                    continue
                seen.add(key)
                intents.append(intent)
            records = await self._records(tenant, {i.order.return_id for i in intents})
            checks = [
                self._check(report, intent, records.get(intent.order.return_id), expected, posted, repair)
                for intent in intents
            ]
            await asyncio.gather(*checks)
            report.submissions += len(intents)
            done += len(page)
            if progress is not None:
                progress(done, total)
        for currency_target in sorted(set(expected) | set(posted)):
            want, got = expected[currency_target], posted[currency_target]
            target, currency = currency_target
            report.expected_totals.setdefault(target, {})[currency] = want
            report.posted_totals.setdefault(target, {})[currency] = got
            if want != got:
                await self._report(
                    report,
                    Drift(
                        "unbalanced",
                        tenant,
                        target,
                        expected=f"{want} {currency}",
                        actual=f"{got} {currency}",
                        detail="intended credits and refunds differ from what the ERP posted",
                    ),
                )
        return report

    async def _pages(self, tenant: str, since: float) -> Any:
        """Pages of accepted submissions of the tenant from ``since``; stops at the stream's end when called."""
        info = await self._js.stream_info(subjects.DELIVER_STREAM)
        if info.state.messages == 0:
            return
        last = info.state.last_seq
        start = datetime.fromtimestamp(since, UTC)
        sub = await self._js.subscribe(
            f"rb.deliver.*.{subjects.token(tenant, 'tenant')}",
            stream=subjects.DELIVER_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            config=ConsumerConfig(opt_start_time=start),
        )
        try:
            page: list[_Intent] = []
            total = 0
            while True:
                try:
                    msg = await sub.next_msg(timeout=2.0)
                except TimeoutError:
                    break
                seq = msg.metadata.sequence.stream
                if not total:
                    total = msg.metadata.num_pending + 1
                if seq > last:
                    break  # accepted after the run started: the next run's work
                headers = dict(msg.headers or {})
                page.append(
                    _Intent(
                        returns_pb2.ReturnOrder.FromString(msg.data),
                        subjects.subject_target(msg.subject),
                        decode_steps(headers.get(H_STEPS, "[]")),
                        headers,
                        msg.data,
                        msg.metadata.timestamp.timestamp(),
                    )
                )
                end = seq >= last or msg.metadata.num_pending == 0
                if len(page) >= self._page or end:
                    yield page, total
                    page = []
                if end:
                    break
        finally:
            await sub.unsubscribe()

    async def _records(self, tenant: str, return_ids: set[str]) -> dict[str, dict[str, Any] | None]:
        ids = sorted(return_ids)
        reads = await asyncio.gather(*(self._status.get(tenant, r) for r in ids))
        return dict(zip(ids, reads, strict=True))

    async def _read(self, target: str, document_type: str, reference: str) -> list[ErpHolding]:
        async with self._slots:
            return await self._readers[target].read_documents(document_type, reference)

    async def _check(
        self,
        report: ReconcileReport,
        intent: _Intent,
        record: dict[str, Any] | None,
        expected: dict[tuple[str, str], Decimal],
        posted: dict[tuple[str, str], Decimal],
        repair: bool,
    ) -> None:
        order, target = intent.order, intent.target
        if target not in self._readers:
            return
        reference = external_reference(order)
        types = list(dict.fromkeys([*self._types.get(target, ()), *(s.document_type for s in intent.steps)]))
        found = await asyncio.gather(*(self._read(target, t, reference) for t in types))
        base = Drift(
            "", report.tenant, target, order.return_id, int(order.version), external_reference=reference
        )
        young = time.time() - intent.accepted_at < self._grace
        for document_type, holdings in zip(types, found, strict=True):
            planned = next((s for s in intent.steps if s.document_type == document_type), None)
            ids = tuple(h.document_id for h in holdings)
            if planned is None:
                if holdings:
                    await self._report(
                        report,
                        _with(
                            base,
                            "unexpected",
                            document_type,
                            ids,
                            detail="this event creates no such document",
                        ),
                    )
                continue
            report.documents_checked += 1
            doc = (record or {}).get("documents", {}).get(doc_key(int(order.version), planned.step))
            state = doc["state"] if doc else "UNKNOWN"
            if not holdings:
                if young and state != "DELIVERED":
                    report.pending += 1
                    continue
                want = _intended_amount(order, planned.posts_amount) if planned.posts_amount else None
                if want is not None:
                    expected[(target, order.currency)] += want  # intended, never posted: the books differ
                drift = _with(
                    base, "missing", document_type, (), step=planned.step, detail=f"our state: {state}"
                )
                if repair and state == "DELIVERED":
                    drift.repaired = await self._repair(intent, planned)
                await self._report(report, drift)
                continue
            if len(holdings) > 1:
                await self._report(report, _with(base, "duplicate", document_type, ids, step=planned.step))
            ours = doc["erp_document_id"] if doc else ""
            if state != "DELIVERED" or (ours and ours not in ids):
                await self._report(
                    report,
                    _with(
                        base,
                        "stale_status",
                        document_type,
                        ids,
                        step=planned.step,
                        expected=f"{state} {ours}".strip(),
                        actual="held by the ERP",
                    ),
                )
            await self._compare(report, base, planned, order, holdings, expected, posted)

    async def _compare(
        self,
        report: ReconcileReport,
        base: Drift,
        step: PlannedStep,
        order: returns_pb2.ReturnOrder,
        holdings: list[ErpHolding],
        expected: dict[tuple[str, str], Decimal],
        posted: dict[tuple[str, str], Decimal],
    ) -> None:
        first, ids = holdings[0], tuple(h.document_id for h in holdings)
        wanted_quantities = magnitudes([line.quantity for line in order.lines])
        if first.quantities is not None and first.quantities != wanted_quantities:
            await self._report(
                report,
                _with(
                    base,
                    "quantity_mismatch",
                    step.document_type,
                    ids,
                    step=step.step,
                    expected=" ".join(map(str, wanted_quantities)),
                    actual=" ".join(map(str, first.quantities)),
                ),
            )
        if not step.posts_amount:
            return
        want = _intended_amount(order, step.posts_amount)
        currency = order.currency
        if want is not None:
            expected[(base.target, currency)] += want
        for holding in holdings:
            if holding.amount is not None:
                posted[(base.target, holding.currency or currency)] += holding.amount
        if want is None or first.amount != want:
            label = "refund requested" if step.posts_amount == "gross" else "line subtotal"
            await self._report(
                report,
                _with(
                    base,
                    "amount_mismatch",
                    step.document_type,
                    ids,
                    step=step.step,
                    expected=f"{want} {currency} ({label})",
                    actual=f"{first.amount} {first.currency or currency}",
                ),
            )

    async def _repair(self, intent: _Intent, step: PlannedStep) -> bool:
        """Re-drive one step through the normal pipeline: back to ACCEPTED, then the accepted message again.

        Exactly once: the state change is a compare-and-set from DELIVERED (a second run finds ACCEPTED and does
        nothing), the message id is fixed per step (JetStream drops a second publish), and the worker looks the
        document up by reference before creating it (the replay header).
        """
        if self._publisher is None:
            return False
        order = intent.order
        record, _ = await self._status.transition(
            order.tenant_id,
            order.return_id,
            int(order.version),
            step.step,
            "ACCEPTED",
            only_from=frozenset({"DELIVERED"}),
        )
        doc = (record or {}).get("documents", {}).get(doc_key(int(order.version), step.step))
        if doc is None or doc["state"] != "ACCEPTED":
            return False
        headers = {name: intent.headers[name] for name in _FORWARDED if name in intent.headers}
        headers[H_REPLAY_OF] = "reconciliation"
        key = headers.get(H_IDEMPOTENCY, f"{order.tenant_id}:{order.return_id}:{order.version}")
        await self._publisher.publish_delivery(
            intent.target, order.tenant_id, intent.data, msg_id=f"{key}:repair:{step.step}", headers=headers
        )
        return True

    async def _report(self, report: ReconcileReport, drift: Drift) -> None:
        report.drifts.append(drift)
        summary = (
            f"reconciliation: {drift.drift} {drift.document_type or drift.target} {drift.return_id}".strip()
        )
        details = {k: str(v) for k, v in drift.as_dict().items() if v not in ("", 0, False)}
        if self._alerter is not None:
            await self._alerter.alert(
                kind="reconciliation_drift",
                key=drift.key,
                severity=_SEVERITY.get(drift.drift, "warning"),
                summary=summary,
                details=details,
            )
        if self._audit is not None:
            await self._audit.record(
                action=f"reconciliation.{drift.drift}",
                object_type="return" if drift.return_id else "erp",
                object_id=f"{drift.return_id}:{drift.version}" if drift.return_id else drift.target,
                tenant_id=drift.tenant,
                actor="reconciliation",
                details=details,
            )


def _with(base: Drift, drift: str, document_type: str, ids: tuple[str, ...], **extra: Any) -> Drift:
    out = Drift(
        drift,
        base.tenant,
        base.target,
        base.return_id,
        base.version,
        document_type=document_type,
        external_reference=base.external_reference,
        erp_document_ids=ids,
    )
    for name, value in extra.items():
        setattr(out, name, value)
    return out


def _intended_amount(order: returns_pb2.ReturnOrder, basis: str) -> Decimal | None:
    """What the RMS asked the ERP to post: the refund requested (gross) or the line subtotal (net)."""
    text = order.refund.amount.amount or order.total_amount.amount if basis == "gross" else net_amount(order)
    try:
        return abs(Decimal(text)) if text else None
    except InvalidOperation:
        return None
