"""NetSuite connector against the simulator: the whole return flow, transforms, feeds, OAuth 2.0, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from connectors.conformance import drain, new_reference, worker_style_create
from connectors.harnesses.netsuite import NetSuiteOAuth2Harness, NetSuiteTbaHarness
from returnbridge import exactjson
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.netsuite import NetSuiteConnector, OAuth2AuthConfig
from returnbridge.errors import AmbiguousErpError, ErpAuthError, PermanentErpError, TransientErpError
from returnbridge.simulators.netsuite_config import NetSuiteSimulatorConfig, OAuth2ClientConfig


@pytest.fixture
async def tba() -> AsyncIterator[NetSuiteTbaHarness]:
    harness = NetSuiteTbaHarness()
    await harness.start()
    yield harness
    await harness.stop()


def ra_request(ref: str, *lines: dict[str, Any], **extra: Any) -> DocumentRequest:
    body = {"entity": {"id": "101"}, "item": {"items": list(lines)}, **extra}
    return DocumentRequest("returnAuthorization", ref, exactjson.dumps_bytes(body))


def line(item: str, quantity: str, rate: str, location: str = "1") -> dict[str, Any]:
    return {
        "item": {"id": item},
        "quantity": Decimal(quantity),
        "rate": Decimal(rate),
        "location": {"id": location},
    }


def follow_up(document_type: str, ref: str, ra_id: str, body: dict[str, Any]) -> DocumentRequest:
    return DocumentRequest(
        document_type,
        ref,
        exactjson.dumps_bytes(body),
        source_document_type="returnAuthorization",
        source_document_id=ra_id,
    )


async def test_return_flow_authorize_receive_credit(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    sim = tba.sim
    rma = new_reference()[:-2]
    ra = await connector.create_document(
        ra_request(
            f"{rma}-1", line("501", "2", "19.99"), line("503", "1", "249.00", location="2"), otherRefNum=rma
        )
    )
    # The create answer names the record only (204 + Location); its state comes from a read.
    ra_status = await connector.get_document_status("returnAuthorization", ra.document_id)
    assert ra_status.status == "Pending Receipt" and ra_status.document_number.startswith("RMA")
    assert ra_status.raw["otherRefNum"] == rma

    dal1, rno2 = sim.on_hand("SKU-1001", "DAL1"), sim.on_hand("SKU-1003", "RNO2")
    receipt_body = {
        "item": {
            "items": [
                {
                    "orderLine": 1,
                    "item": {"id": "501"},
                    "itemReceive": True,
                    "quantity": 2,
                    "location": {"id": "1"},
                },
                {
                    "orderLine": 2,
                    "item": {"id": "503"},
                    "itemReceive": True,
                    "quantity": 1,
                    "location": {"id": "2"},
                    "inventoryDetail": {
                        "inventoryAssignment": {"items": [{"receiptInventoryNumber": "SN-77", "quantity": 1}]}
                    },
                },
            ]
        }
    }
    receipt = await connector.create_document(
        follow_up("itemReceipt", f"{rma}-2", ra.document_id, receipt_body)
    )
    read = await connector.get_document_status("itemReceipt", receipt.document_id)
    assert receipt.created and read.raw["createdFrom"]["id"] == ra.document_id
    assert sim.on_hand("SKU-1001", "DAL1") == dal1 + 2
    assert sim.on_hand("SKU-1003", "RNO2") == rno2 + 1
    assert sim.serials["503"]["SN-77"] == "2"
    assert (
        await connector.get_document_status("returnAuthorization", ra.document_id)
    ).status == "Pending Refund"

    credit = await connector.create_document(follow_up("creditMemo", f"{rma}-3", ra.document_id, {}))
    assert (await connector.get_document_status("creditMemo", credit.document_id)).status == "Open"
    ledger = [e for e in sim.kit.state.ledger if e.document_id == credit.document_id]
    assert sum(e.debit for e in ledger) == sum(e.credit for e in ledger) == Decimal("288.98")
    assert (await connector.get_document_status("returnAuthorization", ra.document_id)).status == "Closed"

    # Re-sending a follow-up step finds the earlier document instead of creating another.
    again = await connector.create_document(follow_up("creditMemo", f"{rma}-3", ra.document_id, {}))
    assert again.document_id == credit.document_id and again.created is False
    assert len(sim.documents("creditMemo")) == 1

    records, _ = await drain(connector.read_status_changes, None)
    by_id = {r["id"]: r for r in records}
    assert by_id[ra.document_id]["documenttype"] == "returnAuthorization"
    assert by_id[ra.document_id]["statusname"] == "Closed" and by_id[ra.document_id]["status"] == "H"
    assert by_id[receipt.document_id]["documenttype"] == "itemReceipt"
    assert by_id[receipt.document_id]["createdfrom"] == ra.document_id
    assert (by_id[credit.document_id]["total"], by_id[credit.document_id]["currency"]) == ("288.98", "USD")
    assert by_id[credit.document_id]["externalid"] == f"{rma}-3"

    levels, _ = await drain(connector.read_inventory, None)
    dal = next(r for r in levels if (r["itemid"], r["locationname"]) == ("SKU-1001", "DAL1"))
    assert Decimal(dal["quantityonhand"]) == dal1 + 2


async def test_cash_refund_needs_its_ra_and_posts_to_cash(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(DocumentRequest("cashRefund", new_reference(), b"{}"))
    assert info.value.code == "MISSING_SOURCE_DOCUMENT"
    ra = await connector.create_document(ra_request(new_reference(), line("502", "3", "0.10")))
    refund = await connector.create_document(
        DocumentRequest(
            "cashRefund",
            new_reference(),
            exactjson.dumps_bytes({"createdFrom": {"id": ra.document_id}, "paymentMethod": {"id": "3"}}),
        )
    )
    entries = [
        (e.account, e.debit, e.credit)
        for e in tba.sim.kit.state.ledger
        if e.document_id == refund.document_id
    ]
    assert entries == [
        ("4010 Sales Returns", Decimal("0.30"), 0),
        ("1000 Undeposited Funds", 0, Decimal("0.30")),
    ]
    assert (await connector.get_document_status("returnAuthorization", ra.document_id)).status == "Refunded"


async def test_return_authorization_transformed_from_sales_order(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    ref = new_reference()
    payload = {"createdFrom": {"id": "9001"}, "item": {"items": [{"item": {"id": "502"}, "quantity": 1}]}}
    ra = await connector.create_document(
        DocumentRequest("returnAuthorization", ref, exactjson.dumps_bytes(payload))
    )
    read = (await connector.get_document_status("returnAuthorization", ra.document_id)).raw
    assert read["createdFrom"]["id"] == "9001" and read["entity"]["id"] == "101"
    stored = tba.sim.documents("returnAuthorization")[ra.document_id]
    assert [(ln["item"]["id"], ln["quantity"], ln["rate"]) for ln in stored["item"]] == [
        ("502", 1, Decimal("5.00"))
    ]
    assert "createdFrom" not in exactjson.dumps_bytes(stored["item"]).decode()

    by_source = await connector.create_document(
        DocumentRequest(
            "returnAuthorization",
            new_reference(),
            b"{}",
            source_document_type="salesOrder",
            source_document_id="9002",
        )
    )
    assert tba.sim.documents("returnAuthorization")[by_source.document_id]["entity"] == {"id": "102"}

    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(
            DocumentRequest(
                "itemReceipt",
                new_reference(),
                b"{}",
                source_document_type="salesOrder",
                source_document_id="9001",
            )
        )
    assert info.value.code == "INVALID_TRANSFORM"
    with pytest.raises(PermanentErpError) as missing:
        await connector.create_document(
            DocumentRequest(
                "returnAuthorization", new_reference(), exactjson.dumps_bytes({"createdFrom": {"id": "4242"}})
            )
        )
    assert missing.value.http_status == 404 and missing.value.code == "NONEXISTENT_ID"


async def test_transform_commit_then_drop_ends_with_one_receipt(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    ra = await connector.create_document(ra_request(new_reference(), line("501", "1", "19.99")))
    ref = new_reference()
    request = follow_up("itemReceipt", ref, ra.document_id, {})
    await tba.set_faults(
        {"commit_then_drop_rate": 1.0, "path_pattern": r"/!transform/itemReceipt$", "remaining": 1}
    )
    with pytest.raises(AmbiguousErpError):
        await connector.create_document(request)
    await tba.clear_faults()
    recovered = await worker_style_create(connector, request)
    again = await connector.create_document(request)
    assert recovered.document_id == again.document_id and again.created is False
    assert await tba.count_documents("itemReceipt", ref) == 1
    assert tba.sim.on_hand("SKU-1001", "DAL1") == 10 + 1


async def test_external_reference_with_quote_round_trips(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    ref = "RMA-O'BRIEN-1"
    created = await connector.create_document(ra_request(ref, line("501", "1", "19.99")))
    found = await connector.find_document("returnAuthorization", ref)
    assert found is not None and found.document_id == created.document_id
    assert await connector.find_document("returnAuthorization", "RMA-O'BRIEN-2") is None
    with pytest.raises(PermanentErpError):
        await connector.find_document("returnAuthorization", "bad\nref")
    with pytest.raises(PermanentErpError):
        await connector.create_document(ra_request("a/b", line("501", "1", "1")))


async def test_validation_errors_keep_netsuite_code_and_path(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(ra_request(new_reference(), line("501", "1", "1", location="99")))
    assert info.value.code == "INVALID_KEY_OR_REF" and info.value.http_status == 400
    assert info.value.erp_message.endswith("(path: item.items[0].location)")
    with pytest.raises(PermanentErpError) as memo:
        await connector.create_document(ra_request(new_reference(), line("501", "1", "1"), memo="x" * 1000))
    assert memo.value.code == "USER_ERROR" and "(path: memo)" in memo.value.erp_message
    with pytest.raises(PermanentErpError) as unsupported:
        await connector.create_document(DocumentRequest("vendorBill", new_reference(), b"{}"))
    assert unsupported.value.code == "UNSUPPORTED_DOCUMENT_TYPE"
    with pytest.raises(PermanentErpError) as not_json:
        await connector.create_document(DocumentRequest("returnAuthorization", new_reference(), b"[1, 2"))
    assert not_json.value.code == "INVALID_PAYLOAD"


async def test_exact_decimals_through_the_wire(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    body = b'{"entity":{"id":"101"},"item":{"items":[{"item":{"id":"501"},"quantity":1.5,"rate":1234567890.123456789}]}}'
    created = await connector.create_document(DocumentRequest("returnAuthorization", new_reference(), body))
    stored = tba.sim.documents("returnAuthorization")[created.document_id]["item"][0]
    assert (stored["quantity"], stored["rate"]) == (Decimal("1.5"), Decimal("1234567890.123456789"))
    assert stored["amount"] == Decimal("1851851835.19")


async def test_status_feed_cursor_survives_many_changes_in_one_second(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    created = await asyncio.gather(
        *(connector.create_document(ra_request(new_reference(), line("501", "1", "1"))) for _ in range(7))
    )
    records, cursor = await drain(connector.read_status_changes, None, limit=2)
    assert {c.document_id for c in created} <= {r["id"] for r in records}
    assert len(records) == len({r["id"] for r in records}), "no record delivered twice"
    nothing, same = await drain(connector.read_status_changes, cursor)
    assert nothing == [] and same == cursor
    with pytest.raises(PermanentErpError):
        await connector.read_status_changes("not-a-cursor")


async def test_concurrency_stays_within_the_account_limit() -> None:
    harness = NetSuiteTbaHarness(NetSuiteSimulatorConfig(concurrency_limit=3))
    await harness.start()
    try:
        await harness.set_faults({"latency_ms_min": 20, "latency_ms_max": 20})
        polite = NetSuiteConnector(harness.config(max_concurrency=3))
        try:
            refs = [new_reference() for _ in range(12)]
            await asyncio.gather(*(polite.create_document(harness.request(r)) for r in refs))
        finally:
            await polite.aclose()
        assert harness.sim.max_in_flight == 3 and harness.sim.concurrency_refusals == 0

        greedy = NetSuiteConnector(harness.config(max_concurrency=12))
        try:
            results = await asyncio.gather(
                *(greedy.create_document(harness.request(new_reference())) for _ in range(12)),
                return_exceptions=True,
            )
        finally:
            await greedy.aclose()
        refused = [r for r in results if isinstance(r, TransientErpError)]
        assert refused, "the simulator enforces the account limit"
        assert all(
            r.code == "CONCURRENCY_LIMIT_EXCEEDED" and r.retry_after == 1.0 and r.http_status == 429
            for r in refused
        )
    finally:
        await harness.stop()


async def test_oauth2_token_cached_and_refetched_after_expiry() -> None:
    harness = NetSuiteOAuth2Harness()
    await harness.start()
    try:
        connector = harness.connector()
        for _ in range(3):
            await connector.create_document(harness.request(new_reference()))
        assert harness.sim.oauth2.issued == 1, "one token serves many requests"
        harness.sim.oauth2.expire_all()
        await connector.create_document(harness.request(new_reference()))
        assert harness.sim.oauth2.issued == 2, "a 401 fetches a fresh token and the request goes through"

        bad = harness.connector(bad_credentials=True)
        with pytest.raises(ErpAuthError) as info:
            await bad.find_document("returnAuthorization", "x")
        assert info.value.code == "invalid_client"
    finally:
        await harness.stop()


async def test_oauth2_with_rsa_pss_certificate() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    harness = NetSuiteTbaHarness(
        NetSuiteSimulatorConfig(
            oauth2_clients=[OAuth2ClientConfig(client_id="c", certificate_id="k", public_key_pem=public)]
        )
    )
    await harness.start()
    try:
        auth = OAuth2AuthConfig(
            client_id="c", certificate_id="k", private_key=SecretStr(private), algorithm="PS256"
        )
        connector = NetSuiteConnector(harness.config().model_copy(update={"auth": auth}))
        try:
            created = await connector.create_document(harness.request(new_reference()))
            status = await connector.get_document_status("returnAuthorization", created.document_id)
            assert status.status == "Pending Receipt"
        finally:
            await connector.aclose()
    finally:
        await harness.stop()


async def test_request_timeout_bounds_the_whole_create(tba: NetSuiteTbaHarness) -> None:
    connector = tba.connector()
    ref = new_reference()
    await tba.set_faults({"latency_ms_min": 400, "latency_ms_max": 400})
    started = asyncio.get_running_loop().time()
    with pytest.raises(AmbiguousErpError):
        # The one write takes 0.4 s per leg; the 0.3 s deadline cuts it off after it was sent.
        await connector.create_document(tba.request(ref, timeout=0.3))
    assert asyncio.get_running_loop().time() - started < 1.0
    await tba.clear_faults()

    # Whether the simulator applied the cut-off write or not, the worker's sequence ends with one RA.
    await worker_style_create(connector, tba.request(ref))
    assert await tba.count_documents("returnAuthorization", ref) == 1
