"""What the simulators refuse that the lenient ones accepted: each case from issue 11, with the ERP's error shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from returnbridge import exactjson
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.netsuite import NetSuiteSimulatorConfig
from returnbridge.simulators.oracle import API_ROOT, OracleSimConfig, OracleSimulator
from returnbridge.simulators.sap import SapSimulatorConfig
from simulators.test_netsuite_records import RECORD, Sim, error_of, ra_body, start
from simulators.test_oracle import AUTH, body, order
from simulators.test_sap_simulator import CR_SRV, PASSWORD, USER, _return_body, _start, _token

# -- NetSuite ---------------------------------------------------------------------------------------------


@pytest.fixture
async def ns() -> AsyncIterator[Sim]:
    s, running = await start()
    yield s
    await s.http.aclose()
    await running.stop()


@pytest.mark.parametrize(
    ("field", "value"), [("createdDate", "2026-01-01T00:00:00Z"), ("total", 1), ("id", "9")]
)
async def test_netsuite_patch_refuses_read_only_fields(ns: Sim, field: str, value: Any) -> None:
    ra_id = await ns.create(f"{RECORD}/returnAuthorization", ra_body())
    refused = await ns.send("PATCH", f"{RECORD}/returnAuthorization/{ra_id}", {field: value})
    assert refused.status_code == 400 and error_of(refused)["o:errorPath"] == field
    assert field not in ("total",) or "total" not in ns.record("returnAuthorization", ra_id)


async def test_netsuite_patch_cannot_take_another_records_external_id(ns: Sim) -> None:
    await ns.create(f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-A-1"))
    other = await ns.create(f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-B-1"))
    refused = await ns.send("PATCH", f"{RECORD}/returnAuthorization/{other}", {"externalId": "RMA-A-1"})
    assert refused.status_code == 400 and error_of(refused)["o:errorCode"] == "DUP_RCRD"
    rows = await ns.http.post(
        "/services/rest/query/v1/suiteql",
        json={"q": "SELECT id FROM transaction WHERE externalid = 'RMA-A-1'"},
        headers={"Prefer": "transient"},
    )
    assert rows.json()["count"] == 1


async def test_netsuite_accept_policy_stores_a_second_record() -> None:
    s, running = await start(NetSuiteSimulatorConfig(duplicates="accept"))
    try:
        first = await s.create(f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-D-1"))
        second = await s.create(f"{RECORD}/returnAuthorization", ra_body(externalId="RMA-D-1"))
        assert first != second
    finally:
        await s.http.aclose()
        await running.stop()


@pytest.mark.parametrize(
    ("extra", "path", "code"),
    [
        ({"tranDate": "2026-13-45"}, "tranDate", "USER_ERROR"),
        ({"tranDate": "27/11/2026"}, "tranDate", "USER_ERROR"),
        ({"department": {"id": "99"}}, "department", "INVALID_KEY_OR_REF"),
        ({"class": {"id": "99"}}, "class", "INVALID_KEY_OR_REF"),
        ({"shoeSize": 42}, "shoeSize", "INVALID_FIELD"),
    ],
)
async def test_netsuite_refuses_bad_values_and_unknown_fields(
    ns: Sim, extra: dict[str, Any], path: str, code: str
) -> None:
    refused = await ns.send("POST", f"{RECORD}/returnAuthorization", ra_body(**extra))
    assert refused.status_code == 400
    detail = error_of(refused)
    assert (detail["o:errorCode"], detail["o:errorPath"]) == (code, path)
    assert ns.simulator.documents("returnAuthorization") == {}


encode_json = exactjson.dumps_bytes


async def _post_with(ns: Sim, payload: dict[str, Any], validation: str) -> httpx.Response:
    return await ns.http.post(
        f"{RECORD}/returnAuthorization",
        content=encode_json(payload),
        headers={"Content-Type": "application/json", "X-NetSuite-PropertyNameValidation": validation},
    )


async def test_netsuite_unknown_line_field_and_property_name_validation_header(ns: Sim) -> None:
    payload = ra_body()
    payload["item"]["items"][0]["colour"] = "red"
    refused = await ns.send("POST", f"{RECORD}/returnAuthorization", payload)
    assert refused.status_code == 400 and error_of(refused)["o:errorPath"] == "item.items[0].colour"
    explicit = await _post_with(ns, payload, "Error")
    assert explicit.status_code == 400
    ignored = await _post_with(ns, payload, "Warning")
    assert ignored.status_code == 204
    bad = await _post_with(ns, payload, "Maybe")
    assert bad.status_code == 400 and error_of(bad)["o:errorCode"] == "INVALID_HEADER"


async def test_netsuite_refuses_a_text_body(ns: Sim) -> None:
    refused = await ns.http.post(
        f"{RECORD}/returnAuthorization",
        content=b'{"entity": {"id": "101"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert refused.status_code == 415 and error_of(refused)["o:errorCode"] == "INVALID_CONTENT_TYPE"


async def test_netsuite_sublist_link_and_unknown_paths_answer_json(ns: Sim) -> None:
    ra_id = await ns.create(f"{RECORD}/returnAuthorization", ra_body())
    record = (await ns.send("GET", f"{RECORD}/returnAuthorization/{ra_id}")).json()
    sublist = await ns.http.get(record["item"]["links"][0]["href"])
    assert sublist.status_code == 200 and sublist.json()["count"] == 2
    line = await ns.http.get(sublist.json()["items"][1]["links"][0]["href"])
    assert line.status_code == 200 and line.json()["item"]["id"] == "503"
    missing_line = await ns.send("GET", f"{RECORD}/returnAuthorization/{ra_id}/item/9")
    assert missing_line.status_code == 404 and error_of(missing_line)["o:errorCode"] == "NONEXISTENT_ID"
    unknown = await ns.send("GET", f"{RECORD}/returnAuthorization/{ra_id}/nothing/here")
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("application/json")
    assert error_of(unknown)["o:errorCode"] == "INVALID_REQUEST"
    wrong_method = await ns.send("DELETE", "/services/rest/query/v1/suiteql")
    assert wrong_method.status_code == 405 and error_of(wrong_method)["o:errorCode"] == "INVALID_REQUEST"


# -- SAP --------------------------------------------------------------------------------------------------


@pytest.fixture
async def sap() -> AsyncIterator[httpx.AsyncClient]:
    _, running = await _start(SapSimulatorConfig())
    async with httpx.AsyncClient(base_url=running.url, auth=(USER, PASSWORD)) as c:
        yield c
    await running.stop()


async def _sap_post(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    token = await _token(client)
    return await client.post(CR_SRV + "/A_CustomerReturn", json=payload, headers={"X-CSRF-Token": token})


def _targets(response: httpx.Response) -> set[tuple[str, str]]:
    return {(d["code"], d["target"]) for d in response.json()["error"]["innererror"]["errordetails"]}


async def test_sap_non_numeric_item_number_is_a_400_and_skips_no_number(sap: httpx.AsyncClient) -> None:
    client = sap
    payload = _return_body("RMA-N-1")
    payload["to_Item"]["results"][0]["CustomerReturnItem"] = "A1"
    refused = await _sap_post(client, payload)
    assert refused.status_code == 400
    assert ("/IWBEP/CM_MGW_RT/022", "to_Item[0]/CustomerReturnItem") in _targets(refused)
    created = await _sap_post(client, _return_body("RMA-N-2"))
    assert created.status_code == 201 and created.json()["d"]["CustomerReturn"] == "60000001"


@pytest.mark.parametrize(
    ("header", "item", "expected"),
    [
        ({"TransactionCurrency": "XXX"}, {}, ("SG/105", "TransactionCurrency")),
        ({"SDDocumentReason": "ZZZ"}, {}, ("V1/457", "SDDocumentReason")),
        ({}, {"RequestedQuantityUnit": "FUR"}, ("SG/411", "to_Item[0]/RequestedQuantityUnit")),
        ({}, {"ReturnReason": "999"}, ("V1/458", "to_Item[0]/ReturnReason")),
        ({}, {"ProductionPlant": "ZZ99"}, ("ME/064", "to_Item[0]/ProductionPlant")),
        ({}, {"ProfitCenter": "NOPE"}, ("KM/021", "to_Item[0]/ProfitCenter")),
    ],
)
async def test_sap_master_data_must_exist(
    sap: httpx.AsyncClient, header: dict[str, str], item: dict[str, str], expected: tuple[str, str]
) -> None:
    client = sap
    payload = _return_body("RMA-M-1", **header)
    payload["to_Item"]["results"][0].update(item)
    refused = await _sap_post(client, payload)
    assert refused.status_code == 400 and expected in _targets(refused)


async def test_sap_refuses_text_bodies_and_bad_query_options(sap: httpx.AsyncClient) -> None:
    client = sap
    token = await _token(client)
    text = await client.post(
        CR_SRV + "/A_CustomerReturn",
        content=b"{}",
        headers={"X-CSRF-Token": token, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415 and text.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/004"
    for params, status in (
        ({"$top": "-1"}, 400),
        ({"$skip": "1.5"}, 400),
        ({"$format": "xml"}, 406),
        ({"$format": "yaml"}, 400),
        ({"$format": "json"}, 200),
    ):
        response = await client.get(CR_SRV + "/A_CustomerReturn", params=params)
        assert response.status_code == status, (params, response.text)
        if status != 200:
            assert response.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/023"


# -- Oracle -----------------------------------------------------------------------------------------------


@pytest.fixture
async def fusion() -> AsyncIterator[tuple[httpx.AsyncClient, OracleSimulator]]:
    sim = OracleSimulator(OracleSimConfig())
    running = await RunningSimulator(sim.app).start()
    async with httpx.AsyncClient(base_url=running.url + API_ROOT + "/", auth=AUTH, timeout=5) as client:
        yield client, sim
    await running.stop()


async def _fusion_post(
    client: httpx.AsyncClient, payload: dict[str, Any], version: str = "4"
) -> httpx.Response:
    return await client.post(
        "salesOrdersForOrderHub",
        content=body(payload),
        headers={"Content-Type": "application/json", "REST-Framework-Version": version},
    )


def _codes(response: httpx.Response) -> list[str]:
    return [d["o:errorCode"] for d in response.json()["o:errorDetails"]]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda o: o.update(Colour="red"), "ADF_UNKNOWN_ATTRIBUTE"),
        (lambda o: o.update(HeaderId=1), "ADF_READ_ONLY_ATTRIBUTE"),
        (lambda o: o["lines"][0].update(Colour="red"), "ADF_UNKNOWN_ATTRIBUTE"),
        (lambda o: o["lines"][0].update(LineId=5), "ADF_READ_ONLY_ATTRIBUTE"),
        (lambda o: o["lines"][0]["documentReferences"][0].update(Nope="x"), "ADF_UNKNOWN_ATTRIBUTE"),
        (lambda o: o.update(TransactionOn="2026-13-45T00:00:00"), "ADF_INVALID_DATE"),
    ],
)
async def test_oracle_refuses_unknown_read_only_attributes_and_bad_dates(
    fusion: tuple[httpx.AsyncClient, OracleSimulator], mutate: Any, code: str
) -> None:
    client, sim = fusion
    payload = order("RMA-S-1")
    mutate(payload)
    refused = await _fusion_post(client, payload)
    assert refused.status_code == 400 and code in _codes(refused)
    assert sim.state.documents["salesOrdersForOrderHub"] == {}


@pytest.mark.parametrize("version", ["0", "5", "abc", "4.0"])
async def test_oracle_refuses_framework_versions_it_does_not_have(
    fusion: tuple[httpx.AsyncClient, OracleSimulator], version: str
) -> None:
    client, _ = fusion
    refused = await client.get("salesOrdersForOrderHub", headers={"REST-Framework-Version": version})
    assert refused.status_code == 400
    assert refused.headers["REST-Framework-Version"] == "1", "the version used, never the one asked for"


async def test_oracle_query_attributes_and_errors_follow_the_version(
    fusion: tuple[httpx.AsyncClient, OracleSimulator],
) -> None:
    client, _ = fusion
    v4 = {"REST-Framework-Version": "4"}
    for params in ({"q": "Colour = 'red'"}, {"orderBy": "Colour:asc"}, {"orderBy": "OrderNumber:sideways"}):
        refused = await client.get("salesOrdersForOrderHub", params=params, headers=v4)
        assert refused.status_code == 400 and refused.headers["Content-Type"].startswith(
            "application/vnd.oracle.adf.error+json"
        )
    as_text = await client.get("salesOrdersForOrderHub", params={"q": "Colour=red"})
    assert as_text.status_code == 400 and as_text.headers["Content-Type"].startswith("text/plain"), "v1: text"
    unknown = await client.get("returnsOfTheKing", headers=v4)
    assert unknown.status_code == 404 and _codes(unknown) == ["NOT_FOUND"]
    wrong_method = await client.delete("salesOrdersForOrderHub", headers=v4)
    assert wrong_method.status_code == 405 and _codes(wrong_method) == ["METHOD_NOT_ALLOWED"]
    unknown_v1 = await client.get("returnsOfTheKing")
    assert unknown_v1.status_code == 404 and unknown_v1.headers["Content-Type"].startswith("text/plain")


async def test_oracle_duplicate_policy() -> None:
    for policy, statuses in (("refuse", [201, 400]), ("accept", [201, 201])):
        sim = OracleSimulator(OracleSimConfig(duplicates=policy))  # type: ignore[arg-type]
        running = await RunningSimulator(sim.app).start()
        try:
            async with httpx.AsyncClient(base_url=running.url + API_ROOT + "/", auth=AUTH) as client:
                got = [(await _fusion_post(client, order("RMA-DUP-1"))).status_code for _ in range(2)]
            assert got == statuses, policy
        finally:
            await running.stop()
