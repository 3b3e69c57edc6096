"""The SAP simulator as a standard OData client sees it: pyodata, auth, CSRF, envelopes, query options, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pyodata
import pytest
import requests

from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.sap import SapSimulator, SapSimulatorConfig, build_simulator
from returnbridge.simulators.sap_odata_query import QueryError, parse_filter

USER, PASSWORD = "RB_API_USER", "Welcome1!"
CR_SRV = "/sap/opu/odata/sap/API_CUSTOMER_RETURN_SRV"


async def _start(config: SapSimulatorConfig) -> tuple[SapSimulator, RunningSimulator]:
    simulator = build_simulator(config)
    return simulator, await RunningSimulator(simulator.app).start()


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SapSimulator, RunningSimulator]]:
    simulator, running = await _start(SapSimulatorConfig())
    yield simulator, running
    await running.stop()


@pytest.fixture
async def client(sim: tuple[SapSimulator, RunningSimulator]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim[1].url, auth=(USER, PASSWORD)) as c:
        yield c


async def _token(client: httpx.AsyncClient) -> str:
    response = await client.get(CR_SRV + "/", headers={"X-CSRF-Token": "Fetch"})
    assert response.status_code == 200
    return response.headers["x-csrf-token"]


def _return_body(po: str = "RMA-1-1", **header: Any) -> dict[str, Any]:
    return {
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "10100002",
        "PurchaseOrderByCustomer": po,
        **header,
        "to_Item": {
            "results": [{"Material": "SKU-1002", "RequestedQuantity": "1.500", "ProductionPlant": "RNO2"}]
        },
    }


def _pyodata_create(url: str) -> dict[str, Any]:
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    fetched = session.head(url + "/", headers={"X-CSRF-Token": "Fetch"}, timeout=10)
    session.headers.update({"X-CSRF-Token": fetched.headers["x-csrf-token"]})
    service = pyodata.Client(url, session)
    entity = (
        service.entity_sets.A_CustomerReturn.create_entity()
        .set(
            SalesOrganization="1710",
            DistributionChannel="10",
            OrganizationDivision="00",
            SoldToParty="10100001",
            PurchaseOrderByCustomer="RMA-PYODATA-1",
            TransactionCurrency="USD",
            to_Item=[
                {
                    "CustomerReturnItem": "10",
                    "Material": "SKU-1003",
                    "RequestedQuantity": "4",
                    "ProductionPlant": "LHR1",
                    "StorageLocation": "RET1",
                    "to_SerialNumber": [{"SerialNumber": "SN-PY-1"}],
                }
            ],
        )
        .execute()
    )
    fetched_back = service.entity_sets.A_CustomerReturn.get_entity(entity.CustomerReturn).execute()
    listed = (
        service.entity_sets.A_CustomerReturn.get_entities()
        .filter("PurchaseOrderByCustomer eq 'RMA-PYODATA-1'")
        .execute()
    )
    session.close()
    return {
        "number": entity.CustomerReturn,
        "net": fetched_back.TotalNetAmount,
        "status": fetched_back.OverallSDProcessStatus,
        "listed": [e.CustomerReturn for e in listed],
    }


async def test_sap_client_library_pyodata_creates_a_customer_return(
    sim: tuple[SapSimulator, RunningSimulator],
) -> None:
    simulator, running = sim
    result = await asyncio.to_thread(_pyodata_create, running.url + CR_SRV)
    assert result["number"] == "60000001"
    assert Decimal(result["net"]) == Decimal("21.00")
    assert result["status"] == "A"
    assert result["listed"] == ["60000001"]
    doc = simulator.kit.state.documents["A_CustomerReturn"]["60000001"]
    assert doc["to_Item"][0]["to_SerialNumber"][0]["SerialNumber"] == "SN-PY-1"


async def test_metadata_is_edmx(client: httpx.AsyncClient) -> None:
    response = await client.get(CR_SRV + "/$metadata")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert '<EntitySet Name="A_CustomerReturn"' in response.text
    assert (
        '<Property Name="PurchaseOrderByCustomer" Type="Edm.String" Nullable="true" MaxLength="35"/>'
        in response.text
    )


async def test_basic_auth_is_required(sim: tuple[SapSimulator, RunningSimulator]) -> None:
    async with httpx.AsyncClient(base_url=sim[1].url) as anonymous:
        response = await anonymous.get(CR_SRV + "/A_CustomerReturn")
        assert response.status_code == 401 and "Basic realm" in response.headers["WWW-Authenticate"]
        wrong = await anonymous.get(CR_SRV + "/A_CustomerReturn", auth=(USER, "nope"))
        assert wrong.status_code == 401


async def test_writes_need_token_and_session_cookie(
    sim: tuple[SapSimulator, RunningSimulator], client: httpx.AsyncClient
) -> None:
    refused = await client.post(CR_SRV + "/A_CustomerReturn", json=_return_body())
    assert refused.status_code == 403 and refused.headers["x-csrf-token"] == "Required"
    assert refused.text == "CSRF token validation failed"
    token = await _token(client)
    async with httpx.AsyncClient(base_url=sim[1].url, auth=(USER, PASSWORD)) as no_cookie:
        stolen = await no_cookie.post(
            CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token}
        )
        assert stolen.status_code == 403, "a token is only valid with its session cookie"
    ok = await client.post(CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token})
    assert ok.status_code == 201
    assert (await client.post("/_sim/sap/csrf/expire")).json() == {"expired": 1}
    expired = await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-2-1"), headers={"X-CSRF-Token": token}
    )
    assert expired.status_code == 403 and expired.headers["x-csrf-token"] == "Required"


async def test_entity_envelope_decimals_dates_and_deferred_links(client: httpx.AsyncClient) -> None:
    token = await _token(client)
    created = await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token}
    )
    d = created.json()["d"]
    assert created.headers["Location"].endswith("/A_CustomerReturn('60000001')")
    assert d["__metadata"]["type"] == "API_CUSTOMER_RETURN_SRV.A_CustomerReturnType"
    assert d["TotalNetAmount"] == "74.25" and d["to_Item"]["results"][0]["RequestedQuantity"] == "1.500"
    assert d["CreationDate"].startswith("/Date(") and d["LastChangeDateTime"].endswith("+0000)/")
    single = (await client.get(CR_SRV + "/A_CustomerReturn('60000001')")).json()["d"]
    assert single["to_Item"] == {"__deferred": {"uri": d["__metadata"]["uri"] + "/to_Item"}}
    items = (await client.get(CR_SRV + "/A_CustomerReturn('60000001')/to_Item")).json()["d"]["results"]
    assert [i["CustomerReturnItem"] for i in items] == ["10"]


async def test_collection_paging_count_and_filters(client: httpx.AsyncClient) -> None:
    stock = "/sap/opu/odata/sap/API_MATERIAL_STOCK_SRV/A_MatlStkInAcctMod"
    page = (
        await client.get(
            stock,
            params={"$top": "2", "$skip": "1", "$inlinecount": "allpages", "$orderby": "Plant desc,Material"},
        )
    ).json()["d"]
    assert page["__count"] == "30"
    assert [(r["Plant"], r["Material"]) for r in page["results"]] == [
        ("RNO2", "SKU-1002"),
        ("RNO2", "SKU-1003"),
    ]
    token = await _token(client)
    await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-A"), headers={"X-CSRF-Token": token}
    )
    rows = (
        await client.get(
            CR_SRV + "/A_CustomerReturn",
            params={
                "$filter": "(PurchaseOrderByCustomer eq 'RMA-A' or SoldToParty eq 'X') and LastChangeDateTime ge datetimeoffset'2020-01-01T00:00:00Z'"
            },
        )
    ).json()["d"]["results"]
    assert [r["PurchaseOrderByCustomer"] for r in rows] == ["RMA-A"]
    bad = await client.get(CR_SRV + "/A_CustomerReturn", params={"$filter": "Nonsense eq 1"})
    assert (
        bad.status_code == 400 and bad.json()["error"]["message"]["value"] == "Property 'Nonsense' not found"
    )


async def test_expand_and_select_follow_the_metadata_at_every_segment(client: httpx.AsyncClient) -> None:
    # Unknown names at any depth are 400 (they were ignored past the first $expand segment, always in $select).
    token = await _token(client)
    await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-S"), headers={"X-CSRF-Token": token}
    )
    one = CR_SRV + "/A_CustomerReturn('60000001')"
    for params, name in (
        ({"$expand": "to_Item/to_Nothing"}, "to_Nothing"),
        ({"$expand": "to_Item/Material"}, "Material"),  # a property, not a navigation
        ({"$select": "Nonsense"}, "Nonsense"),
        ({"$select": "to_Item/Nonsense", "$expand": "to_Item"}, "Nonsense"),
        ({"$select": "SoldToParty/Material"}, "SoldToParty"),
    ):
        for url in (one, CR_SRV + "/A_CustomerReturn"):
            bad = await client.get(url, params=params)
            assert bad.status_code == 400, (url, params, bad.text)
            assert f"'{name}' not found" in bad.json()["error"]["message"]["value"], bad.text
    deep = (await client.get(one, params={"$expand": "to_Item/to_PricingElement,to_Partner"})).json()["d"]
    assert "results" in deep["to_Item"]["results"][0]["to_PricingElement"]
    # $select cuts the entity, and within an expanded navigation its entries; __metadata stays.
    cut = (
        await client.get(
            one,
            params={
                "$select": "CustomerReturn,to_Item/Material,to_Item/RequestedQuantity",
                "$expand": "to_Item",
            },
        )
    ).json()["d"]
    assert set(cut) == {"__metadata", "CustomerReturn", "to_Item"}
    assert [set(item) for item in cut["to_Item"]["results"]] == [
        {"__metadata", "Material", "RequestedQuantity"}
    ]
    rows = (
        await client.get(
            CR_SRV + "/A_CustomerReturn", params={"$select": "PurchaseOrderByCustomer,to_Partner"}
        )
    ).json()["d"]["results"]
    assert rows == [
        {
            "__metadata": rows[0]["__metadata"],
            "PurchaseOrderByCustomer": "RMA-S",
            "to_Partner": {"__deferred": {"uri": rows[0]["__metadata"]["uri"] + "/to_Partner"}},
        }
    ]
    everything = (await client.get(one, params={"$select": "*"})).json()["d"]
    assert everything == (await client.get(one)).json()["d"]


async def test_validation_errors_list_every_field(client: httpx.AsyncClient) -> None:
    token = await _token(client)
    body = _return_body(SoldToParty="99999999", SDDocumentReason="TOOLONG")
    body["to_Item"]["results"][0]["RequestedQuantity"] = 1.5
    response = await client.post(CR_SRV + "/A_CustomerReturn", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    error = response.json()["error"]
    details = {(d["code"], d["target"]) for d in error["innererror"]["errordetails"]}
    assert ("/IWBEP/CM_MGW_RT/020", "SDDocumentReason") in details
    assert ("/IWBEP/CM_MGW_RT/022", "RequestedQuantity") in details
    assert ("V1/302", "SoldToParty") in details
    assert error["innererror"]["application"]["service_id"] == "API_CUSTOMER_RETURN_SRV"


async def test_duplicate_reference_accepted_with_warning_by_default(client: httpx.AsyncClient) -> None:
    """S/4HANA's default: a repeated PurchaseOrderByCustomer is created again, with warning V4/115."""
    token = await _token(client)
    first = await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-D"), headers={"X-CSRF-Token": token}
    )
    second = await client.post(
        CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-D"), headers={"X-CSRF-Token": token}
    )
    assert first.status_code == 201 and second.status_code == 201
    assert '"V4/115"' in second.headers["sap-message"]
    assert first.json()["d"]["CustomerReturn"] != second.json()["d"]["CustomerReturn"]


