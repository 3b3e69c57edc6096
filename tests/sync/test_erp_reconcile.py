"""Reconciliation against the ERPs: each drift class planted in a simulator is found; a clean run finds nothing."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from connectors.harnesses.netsuite import NetSuiteTbaHarness
from connectors.harnesses.oracle import _FusionHarness
from connectors.harnesses.sap import SapODataHarness
from delivery.pipeline_harness import Pipeline, fast_settings
from helpers.eventually import assert_eventually
from mapping.samples import build_return
from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.delivery.reconcile import DRIFT_CLASSES, ErpReconciler, ReconcileReport
from returnbridge.delivery.worker import DeliveryWorker
from returnbridge.domain.context import Principal, set_principal
from returnbridge.mapping import MappingRegistry
from returnbridge.routing import Router, load_routing_file
from returnbridge.services.intake import Intake

EVENTS = (
    returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    returns_pb2.LIFECYCLE_EVENT_RECEIVED,
    returns_pb2.LIFECYCLE_EVENT_REFUNDED,
)
# target -> (harness, sample ERP, sample seed, flow document types)
TARGETS: dict[str, tuple[Any, str, int, tuple[str, ...]]] = {
    "netsuite": (NetSuiteTbaHarness, "netsuite", 1, ("returnAuthorization", "itemReceipt", "creditMemo")),
    "sap": (
        SapODataHarness,
        "sap",
        3,
        ("A_CustomerReturn", "A_ReturnsDeliveryHeader", "A_CreditMemoRequest"),
    ),
    "oracle_fusion": (
        _FusionHarness,
        "oracle",
        3,
        ("salesOrdersForOrderHub", "receivingReceiptRequests", "receivablesCreditMemos"),
    ),
}


@dataclass
class Erps:
    """Three simulators, a delivery worker per target, and the submit path routed per target."""

    pipeline: Pipeline
    registry: MappingRegistry
    harnesses: dict[str, Any] = field(default_factory=dict)
    intakes: dict[str, Intake] = field(default_factory=dict)
    submitted: dict[str, list[returns_pb2.ReturnOrder]] = field(default_factory=dict)

    async def start(self) -> None:
        config = load_routing_file()
        for target, (harness_cls, _, _, _) in TARGETS.items():
            harness = harness_cls()
            await harness.start()
            self.harnesses[target] = harness
            worker = DeliveryWorker(
                target,
                harness.connector(timeout=5.0),
                self.registry,
                self.pipeline.nc.jetstream(),
                self.pipeline.status,
                self.pipeline.dead_letters,
                fast_settings(),
            )
            await worker.start()
            self.pipeline.workers.append(worker)
            router = Router(
                config.model_copy(
                    update={"rules": (), "default": config.default.model_copy(update={"target": target})}
                )
            )
            self.intakes[target] = Intake(
                router,
                self.pipeline.publisher,
                self.pipeline.buckets[subjects.IDEMPOTENCY_BUCKET],
                self.pipeline.status,
            )

    async def stop(self) -> None:
        for harness in self.harnesses.values():
            await harness.stop()

    async def submit_lifecycles(
        self, per_target: int, *, first: int = 0, events: tuple[int, ...] = EVENTS
    ) -> None:
        set_principal(Principal(name="rms", tenant_id="acme"))
        for target, (_, sample_erp, seed, _) in TARGETS.items():
            for n in range(first, first + per_target):
                for version, event in enumerate(events, start=1):
                    order = build_return(
                        2,
                        seed=seed,
                        serialized_every=0,
                        event=event,
                        version=version,
                        erp=sample_erp,
                        original_order=target != "netsuite",
                    )
                    order.return_id = f"R-{target}-{n}"
                    order.rma_number = f"RMA-{target}-{n}"
                    if target == "netsuite":
                        order.refund.method = returns_pb2.REFUND_METHOD_STORE_CREDIT
                    await self.intakes[target].submit(returns_pb2.SubmitReturnRequest(return_order=order))
                    self.submitted.setdefault(target, []).append(order)

    async def all_delivered(self, timeout: float) -> None:
        async def check() -> None:
            for orders in self.submitted.values():
                for order in orders:
                    record = await self.pipeline.status.get("acme", order.return_id)
                    assert record is not None
                    states = [d["state"] for d in record["documents"].values()]
                    assert states == ["DELIVERED"] * len(states), (order.return_id, record["documents"])

        await assert_eventually(check, timeout=timeout)

    def reconciler(self, **kwargs: Any) -> ErpReconciler:
        return ErpReconciler(
            self.pipeline.nc.jetstream(),
            self.pipeline.status,
            {t: h.connector(timeout=10.0) for t, h in self.harnesses.items()},
            {t: spec[3] for t, spec in TARGETS.items()},
            publisher=self.pipeline.publisher,
            alerter=self.pipeline.alerter,
            grace_seconds=0.0,
            **kwargs,
        )

    def documents(self, target: str, document_type: str) -> dict[str, dict[str, Any]]:
        harness = self.harnesses[target]
        if target == "netsuite":
            return harness.sim.documents(document_type)  # type: ignore[no-any-return]
        state = harness.sim.state if target == "oracle_fusion" else harness.sim.kit.state
        return state.documents[document_type]  # type: ignore[no-any-return]

    def plant(
        self, target: str, document_type: str, doc_id: str, doc: dict[str, Any], reference: str
    ) -> None:
        """Put a document straight into the simulator's state (NetSuite also indexes it by external id)."""
        self.documents(target, document_type)[doc_id] = doc
        _rekey(target, document_type, doc, doc_id)
        if target == "netsuite":
            self.harnesses[target].sim.by_external_id.setdefault(reference, set()).add(
                (document_type, doc_id)
            )

    def find(self, target: str, document_type: str, reference: str) -> tuple[str, dict[str, Any]]:
        field_name = {
            "netsuite": "externalId",
            "sap": "DeliveryDocumentBySupplier"
            if document_type == "A_ReturnsDeliveryHeader"
            else "PurchaseOrderByCustomer",
            "oracle_fusion": {
                "salesOrdersForOrderHub": "SourceTransactionNumber",
                "receivingReceiptRequests": "ShipmentNumber",
                "receivablesCreditMemos": "PurchaseOrder",
            }.get(document_type, ""),
        }[target]
        for doc_id, doc in self.documents(target, document_type).items():
            if doc.get(field_name) == reference:
                return doc_id, doc
        raise AssertionError(f"no {document_type} {reference} in {target}")


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def erps(pipeline: Pipeline, registry: MappingRegistry) -> AsyncIterator[Erps]:
    erps = Erps(pipeline, registry)
    await erps.start()
    try:
        yield erps
    finally:
        await erps.stop()


