"""The shipped NetSuite mapping packs through the connector into the simulator: the cross-team contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from connectors.harnesses.netsuite import NetSuiteTbaHarness
from mapping.samples import build_return
from returnbridge.api.v1 import inventory_pb2, returns_pb2
from returnbridge.connectors.base import DocumentRequest
from returnbridge.mapping import MappingRegistry


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def harness() -> AsyncIterator[NetSuiteTbaHarness]:
    h = NetSuiteTbaHarness()
    await h.start()
    yield h
    await h.stop()


@pytest.mark.parametrize(("original_order", "refund"), [(False, "creditMemo"), (True, "cashRefund")])
async def test_mapped_documents_are_accepted_along_the_flow(
    registry: MappingRegistry, harness: NetSuiteTbaHarness, original_order: bool, refund: str
) -> None:
    connector = harness.connector()
    order = build_return(lines=4, seed=1, original_order=original_order)
    ref = f"{order.rma_number}-{order.version}"
    body = registry.get("netsuite/return_authorization").translate(order.SerializeToString())
    ra = await connector.create_document(DocumentRequest("returnAuthorization", ref, body))
    stored = harness.sim.documents("returnAuthorization")[ra.document_id]
    assert stored["otherRefNum"] == order.rma_number
    assert ("createdFrom" in stored) is original_order
    for line, canonical in zip(stored["item"], order.lines, strict=True):
        assert (line["quantity"], line["rate"]) == (
            Decimal(canonical.quantity),
            Decimal(canonical.unit_price.amount),
        )

    before = {(ln.sku, ln.location.site): harness.sim.on_hand(ln.sku, ln.location.site) for ln in order.lines}
    order.event = returns_pb2.LIFECYCLE_EVENT_RECEIVED
    body = registry.get("netsuite/item_receipt").translate(order.SerializeToString())
    receipt = await connector.create_document(
        DocumentRequest("itemReceipt", f"{order.rma_number}-2", body, "returnAuthorization", ra.document_id)
    )
    assert receipt.created
    received: dict[tuple[str, str], Decimal] = {}
    for ln in order.lines:
        received[(ln.sku, ln.location.site)] = received.get((ln.sku, ln.location.site), Decimal(0)) + Decimal(
            ln.quantity
        )
    for key, quantity in received.items():
        assert harness.sim.on_hand(*key) == before[key] + quantity
    serials = {s for ln in order.lines for s in ln.serial_numbers}
    assert serials and serials <= {s for numbers in harness.sim.serials.values() for s in numbers}

    order.event = returns_pb2.LIFECYCLE_EVENT_REFUNDED
    mapping = "netsuite/credit_memo" if refund == "creditMemo" else "netsuite/cash_refund"
    body = registry.get(mapping).translate(order.SerializeToString())
    credit = await connector.create_document(
        DocumentRequest(refund, f"{order.rma_number}-3", body, "returnAuthorization", ra.document_id)
    )
    entries = [e for e in harness.sim.kit.state.ledger if e.document_id == credit.document_id]
    assert entries and sum(e.debit for e in entries) == sum(e.credit for e in entries)
    assert harness.sim.kit.state.trial_balance()["balanced"] is True
    assert (await connector.get_document_status("returnAuthorization", ra.document_id)).status == "Closed"


async def test_inbound_packs_read_the_connector_records(
    registry: MappingRegistry, harness: NetSuiteTbaHarness
) -> None:
    connector = harness.connector()
    order = build_return(lines=1, seed=2, original_order=False)
    body = registry.get("netsuite/return_authorization").translate(order.SerializeToString())
    ra = await connector.create_document(
        DocumentRequest("returnAuthorization", f"{order.rma_number}-1", body)
    )

    batch = await connector.read_status_changes(None)
    record = next(r for r in batch.records if b'"id":"' + ra.document_id.encode() + b'"' in r)
    status = inventory_pb2.DocumentStatus.FromString(
        registry.get("netsuite/document_status").translate(record)
    )
    assert (status.document_type, status.document_id) == ("returnAuthorization", ra.document_id)
    assert status.external_reference == f"{order.rma_number}-1"
    assert status.erp_status == "Pending Receipt"

    stock = await connector.read_inventory(None, 5)
    level = inventory_pb2.InventoryLevel.FromString(
        registry.get("netsuite/inventory_level").translate(stock.records[0])
    )
    assert level.sku.startswith("SKU-") and Decimal(level.on_hand) >= 0