async def test_duplicate_reference_refused_when_configured() -> None:
    simulator, running = await _start(SapSimulatorConfig(duplicates="refuse"))
    try:
        async with httpx.AsyncClient(base_url=running.url, auth=(USER, PASSWORD)) as strict:
            token = await _token(strict)
            await strict.post(
                CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-D"), headers={"X-CSRF-Token": token}
            )
            dup = await strict.post(
                CR_SRV + "/A_CustomerReturn", json=_return_body("RMA-D"), headers={"X-CSRF-Token": token}
            )
            assert dup.status_code == 400 and dup.json()["error"]["code"] == "V4/115"
        assert len(simulator.kit.state.documents["A_CustomerReturn"]) == 1
    finally:
        await running.stop()


async def test_goods_receipt_raises_stock_once(
    sim: tuple[SapSimulator, RunningSimulator], client: httpx.AsyncClient
) -> None:
    simulator = sim[0]
    token = await _token(client)
    await client.post(CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token})
    dlv = "/sap/opu/odata/sap/API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
    item = dlv + "/A_ReturnsDeliveryItem(DeliveryDocument='80000001',DeliveryDocumentItem='000010')"
    etag = (await client.get(item)).headers["ETag"]
    patch = await client.patch(
        item, json={"ActualDeliveryQuantity": "2.000"}, headers={"X-CSRF-Token": token, "If-Match": etag}
    )
    assert patch.status_code == 400 and patch.json()["error"]["code"] == "VL/363", "more than was returned"
    url = (
        dlv
        + "/PostGoodsReceipt?DeliveryDocument='80000001'&ActualGoodsMovementDate=datetime'2026-11-27T00:00'"
    )
    posted = await client.post(url, headers={"X-CSRF-Token": token})
    assert posted.status_code == 200 and posted.json()["d"]["OverallGoodsMovementStatus"] == "C"
    assert posted.json()["d"]["ActualGoodsMovementDate"] == "/Date(1795737600000)/"  # 2026-11-27
    assert simulator.kit.state.stock[("SKU-1002", "RNO2", "RET1")] == Decimal("1.500")
    twice = await client.post(url, headers={"X-CSRF-Token": token})
    assert twice.status_code == 400 and twice.json()["error"]["code"] == "VL/609"
    assert simulator.kit.state.stock[("SKU-1002", "RNO2", "RET1")] == Decimal("1.500")