def _found(report: ReconcileReport) -> set[tuple[str, str, str, str]]:
    return {(d.drift, d.target, d.return_id, d.document_type) for d in report.drifts}


@pytest.mark.timeout(600)  # a few hundred returns through three simulators on a shared machine
async def test_clean_run_of_many_returns_finds_nothing(erps: Erps) -> None:
    per_target = 50  # 150 returns, 450 submissions, 450 ERP documents
    await erps.submit_lifecycles(per_target)
    await erps.all_delivered(timeout=500)
    pages: list[tuple[int, int]] = []
    report = await erps.reconciler(page_size=100).run(
        "acme", since=time.time() - 3600, progress=lambda done, total: pages.append((done, total))
    )
    assert report.drifts == [], [d.as_dict() for d in report.drifts[:5]]
    assert report.submissions == 3 * 3 * per_target
    assert report.documents_checked == 3 * 3 * per_target
    # Paged: several pages, and the last one reports everything done.
    assert len(pages) >= 3 * 3 * per_target // 100 and pages[-1][0] == pages[-1][1]
    for target in TARGETS:
        assert report.expected_totals[target] == report.posted_totals[target]
        assert all(v > 0 for v in report.expected_totals[target].values())


def _amount_field(target: str) -> str:
    return {"netsuite": "total", "sap": "TotalNetAmount", "oracle_fusion": "EnteredAmount"}[target]


