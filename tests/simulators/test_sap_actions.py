"""SAP ERP-side actions over real HTTP: goods movements, billing cancellation, return rejection, UI actions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.sap import SapSimulator, SapSimulatorConfig, build_simulator

USER, PASSWORD = "RB_API_USER", "Welcome1!"
ROOT = "/sap/opu/odata/sap/"
MATDOC = ROOT + "API_MATERIAL_DOCUMENT_SRV/A_MaterialDocumentHeader"
BILLING = ROOT + "API_BILLING_DOCUMENT_SRV"


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SapSimulator, httpx.AsyncClient]]:
    simulator = build_simulator(SapSimulatorConfig())
    running = await RunningSimulator(simulator.app).start()
    async with httpx.AsyncClient(base_url=running.url, auth=(USER, PASSWORD)) as client:
        token = (
            await client.get(ROOT + "API_MATERIAL_DOCUMENT_SRV/", headers={"X-CSRF-Token": "Fetch"})
        ).headers["x-csrf-token"]
        client.headers["X-CSRF-Token"] = token
        yield simulator, client
    await running.stop()


def _movement(code: str, **item: Any) -> dict[str, Any]:
    base = {"Material": "SKU-1001", "Plant": "DAL1", "StorageLocation": "0001", "QuantityInEntryUnit": "5"}
    return {"GoodsMovementCode": code, "to_MaterialDocumentItem": [{**base, **item}]}


def _stock(simulator: SapSimulator, sloc: str = "0001") -> Decimal:
    return simulator.kit.state.stock[("SKU-1001", "DAL1", sloc)]


def _codes(response: httpx.Response) -> list[str]:
    return [d["code"] for d in response.json()["error"]["innererror"]["errordetails"]]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"to_MaterialDocumentItem": []}, "M7/097"),
        (_movement("", GoodsMovementType="701"), "M7/097"),
        (_movement("05", GoodsMovementType="999"), "M7/092"),
        (_movement("03", GoodsMovementType="701"), "M7/098"),
        (_movement("05", GoodsMovementType="701", QuantityInEntryUnit="-5"), "M7/018"),
        (_movement("05", GoodsMovementType="701", QuantityInEntryUnit=5), "/IWBEP/CM_MGW_RT/022"),
        (_movement("05", GoodsMovementType="701", Plant="XXXX"), "ME/064"),
        (_movement("05", GoodsMovementType="701", StorageLocation="9999"), "M7/001"),
        (_movement("05", GoodsMovementType="701", Material="NOPE"), "M3/305"),
        (_movement("05", GoodsMovementType="701", Colour="red"), "/IWBEP/CM_MGW_RT/021"),
        (_movement("03", GoodsMovementType="702", QuantityInEntryUnit="100000"), "M7/021"),
        (_movement("04", GoodsMovementType="311", IssuingOrReceivingStorageLoc="0001"), "M7/325"),
        (_movement("04", GoodsMovementType="311"), "M7/018"),
        (_movement("03", GoodsMovementType="201"), "KI/235"),
    ],
)
async def test_goods_movement_refused_like_s4(
    sim: tuple[SapSimulator, httpx.AsyncClient], body: dict[str, Any], code: str
) -> None:
    simulator, client = sim
    before = list(simulator.kit.state.changes)
    response = await client.post(MATDOC, json=body)
    assert response.status_code == 400, response.text
    assert code in _codes(response)
    assert simulator.kit.state.changes == before  # nothing moved


async def test_inventory_differences_and_transfer_move_stock_feed_and_ledger(
    sim: tuple[SapSimulator, httpx.AsyncClient],
) -> None:
    simulator, client = sim
    start = _stock(simulator)
    seq = len(simulator.kit.state.changes)
    gain = await client.post(MATDOC, json=_movement("05", GoodsMovementType="701", QuantityInEntryUnit="3"))
    assert gain.status_code == 201, gain.text
    doc = gain.json()["d"]
    assert doc["MaterialDocument"].startswith("49") and len(doc["to_MaterialDocumentItem"]["results"]) == 1
    loss = await client.post(MATDOC, json=_movement("03", GoodsMovementType="702", QuantityInEntryUnit="1"))
    assert loss.status_code == 201, loss.text
    assert _stock(simulator) == start + 2
    move = await client.post(
        MATDOC,
        json=_movement(
            "04", GoodsMovementType="311", QuantityInEntryUnit="4", IssuingOrReceivingStorageLoc="RET1"
        ),
    )
    assert move.status_code == 201, move.text
    assert _stock(simulator) == start - 2
    assert _stock(simulator, "RET1") == 4
    kinds = [key for _, kind, key in simulator.kit.state.changes[seq:] if kind == "stock"]
    assert kinds.count("SKU-1001|DAL1|0001") == 3 and "SKU-1001|DAL1|RET1" in kinds
    ledger = (await client.get("/_sim/ledger")).json()
    assert ledger["balanced"]
    # 701 and 702 post to FI at the material price, the 311 transfer does not.
    assert {e["document_type"] for e in ledger["entries"]} == {"A_MaterialDocumentHeader"}
    assert sum(Decimal(e["debit"]) for e in ledger["entries"]) == Decimal("19.99") * 4
    read = await client.get(
        MATDOC
        + f"(MaterialDocumentYear='{doc['MaterialDocumentYear']}',MaterialDocument='{doc['MaterialDocument']}')"
    )
    assert read.status_code == 200 and read.json()["d"]["GoodsMovementCode"] == "05"


async def _credit_memo_request(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "10100002",
        "PurchaseOrderByCustomer": "RMA-9",
        "TransactionCurrency": "USD",
        "to_Item": [{"Material": "SKU-1002", "RequestedQuantity": "2"}],
    }
    response = await client.post(ROOT + "API_CREDIT_MEMO_REQUEST_SRV/A_CreditMemoRequest", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["d"])


async def test_billing_cancellation_reopens_the_credit_and_reverses_fi(
    sim: tuple[SapSimulator, httpx.AsyncClient],
) -> None:
    simulator, client = sim
    cmr = await _credit_memo_request(client)
    assert cmr["OverallOrdReltdBillgStatus"] == "C"
    listed = await client.get(
        BILLING + "/A_BillingDocument",
        params={"$filter": f"ReferenceSDDocument eq '{cmr['CreditMemoRequest']}'"},
    )
    (billing,) = listed.json()["d"]["results"]
    assert billing["BillingDocumentType"] == "G2" and billing["TotalNetAmount"] == "99.00"
    refused = await client.post(BILLING + "/Cancel", params={"BillingDocument": "90000001"})
    assert refused.status_code == 400  # unquoted literal
    missing = await client.post(BILLING + "/Cancel", params={"BillingDocument": "'99999999'"})
    assert missing.status_code == 404
    cancel = await client.post(
        BILLING + "/Cancel", params={"BillingDocument": f"'{billing['BillingDocument']}'"}
    )
    assert cancel.status_code == 200, cancel.text
    assert cancel.json()["d"]["Cancel"]["CancellationBillingDocument"]
    again = await client.post(
        BILLING + "/Cancel", params={"BillingDocument": f"'{billing['BillingDocument']}'"}
    )
    assert again.status_code == 400 and _codes(again) == ["VF/021"]
    after = simulator.kit.state.documents["A_CreditMemoRequest"][cmr["CreditMemoRequest"]]
    assert (after["OverallSDProcessStatus"], after["OverallOrdReltdBillgStatus"]) == ("B", "A")
    ledger = (await client.get("/_sim/ledger")).json()
    assert ledger["balanced"]
    assert sum(Decimal(e["debit"]) for e in ledger["entries"] if e["account"] == "121000") == Decimal("99.00")


async def test_return_item_rejection_completes_the_return(
    sim: tuple[SapSimulator, httpx.AsyncClient],
) -> None:
    simulator, client = sim
    body = {
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "10100002",
        "PurchaseOrderByCustomer": "RMA-7",
        "to_Item": [{"Material": "SKU-1002", "RequestedQuantity": "1", "ProductionPlant": "RNO2"}],
    }
    created = await client.post(ROOT + "API_CUSTOMER_RETURN_SRV/A_CustomerReturn", json=body)
    number = created.json()["d"]["CustomerReturn"]
    item = (
        ROOT
        + f"API_CUSTOMER_RETURN_SRV/A_CustomerReturnItem(CustomerReturn='{number}',CustomerReturnItem='10')"
    )
    read = {"If-Match": (await client.get(item)).headers["ETag"]}  # S/4HANA: no change without it (428)
    bad = await client.patch(item, json={"SalesDocumentRjcnReason": "ZZ"}, headers=read)
    assert bad.status_code == 400 and _codes(bad) == ["V1/458"]
    other = await client.patch(item, json={"RequestedQuantity": "5"}, headers=read)
    assert other.status_code == 400 and _codes(other) == ["V1/112"]
    ok = await client.patch(item, json={"SalesDocumentRjcnReason": "02"}, headers=read)
    assert ok.status_code == 204, ok.text
    doc = simulator.kit.state.documents["A_CustomerReturn"][number]
    assert (doc["OverallSDProcessStatus"], doc["OverallSDDocumentRejectionSts"]) == ("C", "C")


async def test_ui_actions_are_strict_and_go_through_the_same_logic(
    sim: tuple[SapSimulator, httpx.AsyncClient],
) -> None:
    simulator, client = sim
    for body, status in [
        ({"sku": "SKU-1001", "site": "DAL1"}, 400),  # delta missing
        ({"sku": "SKU-1001", "site": "DAL1", "delta": "0"}, 400),
        ({"sku": "SKU-1001", "site": "DAL1", "delta": 3}, 400),  # a number, not a decimal string
        ({"sku": "SKU-1001", "site": "DAL1", "delta": "3", "colour": "red"}, 400),
        ({"sku": "SKU-1001", "site": "NOPE", "delta": "3"}, 400),
        ({"sku": "SKU-1001", "site": "DAL1", "delta": "-100000"}, 400),
    ]:
        response = await client.post("/_sim/actions/stock/adjust", json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"]
    start = _stock(simulator)
    ok = await client.post(
        "/_sim/actions/stock/adjust", json={"sku": "SKU-1001", "site": "DAL1", "delta": "-2"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["document_type"] == "A_MaterialDocumentHeader"
    assert _stock(simulator) == start - 2
    moved = await client.post(
        "/_sim/actions/stock/transfer",
        json={"sku": "SKU-1001", "site": "DAL1", "quantity": "1", "to_sub_location": "RET1"},
    )
    assert moved.status_code == 200, moved.text
    assert _stock(simulator, "RET1") == 1
    cmr = await _credit_memo_request(client)
    void = await client.post("/_sim/actions/credit/void", json={"document_id": cmr["CreditMemoRequest"]})
    assert void.status_code == 200, void.text
    twice = await client.post("/_sim/actions/credit/void", json={"document_id": cmr["CreditMemoRequest"]})
    assert twice.status_code == 404
    status = await client.post(
        "/_sim/actions/document/status",
        json={"document_type": "A_CustomerReturn", "document_id": "1", "status": "Q"},
    )
    assert status.status_code == 400


def test_rfc_goods_movement_checks_at_once_and_posts_at_commit() -> None:
    from returnbridge.simulators.sap_rfc import Connection, ExternalRuntimeError

    simulator = build_simulator(SapSimulatorConfig())
    conn = Connection(backend=simulator.backend, user=USER, passwd=PASSWORD, client="100")
    item = {"MATERIAL": "SKU-1001", "PLANT": "DAL1", "STGE_LOC": "0001", "MOVE_TYPE": "702", "ENTRY_QNT": "4"}
    refused = conn.call(
        "BAPI_GOODSMVT_CREATE",
        GOODSMVT_CODE={"GM_CODE": "03"},
        GOODSMVT_ITEM=[{**item, "ENTRY_QNT": "999999"}],
    )
    assert refused["MATERIALDOCUMENT"] == "" and refused["RETURN"][0]["TYPE"] == "E"
    assert (refused["RETURN"][0]["ID"], refused["RETURN"][0]["NUMBER"]) == ("M7", "021")
    with pytest.raises(ExternalRuntimeError):
        conn.call(
            "BAPI_GOODSMVT_CREATE", GOODSMVT_CODE={"GM_CODE": "03"}, GOODSMVT_ITEM=[{**item, "COLOUR": "red"}]
        )
    start = _stock(simulator)
    done = conn.call("BAPI_GOODSMVT_CREATE", GOODSMVT_CODE={"GM_CODE": "03"}, GOODSMVT_ITEM=[item])
    assert done["MATERIALDOCUMENT"].startswith("49") and done["RETURN"] == []
    assert _stock(simulator) == start  # nothing posted before COMMIT
    conn.call("BAPI_TRANSACTION_COMMIT", WAIT="X")
    assert _stock(simulator) == start - 4
    (doc,) = simulator.kit.state.documents["A_MaterialDocumentHeader"].values()
    assert doc["MaterialDocument"] == done["MATERIALDOCUMENT"]
    rolled = conn.call("BAPI_GOODSMVT_CREATE", GOODSMVT_CODE={"GM_CODE": "03"}, GOODSMVT_ITEM=[item])
    assert rolled["MATERIALDOCUMENT"]
    conn.call("BAPI_TRANSACTION_ROLLBACK")
    assert _stock(simulator) == start - 4
    assert simulator.kit.state.trial_balance()["balanced"]