async def test_changes_name_the_etag_they_read(
    sim: tuple[SapSimulator, RunningSimulator], client: httpx.AsyncClient
) -> None:
    # S/4HANA Cloud (KBA 3514624): a PATCH without If-Match is 428, one with a stale ETag 412; nothing changes.
    token = await _token(client)
    await client.post(CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token})
    dlv = "/sap/opu/odata/sap/API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
    item = dlv + "/A_ReturnsDeliveryItem(DeliveryDocument='80000001',DeliveryDocumentItem='000010')"
    read = await client.get(item)
    etag = read.headers["ETag"]
    assert etag.startswith('W/"') and read.json()["d"]["__metadata"]["etag"] == etag
    listed = (await client.get(dlv + "/A_ReturnsDeliveryItem")).json()["d"]["results"]
    assert [row["__metadata"]["etag"] for row in listed] == [etag]
    csrf = {"X-CSRF-Token": token}
    missing = await client.patch(item, json={"StorageLocation": "0001"}, headers=csrf)
    assert missing.status_code == 428, missing.text
    changed = await client.patch(item, json={"StorageLocation": "0001"}, headers={**csrf, "If-Match": etag})
    assert changed.status_code == 204, changed.text
    fresh = (await client.get(item)).headers["ETag"]
    assert fresh != etag
    stale = await client.patch(item, json={"StorageLocation": "RET1"}, headers={**csrf, "If-Match": etag})
    assert stale.status_code == 412, stale.text
    assert (await client.get(item)).json()["d"]["StorageLocation"] == "0001", (
        "a refused change changes nothing"
    )
    anyone = await client.patch(item, json={"StorageLocation": "RET1"}, headers={**csrf, "If-Match": "*"})
    assert anyone.status_code == 204
    # The header has its own ETag: an item's change does not make the header's stale.
    header = dlv + "/A_ReturnsDeliveryHeader('80000001')"
    header_etag = (await client.get(header)).headers["ETag"]
    await client.patch(item, json={"StorageLocation": "0001"}, headers={**csrf, "If-Match": "*"})
    ok = await client.patch(
        header, json={"DeliveryDocumentBySupplier": "RMA-1"}, headers={**csrf, "If-Match": header_etag}
    )
    assert ok.status_code == 204, ok.text


