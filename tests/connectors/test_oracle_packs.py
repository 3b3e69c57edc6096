"""Mapping packs -> Oracle connectors -> simulator and back: the shipped specs fit the connector contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from mapping.samples import build_return
from returnbridge.api.v1 import inventory_pb2, returns_pb2
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.oracle_ebs import CREDIT_MEMO, RMA, OracleEbsConfig, OracleEbsConnector
from returnbridge.connectors.oracle_fusion import (
    CREDIT_MEMOS,
    ORDERS,
    RECEIPTS,
    OracleFusionConfig,
    OracleFusionConnector,
)
from returnbridge.mapping import MappingRegistry
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import OracleSimulator
from returnbridge.simulators.oracle_db import CM_TABLE, ORDERS_TABLE, EbsDatabase, StandInDriver


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[OracleSimulator, str]]:
    simulator = OracleSimulator()
    running = await RunningSimulator(simulator.app).start()
    try:
        yield simulator, running.url
    finally:
        await running.stop()


async def test_fusion_flow_from_canonical_return(
    registry: MappingRegistry, sim: tuple[OracleSimulator, str]
) -> None:
    simulator, url = sim
    order = build_return(lines=4, erp="oracle")
    canonical = order.SerializeToString()
    connector = OracleFusionConnector(
        OracleFusionConfig(base_url=url, username="integration.user", password="Welcome1!")
    )
    try:
        rma = await connector.create_document(
            DocumentRequest(
                ORDERS, f"{order.rma_number}-1", registry.get("oracle/return_order").translate(canonical)
            )
        )
        receipt = await connector.create_document(
            DocumentRequest(
                RECEIPTS,
                f"{order.rma_number}-2",
                registry.get("oracle/receipt").translate(canonical),
                source_document_type=ORDERS,
                source_document_id=rma.document_id,
            )
        )
        memo = await connector.create_document(
            DocumentRequest(
                CREDIT_MEMOS, f"{order.rma_number}-3", registry.get("oracle/credit_memo").translate(canonical)
            )
        )
        stored = simulator.state.documents[ORDERS][rma.document_id]
        assert [ln["ProductNumber"] for ln in stored["lines"]] == [ln.sku for ln in order.lines]
        assert [ln["OrderedQuantity"] for ln in stored["lines"]] == [
            Decimal(ln.quantity) for ln in order.lines
        ]
        assert receipt.status == "SUCCESS"
        assert (await connector.get_document_status(ORDERS, rma.document_id)).status == "RECEIVED"
        assert memo.status == "Complete" and simulator.state.trial_balance()["balanced"]

        inventory = await connector.read_inventory(None)
        levels = [
            inventory_pb2.InventoryLevel.FromString(registry.get("oracle/onhand").translate(r))
            for r in inventory.records
        ]
        assert {(lv.sku, lv.location.site) for lv in levels} >= {
            (ln.sku, ln.location.site) for ln in order.lines
        }
        changes = await connector.read_status_changes(None)
        statuses = [
            inventory_pb2.DocumentStatus.FromString(registry.get("oracle/document_status").translate(r))
            for r in changes.records
        ]
        assert {s.document_id for s in statuses} == {rma.document_id, receipt.document_id, memo.document_id}
        credited = next(s for s in statuses if s.document_id == memo.document_id)
        assert Decimal(credited.amount.amount) == abs(memo.raw["EnteredAmount"]), (
            "posted credit as a magnitude"
        )
    finally:
        await connector.aclose()


async def test_ebs_flow_from_canonical_return(
    registry: MappingRegistry, sim: tuple[OracleSimulator, str]
) -> None:
    simulator, _ = sim
    db = EbsDatabase(simulator)
    order = build_return(lines=3, erp="oracle_ebs")
    canonical = order.SerializeToString()
    connector = OracleEbsConnector(
        OracleEbsConfig(dsn="127.0.0.1:1521/EBSDB", user="apps", password="apps"), driver=StandInDriver(db)
    )
    try:
        rma = await connector.create_document(
            DocumentRequest(RMA, f"{order.rma_number}-1", registry.get("oracle_ebs/rma").translate(canonical))
        )
        memo = await connector.create_document(
            DocumentRequest(
                CREDIT_MEMO,
                f"{order.rma_number}-3",
                registry.get("oracle_ebs/credit_memo").translate(canonical),
            )
        )
        lines = simulator.state.documents[ORDERS_TABLE][rma.document_id]["LINES"]
        assert [ln["ORDERED_ITEM"] for ln in lines] == [ln.sku for ln in order.lines]
        # Cost center and vendor code land in the line flexfield and read back through the echo spec.
        assert [(ln["CONTEXT"], ln["ATTRIBUTE1"], ln["ATTRIBUTE2"]) for ln in lines] == [
            ("RETURNBRIDGE", ln.cost_center, ln.vendor_code) for ln in order.lines
        ]
        stored = [{k: ln[k.upper()] for k in ("context", "attribute1", "attribute2")} for ln in lines]
        echo_in = json.dumps({"p_line_tbl": stored}).encode()
        echo = returns_pb2.ReturnOrder.FromString(registry.get("oracle_ebs/rma_in").translate(echo_in))
        assert [(ln.cost_center, ln.vendor_code) for ln in echo.lines] == [
            (ln.cost_center, ln.vendor_code) for ln in order.lines
        ]
        assert simulator.state.documents[CM_TABLE][memo.document_id]["STATUS"] == "COMPLETE"
        inventory = await connector.read_inventory(None)
        level = inventory_pb2.InventoryLevel.FromString(
            registry.get("oracle_ebs/onhand").translate(inventory.records[0])
        )
        assert level.sku and level.on_hand
    finally:
        await connector.aclose()