def _lines(target: str, doc: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    if target == "netsuite":
        items = doc["item"]
        return (items["items"] if isinstance(items, dict) else items), "quantity"
    if target == "sap":
        return doc["to_Item"], "RequestedQuantity"
    return doc["lines"], "OrderedQuantity"


@pytest.mark.parametrize("target", list(TARGETS))
async def test_each_drift_class_planted_in_the_simulator_is_found(erps: Erps, target: str) -> None:
    await erps.submit_lifecycles(6)
    await erps.submit_lifecycles(1, first=6, events=EVENTS[:1])  # return 6: authorized only
    await erps.all_delivered(timeout=120)
    first_type, _, credit_type = TARGETS[target][3]
    docs = erps.documents

    # missing: the ERP lost the authorization of return 6 (nothing follows from it yet)
    lost_id, _ = erps.find(target, first_type, f"RMA-{target}-6-1")
    docs(target, first_type).pop(lost_id)
    # duplicate: the first document of return 1 twice
    ret_id, ret_doc = erps.find(target, first_type, f"RMA-{target}-1-1")
    erps.plant(target, first_type, str(int(ret_id) + 50_000), copy.deepcopy(ret_doc), f"RMA-{target}-1-1")
    # unexpected: a credit carrying the reference of return 2's authorization (version 1 credits nothing)
    credit_id, credit = erps.find(target, credit_type, f"RMA-{target}-2-3")
    stray = copy.deepcopy(credit)
    _set_reference(target, credit_type, stray, f"RMA-{target}-2-1")
    erps.plant(target, credit_type, str(int(credit_id) + 60_000), stray, f"RMA-{target}-2-1")
    # amount mismatch: return 3's credit posted 1.00 more than the RMS asked
    _, credit3 = erps.find(target, credit_type, f"RMA-{target}-3-3")
    posted = credit3[_amount_field(target)]
    more = Decimal(str(posted)) + Decimal("1.00")
    credit3[_amount_field(target)] = str(more) if isinstance(posted, str) else type(posted)(more)
    # quantity mismatch: return 4's first document holds another quantity on its first line
    _, doc4 = erps.find(target, first_type, f"RMA-{target}-4-1")
    lines, qty = _lines(target, doc4)
    lines[0][qty] = (
        str(Decimal(str(lines[0][qty])) + 1) if isinstance(lines[0][qty], str) else lines[0][qty] + 1
    )
    # stale status: return 5's first document now lives under another id than the one we recorded
    old_id, _ = erps.find(target, first_type, f"RMA-{target}-5-1")
    erps.plant(
        target,
        first_type,
        str(int(old_id) + 70_000),
        docs(target, first_type).pop(old_id),
        "RMA-" + f"{target}-5-1",
    )

    audit = await AuditLog.open(erps.pipeline.nc.jetstream())
    report = await erps.reconciler(audit=audit).run(
        "acme", since=time.time() - 3600, targets={target}, repair=True
    )
    found = _found(report)
    assert ("missing", target, f"R-{target}-6", first_type) in found
    assert ("duplicate", target, f"R-{target}-1", first_type) in found
    assert ("unexpected", target, f"R-{target}-2", credit_type) in found
    assert ("amount_mismatch", target, f"R-{target}-3", credit_type) in found
    assert ("quantity_mismatch", target, f"R-{target}-4", first_type) in found
    assert ("stale_status", target, f"R-{target}-5", first_type) in found
    assert ("unbalanced", target, "", "") in found
    assert {d.drift for d in report.drifts} == set(DRIFT_CLASSES)
    # Nothing else: the other returns and the other documents of these returns are clean.
    assert len(report.drifts) == 7, [d.as_dict() for d in report.drifts]
    # Every drift alerted and audited.
    assert len([a for a in erps.pipeline.alerter.alerts if a["kind"] == "reconciliation_drift"]) == 7
    page = await audit.query(tenant_id="acme", page_size=1000)
    audited = sorted(e.action for e in page.entries if e.action.startswith("reconciliation."))
    assert audited == sorted(f"reconciliation.{d.drift}" for d in report.drifts)

    # Repair re-drove the missing authorization through the pipeline: the ERP holds it again, exactly once.
    [missing] = [d for d in report.drifts if d.drift == "missing"]
    assert missing.repaired

    async def restored() -> None:
        record = await erps.pipeline.status.get("acme", f"R-{target}-6")
        assert await _count(erps, target, first_type, f"RMA-{target}-6-1") == 1, record
        assert record is not None and record["documents"]["1:" + _step(record, 1)]["state"] == "DELIVERED"

    await assert_eventually(restored, timeout=60)
    again = await erps.reconciler().run("acme", since=time.time() - 3600, targets={target}, repair=True)
    assert ("missing", target, f"R-{target}-6", first_type) not in _found(again)
    assert not any(d.repaired for d in again.drifts)
    assert await _count(erps, target, first_type, f"RMA-{target}-6-1") == 1


def _step(record: dict[str, Any], version: int) -> str:
    return next(d["step"] for d in record["documents"].values() if d["version"] == version)


async def _count(erps: Erps, target: str, document_type: str, reference: str) -> int:
    connector = erps.harnesses[target].connector(timeout=10.0)
    return len(await connector.read_documents(document_type, reference))


_KEYS = {
    ("netsuite", "*"): "id",
    ("sap", "A_CustomerReturn"): "CustomerReturn",
    ("sap", "A_ReturnsDeliveryHeader"): "DeliveryDocument",
    ("sap", "A_CreditMemoRequest"): "CreditMemoRequest",
    ("oracle_fusion", "salesOrdersForOrderHub"): "HeaderId",
    ("oracle_fusion", "receivingReceiptRequests"): "HeaderInterfaceId",
    ("oracle_fusion", "receivablesCreditMemos"): "CustomerTransactionId",
}


def _rekey(target: str, document_type: str, doc: dict[str, Any], new_id: str) -> None:
    name = _KEYS.get((target, document_type)) or _KEYS[(target, "*")]
    if name in doc:
        doc[name] = int(new_id) if isinstance(doc[name], int) else new_id


def _set_reference(target: str, document_type: str, doc: dict[str, Any], reference: str) -> None:
    name = {"netsuite": "externalId", "sap": "PurchaseOrderByCustomer"}.get(target, "PurchaseOrder")
    doc[name] = reference