async def test_if_match_can_be_optional_by_configuration() -> None:
    _, running = await _start(SapSimulatorConfig(require_if_match=False))
    try:
        async with httpx.AsyncClient(base_url=running.url, auth=(USER, PASSWORD)) as client:
            token = await _token(client)
            await client.post(
                CR_SRV + "/A_CustomerReturn", json=_return_body(), headers={"X-CSRF-Token": token}
            )
            item = (
                "/sap/opu/odata/sap/API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
                "/A_ReturnsDeliveryItem(DeliveryDocument='80000001',DeliveryDocumentItem='000010')"
            )
            unnamed = await client.patch(
                item, json={"StorageLocation": "0001"}, headers={"X-CSRF-Token": token}
            )
            assert unnamed.status_code == 204, unnamed.text
            stale = await client.patch(
                item, json={"StorageLocation": "RET1"}, headers={"X-CSRF-Token": token, "If-Match": 'W/"old"'}
            )
            assert stale.status_code == 412
    finally:
        await running.stop()


async def test_reset_reseeds_stock(
    sim: tuple[SapSimulator, RunningSimulator], client: httpx.AsyncClient
) -> None:
    simulator = sim[0]
    simulator.kit.state.adjust_stock("SKU-1001", "DAL1", "0001", Decimal("-40"))
    assert (await client.post("/_sim/reset")).json() == {"reset": True}
    assert simulator.kit.state.stock[("SKU-1001", "DAL1", "0001")] == Decimal("100")
    assert len(simulator.kit.state.stock) == 30


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("A eq 'x'", True),
        ("A eq 'it''s'", False),
        ("A ne 'x' or B gt 5", True),
        ("not (A eq 'x') and B le 10", False),
        ("C ge datetime'2024-01-01T00:00'", True),
        ("C lt datetimeoffset'2024-01-01T00:00:00.000Z'", False),
    ],
)
def test_filter_expressions(expression: str, matches: bool) -> None:
    row = {"A": "x", "B": "7.5", "C": "/Date(1717113600000)/"}
    assert parse_filter(expression, {"A", "B", "C"})(row) is matches


@pytest.mark.parametrize("expression", ["A eq", "A zz 'x'", "(A eq 'x'", "A eq 'x' B", "D eq 'x'"])
def test_bad_filters_are_refused(expression: str) -> None:
    with pytest.raises(QueryError):
        parse_filter(expression, {"A"})
