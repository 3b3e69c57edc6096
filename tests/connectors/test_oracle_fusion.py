"""Oracle Fusion connector beyond the conformance suite: the return flow, secrets, auth modes, error bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from connectors.harnesses.oracle import credit_memo_payload, return_order_payload
from returnbridge import exactjson
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.oracle_fusion import (
    CREDIT_MEMOS,
    ORDERS,
    RECEIPTS,
    OracleFusionConfig,
    OracleFusionConnector,
    parse_fusion_error,
)
from returnbridge.connectors.registry import build_connector, parse_connector_config
from returnbridge.errors import ConfigError, PermanentErpError, TransientErpError
from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import OracleSimConfig, OracleSimulator

USER, PASSWORD = "integration.user", "Welcome1!"


@pytest.fixture
async def fusion() -> AsyncIterator[tuple[OracleFusionConnector, OracleSimulator, str]]:
    sim = OracleSimulator(OracleSimConfig(bearer_tokens=("tok-1",)))
    running = await RunningSimulator(sim.app).start()
    connector = OracleFusionConnector(
        OracleFusionConfig(base_url=running.url, username=USER, password=PASSWORD)
    )
    try:
        yield connector, sim, running.url
    finally:
        await connector.aclose()
        await running.stop()


def receipt_payload(qty: str) -> dict[str, object]:
    return {
        "ReceiptSourceCode": "CUSTOMER",
        "OrganizationCode": "DAL1",
        "lines": [
            {
                "ReceiptSourceCode": "CUSTOMER",
                "SourceDocumentCode": "RMA",
                "TransactionType": "RECEIVE",
                "AutoTransactCode": "DELIVER",
                "OrganizationCode": "DAL1",
                "SourceTransactionLineId": "L1",
                "ItemNumber": "SKU-1001",
                "Quantity": Decimal(qty),
                "UnitOfMeasure": "Ea",
                "Subinventory": "RETURNS",
                "serialItemSerials": [{"FromSerialNumber": "SN-1", "ToSerialNumber": "SN-1"}],
            }
        ],
    }


def req(doc_type: str, ref: str, payload: dict[str, object], **kw: str) -> DocumentRequest:
    return DocumentRequest(doc_type, ref, exactjson.dumps(payload).encode(), **kw)  # type: ignore[arg-type]


async def test_return_flow_order_receipt_credit_memo(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    connector, sim, _ = fusion
    order = await connector.create_document(
        req(ORDERS, "RMA-77-1", return_order_payload(quantity=Decimal("1"), unit_price=Decimal("0.10")))
    )
    assert order.created and order.status == "OPEN" and order.document_number
    stored = sim.state.documents[ORDERS][order.document_id]
    assert stored["SourceTransactionId"] == "RMA-77-1" and stored["SourceTransactionSystem"] == "RETBRIDGE"

    receipt = await connector.create_document(
        req(
            RECEIPTS,
            "RMA-77-2",
            receipt_payload("1"),
            source_document_type=ORDERS,
            source_document_id=order.document_id,
        )
    )
    assert receipt.created and receipt.status == "SUCCESS"
    line = sim.state.documents[RECEIPTS][receipt.document_id]["lines"][0]
    assert line["DocumentNumber"] == order.document_number and line["DocumentLineNumber"] == "1"
    assert "SourceTransactionLineId" not in line, "our routing hint never reaches Fusion"
    assert sim.state.stock[("SKU-1001", "DAL1", "RETURNS")] == Decimal(1)
    assert (await connector.get_document_status(ORDERS, order.document_id)).status == "RECEIVED"

    memo = await connector.create_document(
        req(CREDIT_MEMOS, "RMA-77-3", credit_memo_payload(unit_price=Decimal("0.10")))
    )
    assert memo.status == "Complete"
    assert memo.raw["EnteredAmount"] == Decimal("-0.20")
    assert isinstance(memo.raw["EnteredAmount"], Decimal)
    assert sim.state.trial_balance()["balanced"] is True

    again = await connector.create_document(
        req(
            RECEIPTS,
            "RMA-77-2",
            receipt_payload("1"),
            source_document_type=ORDERS,
            source_document_id=order.document_id,
        )
    )
    assert again.created is False and again.document_id == receipt.document_id
    assert sim.state.stock[("SKU-1001", "DAL1", "RETURNS")] == Decimal(1), "no second receipt"


async def test_receipt_without_source_or_match_is_refused(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    connector, _, _ = fusion
    with pytest.raises(PermanentErpError, match="no source return order"):
        await connector.create_document(req(RECEIPTS, "RMA-78-2", receipt_payload("1")))
    order = await connector.create_document(req(ORDERS, "RMA-78-1", return_order_payload()))
    payload = receipt_payload("1")
    payload["lines"][0]["SourceTransactionLineId"] = "L9"  # type: ignore[index]
    with pytest.raises(PermanentErpError, match="L9"):
        await connector.create_document(
            req(
                RECEIPTS,
                "RMA-78-2",
                payload,
                source_document_type=ORDERS,
                source_document_id=order.document_id,
            )
        )


async def test_external_reference_overrides_payload(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    connector, sim, _ = fusion
    payload = {**credit_memo_payload(), "PurchaseOrder": "SOMETHING-ELSE"}
    memo = await connector.create_document(req(CREDIT_MEMOS, "RMA-79-3", payload))
    assert sim.state.documents[CREDIT_MEMOS][memo.document_id]["PurchaseOrder"] == "RMA-79-3"
    assert (await connector.find_document(CREDIT_MEMOS, "SOMETHING-ELSE")) is None


async def test_bearer_auth_and_framework_header(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, url = fusion
    monkeypatch.setenv("RB_TEST_FUSION_TOKEN", "tok-1")
    config = OracleFusionConfig(
        base_url=url, auth="bearer", token_env="RB_TEST_FUSION_TOKEN", rest_framework_version="2"
    )
    connector = OracleFusionConnector(config)
    try:
        created = await connector.create_document(req(ORDERS, "RMA-80-1", return_order_payload()))
        found = await connector.find_document(ORDERS, "RMA-80-1")
        assert found is not None and found.document_id == created.document_id
    finally:
        await connector.aclose()


async def test_v1_query_syntax_and_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "count": 0, "hasMore": False, "limit": 2, "offset": 0})

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(handler),
        base_url="http://fusion.test/fscmRestApi/resources/11.13.18.05/",
    )
    config = OracleFusionConfig(
        base_url="http://fusion.test", username=USER, password=PASSWORD, rest_framework_version="1"
    )
    connector = OracleFusionConnector(config, client=client)
    assert await connector.find_document(ORDERS, "RMA-1-1") is None
    await connector.aclose()
    [request] = seen
    assert request.headers["REST-Framework-Version"] == "1"
    assert request.headers["Authorization"].startswith("Basic ")
    assert request.url.params["q"] == "SourceTransactionNumber=RMA-1-1;SourceTransactionSystem=RETBRIDGE"


def test_error_bodies_json_and_text() -> None:
    as_json = httpx.Response(
        400,
        headers={"Content-Type": "application/vnd.oracle.adf.error+json"},
        json={
            "title": "Bad Request",
            "status": "400",
            "o:errorDetails": [
                {"detail": "bad item", "o:errorCode": "DOO-1"},
                {"detail": "bad qty", "o:errorCode": "DOO-2"},
            ],
        },
    )
    assert parse_fusion_error(as_json) == ("DOO-1", "bad item; bad qty")
    title_only = httpx.Response(
        500, headers={"Content-Type": "application/json"}, json={"title": "Internal Server Error"}
    )
    assert parse_fusion_error(title_only) == ("500", "Internal Server Error")
    text = httpx.Response(
        400, headers={"Content-Type": "text/plain"}, text="JBO-27014: Attribute X is required.\n"
    )
    assert parse_fusion_error(text) == ("400", "JBO-27014: Attribute X is required.")


async def test_text_errors_keep_message_and_duplicates_resolve() -> None:
    sim = OracleSimulator(OracleSimConfig(error_format="text"))
    running = await RunningSimulator(sim.app).start()
    connector = OracleFusionConnector(
        OracleFusionConfig(base_url=running.url, username=USER, password=PASSWORD)
    )
    try:
        with pytest.raises(PermanentErpError) as info:
            await connector.create_document(req(ORDERS, "RMA-81-1", return_order_payload(sku="SKU-1010")))
        assert "isn't returnable" in info.value.erp_message and info.value.http_status == 400
        first = await connector.create_document(req(ORDERS, "RMA-81-1", return_order_payload()))
        second = await connector.create_document(req(ORDERS, "RMA-81-1", return_order_payload()))
        assert (second.created, second.document_id) == (False, first.document_id)
    finally:
        await connector.aclose()
        await running.stop()


async def test_503_retry_after_on_reads(fusion: tuple[OracleFusionConnector, OracleSimulator, str]) -> None:
    connector, sim, _ = fusion
    sim.kit.faults.set(FaultPlan(error_rate=1.0, error_statuses=[503], retry_after=4))
    with pytest.raises(TransientErpError) as info:
        await connector.read_inventory(None)
    assert info.value.retry_after == 4.0 and info.value.http_status == 503


async def test_status_feed_merges_resources_in_time_order(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    connector, _, _ = fusion
    await connector.create_document(req(ORDERS, "RMA-82-1", return_order_payload()))
    await connector.create_document(req(CREDIT_MEMOS, "RMA-82-3", credit_memo_payload(quantity=Decimal("3"))))
    await connector.create_document(req(ORDERS, "RMA-83-1", return_order_payload()))
    seen: list[dict[str, object]] = []
    cursor = None
    for _ in range(10):
        batch = await connector.read_status_changes(cursor, limit=1)
        seen.extend(json.loads(r, parse_float=Decimal) for r in batch.records)
        cursor = batch.cursor
        if not batch.has_more:
            break
    assert [r["ExternalReference"] for r in seen] == ["RMA-82-1", "RMA-82-3", "RMA-83-1"]
    assert seen[1]["Amount"] == Decimal("-59.97") and seen[1]["DocumentType"] == CREDIT_MEMOS
    assert (await connector.read_status_changes(cursor)).records == []


def test_config_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret\n")
    config = OracleFusionConfig(base_url="https://x", username="u", password_file=secret_file)
    assert config.authorization() == "Basic dTpzM2NyZXQ="
    inline = OracleFusionConfig(base_url="https://x", username="u", password="hidden-pw")
    assert "hidden-pw" not in repr(inline) and "hidden-pw" not in inline.model_dump_json()
    missing = OracleFusionConfig(base_url="https://x", username="u", password_env="RB_TEST_UNSET_PW")
    monkeypatch.delenv("RB_TEST_UNSET_PW", raising=False)
    with pytest.raises(ConfigError, match="RB_TEST_UNSET_PW"):
        missing.authorization()
    with pytest.raises(ValueError, match="needs one of"):
        OracleFusionConfig(base_url="https://x", username="u")


def test_registry_builds_from_yaml_mapping() -> None:
    raw = {"kind": "oracle_fusion", "base_url": "https://pod.example", "username": "u", "password": "p"}
    config = parse_connector_config(raw)
    assert isinstance(config, OracleFusionConfig)
    connector = build_connector(config)
    assert connector.kind == "oracle_fusion" and connector.erp == "oracle_fusion"
    with pytest.raises(ConfigError, match="max_concurrency"):
        parse_connector_config({**raw, "max_concurrency": 0})


def test_dumps_exact_refuses_floats() -> None:
    assert exactjson.dumps({"a": Decimal("1.10"), "b": [1, None, True]}) == '{"a":1.10,"b":[1,null,true]}'
    with pytest.raises(TypeError):
        exactjson.dumps({"a": 0.1})


async def test_decimal_strings_become_exact_numbers(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    connector, sim, _ = fusion
    payload = return_order_payload()
    payload["lines"][0]["OrderedQuantity"] = "2.500"
    payload["lines"][0]["UnitListPrice"] = "0.30"
    order = await connector.create_document(req(ORDERS, "RMA-84-1", payload))
    line = sim.state.documents[ORDERS][order.document_id]["lines"][0]
    assert (line["OrderedQuantity"], line["UnitListPrice"]) == (Decimal("2.500"), Decimal("0.30"))
    payload["lines"][0]["OrderedQuantity"] = "lots"
    with pytest.raises(PermanentErpError, match="OrderedQuantity must be a decimal"):
        await connector.create_document(req(ORDERS, "RMA-84-2", payload))


async def test_a_row_changed_again_after_the_cursor_is_not_skipped(
    fusion: tuple[OracleFusionConnector, OracleSimulator, str],
) -> None:
    """The cursor remembers how many rows it read at its timestamp; when one of them changes again it moves
    past that timestamp, and an offset of "rows already read" would then skip the fresh change."""
    connector, sim, _ = fusion
    cursor = None
    while True:
        batch = await connector.read_inventory(cursor, 7)
        cursor = batch.cursor
        if not batch.has_more:
            break
    sim.adjust_stock("SKU-1001", "DAL1", "Stores", Decimal(5))
    first = await connector.read_inventory(cursor, 500)
    assert [json.loads(r)["ItemNumber"] for r in first.records] == ["SKU-1001"]
    sim.adjust_stock("SKU-1001", "DAL1", "Stores", Decimal(5))  # the same row again
    second = await connector.read_inventory(first.cursor, 500)
    assert len(second.records) == 1, "the second change of the row was skipped"
    assert (
        Decimal(str(json.loads(second.records[0])["PrimaryTransactionQuantity"]))
        == sim.kit.state.stock[("SKU-1001", "DAL1", "Stores")]
    )
    assert (await connector.read_inventory(second.cursor, 500)).records == []
