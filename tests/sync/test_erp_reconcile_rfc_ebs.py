"""Reconciliation through SAP RFC and Oracle EBS: read back with RFC_READ_TABLE (VBAK/VBAP) and SQL (order headers
and lines), against the pyrfc and python-oracledb stand-ins: a clean run finds nothing, planted drifts are found."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from connectors.harnesses.oracle import _EbsHarness
from connectors.harnesses.sap import SapRfcHarness
from delivery.pipeline_harness import Pipeline, fast_settings
from helpers.eventually import assert_eventually
from mapping.samples import build_return
from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.delivery.reconcile import ErpReconciler, ReconcileReport
from returnbridge.delivery.worker import DeliveryWorker
from returnbridge.domain.context import Principal, set_principal
from returnbridge.mapping import MappingRegistry
from returnbridge.routing import Router
from returnbridge.routing.rules import load_routing_text
from returnbridge.services.intake import Intake
from returnbridge.simulators.oracle_db_state import ORDERS_TABLE

RFC, EBS = "BAPI_CUSTOMERRETURN_CREATE", "OE_ORDER_PUB.PROCESS_ORDER"
ROUTES = """
targets:
  sap_rfc: {erp: sap_s4hana, flow: sap_rfc}
  oracle_ebs: {erp: oracle_ebs, flow: oracle_ebs}
flows:
  sap_rfc:
    erp: sap_s4hana
    events:
      AUTHORIZED:
        - {step: customer_return, mapping: sap/rfc_customer_return, document_type: BAPI_CUSTOMERRETURN_CREATE}
  oracle_ebs:
    erp: oracle_ebs
    events:
      AUTHORIZED:
        - {step: rma, mapping: oracle_ebs/rma, document_type: OE_ORDER_PUB.PROCESS_ORDER}
default: {target: sap_rfc}
"""
# target -> (harness, sample ERP of the master data, document type)
TARGETS: dict[str, tuple[Any, str, str]] = {
    "sap_rfc": (SapRfcHarness, "sap", RFC),
    "oracle_ebs": (_EbsHarness, "oracle", EBS),
}


@dataclass
class Standins:
    pipeline: Pipeline
    registry: MappingRegistry
    harnesses: dict[str, Any] = field(default_factory=dict)
    intakes: dict[str, Intake] = field(default_factory=dict)
    submitted: list[returns_pb2.ReturnOrder] = field(default_factory=list)

    async def start(self) -> None:
        config = load_routing_text(ROUTES)
        for target, (harness_cls, _, _) in TARGETS.items():
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
            routed = config.model_copy(
                update={"default": config.default.model_copy(update={"target": target})}
            )
            self.intakes[target] = Intake(
                Router(routed),
                self.pipeline.publisher,
                self.pipeline.buckets[subjects.IDEMPOTENCY_BUCKET],
                self.pipeline.status,
            )

    async def stop(self) -> None:
        for harness in self.harnesses.values():
            await harness.stop()

    async def authorize(self, per_target: int) -> None:
        set_principal(Principal(name="rms", tenant_id="acme"))
        for target, (_, sample_erp, _) in TARGETS.items():
            for n in range(per_target):
                order = build_return(2, seed=3, serialized_every=0, erp=sample_erp)
                order.return_id = f"R-{target}-{n}"
                order.rma_number = f"RMA-{target}-{n}"
                await self.intakes[target].submit(returns_pb2.SubmitReturnRequest(return_order=order))
                self.submitted.append(order)

    async def all_delivered(self) -> None:
        async def check() -> None:
            for order in self.submitted:
                record = await self.pipeline.status.get("acme", order.return_id)
                assert record is not None
                states = [d["state"] for d in record["documents"].values()]
                assert states == ["DELIVERED"], (order.return_id, record["documents"])

        await assert_eventually(check, timeout=120)

    def reconciler(self) -> ErpReconciler:
        return ErpReconciler(
            self.pipeline.nc.jetstream(),
            self.pipeline.status,
            {t: h.connector(timeout=10.0) for t, h in self.harnesses.items()},
            {t: (spec[2],) for t, spec in TARGETS.items()},
            publisher=self.pipeline.publisher,
            alerter=self.pipeline.alerter,
            grace_seconds=0.0,
        )

    def documents(self, target: str) -> dict[str, dict[str, Any]]:
        harness = self.harnesses[target]
        if target == "sap_rfc":
            return harness.sim.kit.state.documents["A_CustomerReturn"]  # type: ignore[no-any-return]
        return harness.sim.state.documents[ORDERS_TABLE]  # type: ignore[no-any-return]

    def find(self, target: str, reference: str) -> tuple[str, dict[str, Any]]:
        name = "PurchaseOrderByCustomer" if target == "sap_rfc" else "ORIG_SYS_DOCUMENT_REF"
        for doc_id, doc in self.documents(target).items():
            if doc.get(name) == reference:
                return doc_id, doc
        raise AssertionError(f"no document {reference} in {target}")


@pytest.fixture
async def standins(pipeline: Pipeline) -> AsyncIterator[Standins]:
    standins = Standins(pipeline, MappingRegistry.load())
    await standins.start()
    try:
        yield standins
    finally:
        await standins.stop()


def _found(report: ReconcileReport) -> set[tuple[str, str, str]]:
    return {(d.drift, d.target, d.return_id) for d in report.drifts}


async def test_sap_rfc_and_oracle_ebs_are_reconciled_through_their_connectors(standins: Standins) -> None:
    await standins.authorize(4)
    await standins.all_delivered()
    clean = await standins.reconciler().run("acme", since=time.time() - 3600)
    assert clean.drifts == [], [d.as_dict() for d in clean.drifts]
    assert clean.documents_checked == 8

    for target in TARGETS:
        docs = standins.documents(target)
        # missing: the ERP lost return 0's document
        lost, _ = standins.find(target, f"RMA-{target}-0-1")
        docs.pop(lost)
        # duplicate: return 1's document twice
        dup_id, dup = standins.find(target, f"RMA-{target}-1-1")
        twin = copy.deepcopy(dup)
        twin_id = str(int(dup_id) + 50_000)
        _rekey(target, twin, twin_id)
        docs[twin_id] = twin
        # quantity mismatch: return 2's first line holds one more unit
        _, doc2 = standins.find(target, f"RMA-{target}-2-1")
        _bump_first_line(target, doc2)

    report = await standins.reconciler().run("acme", since=time.time() - 3600)
    found = _found(report)
    for target in TARGETS:
        assert ("missing", target, f"R-{target}-0") in found
        assert ("duplicate", target, f"R-{target}-1") in found
        assert ("quantity_mismatch", target, f"R-{target}-2") in found
        assert not {f for f in found if f[2] == f"R-{target}-3"}  # return 3 is untouched
    assert len(report.drifts) == 6, [d.as_dict() for d in report.drifts]


def _rekey(target: str, doc: dict[str, Any], new_id: str) -> None:
    if target == "sap_rfc":
        doc["CustomerReturn"] = new_id
        for item in doc.get("to_Item") or []:
            item["CustomerReturn"] = new_id
    else:
        doc["HEADER_ID"] = int(new_id)


def _bump_first_line(target: str, doc: dict[str, Any]) -> None:
    if target == "sap_rfc":
        item = doc["to_Item"][0]
        item["RequestedQuantity"] = str(Decimal(str(item["RequestedQuantity"])) + 1)
    else:
        line = doc["LINES"][0]
        line["ORDERED_QUANTITY"] = Decimal(str(line["ORDERED_QUANTITY"])) + 1
