"""Shipped SAP mapping packs + SAP connectors + simulator: a canonical return goes all the way through and back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pydantic import SecretStr

from connectors.harnesses.sap import PASSWORD, USER
from mapping.samples import build_return
from returnbridge.api.v1 import inventory_pb2
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.sap_odata import SapODataConfig, SapODataConnector
from returnbridge.connectors.sap_rfc import SapRfcConfig, SapRfcConnector
from returnbridge.mapping import MappingRegistry
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.sap import SapSimulator, build_simulator
from returnbridge.simulators.sap_rfc import Connection


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def setup() -> AsyncIterator[tuple[SapSimulator, SapODataConnector]]:
    simulator = build_simulator()
    running = await RunningSimulator(simulator.app).start()
    config = SapODataConfig(base_url=running.url, username=USER, password=SecretStr(PASSWORD))
    connector = SapODataConnector(config)
    yield simulator, connector
    await connector.aclose()
    await running.stop()


async def test_return_receipt_credit_and_inbound_records(
    registry: MappingRegistry, setup: tuple[SapSimulator, SapODataConnector]
) -> None:
    simulator, connector = setup
    order = build_return(3, erp="sap")
    raw = order.SerializeToString()
    ref = f"{order.rma_number}-{order.version}"

    def translated(mapping_id: str) -> bytes:
        return registry.get(mapping_id).translate(raw)

    ret = await connector.create_document(
        DocumentRequest("A_CustomerReturn", ref, translated("sap/customer_return"))
    )
    follow = {"source_document_type": "A_CustomerReturn", "source_document_id": ret.document_id}
    receipt = await connector.create_document(
        DocumentRequest("A_ReturnsDeliveryHeader", ref, translated("sap/returns_delivery"), **follow)
    )
    credit = await connector.create_document(
        DocumentRequest("A_CreditMemoRequest", ref, translated("sap/credit_memo_request"), **follow)
    )
    assert receipt.status == "C"
    expected = sum(
        (Decimal(line.unit_price.amount) * Decimal(line.quantity) for line in order.lines), Decimal(0)
    )
    assert Decimal(credit.raw["TotalNetAmount"]) == expected.quantize(Decimal("0.01"))
    for line in order.lines:
        key = (line.sku, line.location.site, {"RTN": "RET1", "MAIN": "0001"}[line.location.sub_location])
        assert simulator.kit.state.stock[key] >= Decimal(line.quantity)

    batch = await connector.read_status_changes(None, 50)
    statuses = []
    for record in batch.records:
        status = inventory_pb2.DocumentStatus.FromString(
            registry.get("sap/document_status").translate(record)
        )
        statuses.append(
            (status.document_type, status.document_id, status.erp_status, status.external_reference)
        )
    assert sorted(statuses) == [
        ("A_CreditMemoRequest", credit.document_id, "C", ref),
        ("A_CustomerReturn", ret.document_id, "C", ref),
    ]

    stock = await connector.read_inventory(None, 100)
    levels = {}
    for record in stock.records:
        level = inventory_pb2.InventoryLevel.FromString(registry.get("sap/material_stock").translate(record))
        levels[(level.sku, level.location.site, level.location.sub_location)] = level.on_hand
    first = order.lines[0]
    raw_rows = [json.loads(r) for r in stock.records]
    sap_row = next(
        r
        for r in raw_rows
        if (r["Material"], r["Plant"]) == (first.sku, first.location.site)
        and r["StorageLocation"] == {"RTN": "RET1", "MAIN": "0001"}[first.location.sub_location]
    )
    assert Decimal(levels[(first.sku, first.location.site, first.location.sub_location)]) == Decimal(
        sap_row["MatlWrhsStkQtyInMatlBaseUnit"]
    )


async def test_rfc_pack_through_the_rfc_connector(registry: MappingRegistry) -> None:
    simulator = build_simulator()
    config = SapRfcConfig(ashost="127.0.0.1", user=USER, password=SecretStr(PASSWORD))
    connector = SapRfcConnector(
        config,
        connection_factory=lambda: Connection(
            backend=simulator.backend, user=USER, passwd=PASSWORD, client="100"
        ),
    )
    order = build_return(3, erp="sap")
    body = registry.get("sap/rfc_customer_return").translate(order.SerializeToString())
    ref = f"{order.rma_number}-{order.version}"
    try:
        created = await connector.create_document(DocumentRequest("BAPI_CUSTOMERRETURN_CREATE", ref, body))
        doc = simulator.kit.state.documents["A_CustomerReturn"][created.document_id]
        assert [(i["Material"], Decimal(i["RequestedQuantity"])) for i in doc["to_Item"]] == [
            (line.sku, Decimal(line.quantity)) for line in order.lines
        ]
        expected = sum(
            (Decimal(line.unit_price.amount) * Decimal(line.quantity) for line in order.lines), Decimal(0)
        )
        assert Decimal(doc["TotalNetAmount"]) == expected.quantize(Decimal("0.01"))
        batch = await connector.read_status_changes(None, 10)
        status = inventory_pb2.DocumentStatus.FromString(
            registry.get("sap/document_status").translate(batch.records[0])
        )
        assert (status.document_id, status.external_reference, status.erp_status) == (
            created.document_id,
            ref,
            "A",
        )
    finally:
        await connector.aclose()
