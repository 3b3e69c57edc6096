"""Connector bugs the lenient simulators hid, one case each: all failed before their fix.

- Oracle: under REST-Framework-Version 3+ Fusion returns an expanded child as a collection object; the
  receipt step iterated it as a list.
- NetSuite: the external reference went into ``eid:<ref>`` unencoded, so ``RMA%41-1`` was stored as
  ``RMAA-1`` and a retry's lookup never matched.
- Every value that goes into a URL path is percent-encoded: an id holding ``#`` or ``?`` must never
  address another document (the Oracle connector read ``<id>#x`` as ``<id>``; the SAP connector's quoted
  keys happened to fail safe, and their cases guard that).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from connectors.harnesses.netsuite import NetSuiteTbaHarness
from connectors.harnesses.oracle import return_order_payload
from connectors.harnesses.sap import SapODataHarness
from connectors.test_oracle_fusion import receipt_payload, req
from returnbridge.connectors.oracle_fusion import (
    ORDERS,
    RECEIPTS,
    OracleFusionConfig,
    OracleFusionConnector,
)
from returnbridge.errors import PermanentErpError
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import OracleSimulator

USER, PASSWORD = "integration.user", "Welcome1!"


@pytest.fixture
async def oracle() -> AsyncIterator[tuple[OracleSimulator, str]]:
    sim = OracleSimulator()
    running = await RunningSimulator(sim.app).start()
    try:
        yield sim, running.url
    finally:
        await running.stop()


@pytest.mark.parametrize("version", ["1", "2", "3", "4"])
async def test_oracle_receipt_reads_the_return_lines_in_every_framework_version(
    oracle: tuple[OracleSimulator, str], version: str
) -> None:
    sim, url = oracle
    connector = OracleFusionConnector(
        OracleFusionConfig(base_url=url, username=USER, password=PASSWORD, rest_framework_version=version)
    )
    try:
        order = await connector.create_document(
            req(ORDERS, f"RMA-V{version}-1", return_order_payload(quantity=Decimal("1")))
        )
        # The receipt names RMS line ids only: the connector reads the order (expand=lines) to map them.
        receipt = await connector.create_document(
            req(
                RECEIPTS,
                f"RMA-V{version}-2",
                receipt_payload("1"),
                source_document_type=ORDERS,
                source_document_id=order.document_id,
            )
        )
    finally:
        await connector.aclose()
    line = sim.state.documents[RECEIPTS][receipt.document_id]["lines"][0]
    assert (line["DocumentNumber"], line["DocumentLineNumber"]) == (order.document_number, "1")


@pytest.fixture
async def netsuite() -> AsyncIterator[NetSuiteTbaHarness]:
    harness = NetSuiteTbaHarness()
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.mark.parametrize("ref", ["RMA%41-1", "RMA 7?x=1#f-1", "RMA+ä&=;'-1"])
async def test_netsuite_reference_is_percent_encoded_in_the_upsert_path(
    netsuite: NetSuiteTbaHarness, ref: str
) -> None:
    connector = netsuite.connector()
    created = await connector.create_document(netsuite.request(ref))
    assert netsuite.sim.documents("returnAuthorization")[created.document_id]["externalId"] == ref
    found = await connector.find_document("returnAuthorization", ref)
    assert found is not None and found.document_id == created.document_id
    again = await connector.create_document(netsuite.request(ref))
    assert again.document_id == created.document_id
    assert await netsuite.count_documents("returnAuthorization", ref) == 1


@pytest.mark.parametrize("suffix", ["#x", "?onlyData=false", "%23"])
async def test_oracle_ids_with_url_characters_never_address_another_document(
    oracle: tuple[OracleSimulator, str], suffix: str
) -> None:
    _, url = oracle
    connector = OracleFusionConnector(OracleFusionConfig(base_url=url, username=USER, password=PASSWORD))
    try:
        order = await connector.create_document(req(ORDERS, "RMA-URL-1", return_order_payload()))
        with pytest.raises(PermanentErpError):
            await connector.get_document_status(ORDERS, order.document_id + suffix)
    finally:
        await connector.aclose()


@pytest.fixture
async def sap() -> AsyncIterator[SapODataHarness]:
    harness = SapODataHarness()
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.mark.parametrize("suffix", ["')#", "')?$format=json", "%27%29"])
async def test_sap_keys_with_url_characters_never_address_another_document(
    sap: SapODataHarness, suffix: str
) -> None:
    connector = sap.connector()
    created = await connector.create_document(sap.request("RMA-URL-2"))
    with pytest.raises(PermanentErpError):
        await connector.get_document_status("A_CustomerReturn", created.document_id + suffix)
