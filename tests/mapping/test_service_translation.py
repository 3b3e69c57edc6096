"""TranslationService through a real grpc.aio server on a loopback port: outputs, errors and batches."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
import samples
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from returnbridge.api.v1 import inventory_pb2, translation_pb2, translation_pb2_grpc
from returnbridge.gateway import SecurityConfig, build_interceptors, hash_api_key
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.service import TranslationServiceConfig, TranslationServicer

INVENTORY_ROW = {
    "item": "501",
    "itemid": "SKU-1001",
    "location": "1",
    "locationname": "DAL1",
    "quantityonhand": "12",
    "quantityavailable": "11",
    "quantitycommitted": "1",
    "quantityonorder": "0",
    "lastmodified": "2026-11-27 15:30:01",
}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


_KEY = "rbk_translation_test_key_0001"


class _Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Sends the test API key with every call."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {_KEY}")]
        return await continuation(details._replace(metadata=metadata), request)


@pytest.fixture
async def stub(registry: MappingRegistry) -> AsyncIterator[translation_pb2_grpc.TranslationServiceStub]:
    # Behind the real interceptor chain, as in production: auth, rate limits, RBAC, error mapping.
    security = SecurityConfig.model_validate(
        {
            "api_keys": [
                {"name": "rms", "tenant_id": "acme", "roles": ["submitter"], "sha256": hash_api_key(_KEY)}
            ]
        }
    )
    server = grpc.aio.server(interceptors=build_interceptors(security))
    config = TranslationServiceConfig(max_batch_size=50, offload_threshold=4)
    translation_pb2_grpc.add_TranslationServiceServicer_to_server(
        TranslationServicer(registry, config), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=[_Bearer()])
    try:
        yield translation_pb2_grpc.TranslationServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


def _details(err: grpc.aio.AioRpcError) -> tuple[error_details_pb2.BadRequest, error_details_pb2.ErrorInfo]:
    status = rpc_status.from_call(err)
    assert status is not None, "no google.rpc.Status details on the error"
    bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(bad)
    assert status.details[1].Unpack(info)
    return bad, info


async def test_translate_outbound_matches_local_mapper(stub, registry) -> None:
    order = samples.build_return(4, erp="netsuite")
    response = await stub.Translate(
        translation_pb2.TranslateRequest(mapping_id="netsuite/return_authorization", return_order=order)
    )
    expected = registry.get("netsuite/return_authorization").translate(
        order.SerializeToString(deterministic=True)
    )
    assert response.output == expected
    assert response.content_type == "application/json"
    body = json.loads(response.output, parse_float=Decimal)
    assert body["otherRefNum"] == order.rma_number
    assert [line["custcol_rb_line_id"] for line in body["item"]["items"]] == [
        ln.line_id for ln in order.lines
    ]
    assert not response.explain


async def test_translate_inbound_returns_protobuf_with_content_type(stub) -> None:
    response = await stub.Translate(
        translation_pb2.TranslateRequest(
            mapping_id="netsuite/inventory_level", erp_payload=json.dumps(INVENTORY_ROW).encode()
        )
    )
    assert response.content_type == ("application/x-protobuf; messageType=returnbridge.api.v1.InventoryLevel")
    level = inventory_pb2.InventoryLevel.FromString(response.output)
    assert (level.sku, level.location.site, level.on_hand, level.available, level.reserved) == (
        "SKU-1001",
        "DAL1",
        "12",
        "11",
        "1",
    )


async def test_translate_with_explain_names_rules_and_inputs(stub) -> None:
    order = samples.build_return(2, erp="sap")
    response = await stub.Translate(
        translation_pb2.TranslateRequest(mapping_id="sap/customer_return", return_order=order, explain=True)
    )
    by_rule = {e.rule: e for e in response.explain}
    assert by_rule["header.sold_to"].input_path == "customer.erp_customer_ref"
    assert "SoldToParty" in by_rule["header.sold_to"].output_path
    assert by_rule["header.type"].input_path == ""
    assert any(e.rule == "items.serial" for e in response.explain)


async def test_translation_error_is_invalid_argument_with_rule_and_path(stub) -> None:
    order = samples.build_return(2, erp="sap")
    order.lines[1].serial_numbers[0] = "S" * 19
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Translate(
            translation_pb2.TranslateRequest(mapping_id="sap/customer_return", return_order=order)
        )
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "items.serial" in err.details() and "18 characters" in err.details()
    bad, info = _details(err)
    assert info.reason == "TRANSLATION_FAILED"
    assert info.metadata["rule"] == "items.serial"
    assert info.metadata["mapping_id"] == "sap/customer_return"
    assert "serial_numbers" in bad.field_violations[0].field
    assert "SAP SerialNumber" in bad.field_violations[0].description


async def test_unknown_mapping_is_not_found(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Translate(
            translation_pb2.TranslateRequest(mapping_id="netsuite/nope", return_order=samples.build_return(1))
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "netsuite/nope" in caught.value.details()


@pytest.mark.parametrize(
    ("mapping_id", "field"),
    [("netsuite/return_authorization", "return_order"), ("netsuite/inventory_level", "erp_payload")],
)
async def test_wrong_input_kind_is_invalid_argument(stub, mapping_id: str, field: str) -> None:
    request = translation_pb2.TranslateRequest(mapping_id=mapping_id)
    if field == "return_order":
        request.erp_payload = b"{}"
    else:
        request.return_order.CopyFrom(samples.build_return(1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Translate(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad, info = _details(caught.value)
    assert info.reason == "WRONG_INPUT_KIND"
    assert bad.field_violations[0].field == field


async def test_calls_without_credentials_are_refused(registry: MappingRegistry) -> None:
    security = SecurityConfig.model_validate({"api_keys": []})
    server = grpc.aio.server(interceptors=build_interceptors(security))
    translation_pb2_grpc.add_TranslationServiceServicer_to_server(TranslationServicer(registry), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await translation_pb2_grpc.TranslationServiceStub(channel).Translate(
                    translation_pb2.TranslateRequest(mapping_id="netsuite/return_authorization")
                )
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(None)


async def test_missing_mapping_id_is_invalid_argument(stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Translate(translation_pb2.TranslateRequest(return_order=samples.build_return(1)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad, _ = _details(caught.value)
    assert bad.field_violations[0].field == "mapping_id"


@pytest.mark.parametrize("size", [3, 12])  # below and above the thread offload threshold
async def test_batch_reports_problems_per_document(stub, registry, size: int) -> None:
    orders = [samples.build_return(2, seed=seed, erp="netsuite") for seed in range(1, size + 1)]
    orders[1].lines[0].sku = "SKU-UNKNOWN"
    orders[-1].ClearField("lines")
    response = await stub.TranslateBatch(
        translation_pb2.TranslateBatchRequest(
            mapping_id="netsuite/return_authorization", return_orders=orders
        )
    )
    assert response.content_type == "application/json"
    assert response.failed == 2
    assert [r.index for r in response.results] == list(range(size))
    mapper = registry.get("netsuite/return_authorization")
    for i, result in enumerate(response.results):
        if i in (1, size - 1):
            assert not result.output and len(result.problems) == 1
        else:
            assert not result.problems
            assert result.output == mapper.translate(orders[i].SerializeToString(deterministic=True))
    unknown = response.results[1].problems[0]
    assert unknown.rule == "lines.item"
    assert "SKU-UNKNOWN" in unknown.message and "items" in unknown.message
    assert response.results[-1].problems[0].rule == "lines"


async def test_batch_inbound_and_empty(stub) -> None:
    bad_row = dict(INVENTORY_ROW, quantityonhand="twelve")
    response = await stub.TranslateBatch(
        translation_pb2.TranslateBatchRequest(
            mapping_id="netsuite/inventory_level",
            erp_payloads=[json.dumps(INVENTORY_ROW).encode(), json.dumps(bad_row).encode(), b"not json"],
        )
    )
    assert response.failed == 2
    assert inventory_pb2.InventoryLevel.FromString(response.results[0].output).on_hand == "12"
    assert response.results[1].problems[0].rule == "on_hand"
    assert response.results[2].problems
    empty = await stub.TranslateBatch(
        translation_pb2.TranslateBatchRequest(mapping_id="netsuite/inventory_level")
    )
    assert (list(empty.results), empty.failed) == ([], 0)


async def test_batch_limits_and_input_kind(stub) -> None:
    orders = [samples.build_return(1, seed=seed) for seed in range(1, 52)]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.TranslateBatch(
            translation_pb2.TranslateBatchRequest(
                mapping_id="netsuite/return_authorization", return_orders=orders
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(caught.value)[1].reason == "BATCH_TOO_LARGE"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.TranslateBatch(
            translation_pb2.TranslateBatchRequest(
                mapping_id="netsuite/return_authorization", erp_payloads=[b"{}"]
            )
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.TranslateBatch(translation_pb2.TranslateBatchRequest(mapping_id="sap/unknown"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
