"""Bad input never gets a 500: every leaf of a valid create body, replaced by each bad value, is refused with a 4xx.

A 5xx means "the ERP broke" to every connector (transient, retried for hours); a simulator that answers
bad input with one hides the connector's real problem behind retries.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.harnesses.oracle import credit_memo_payload, return_order_payload
from returnbridge import exactjson
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import API_ROOT, OracleSimulator
from returnbridge.simulators.sap import _SERVICES, SapSimulatorConfig
from simulators.test_netsuite_records import RECORD, Sim, ra_body, start
from simulators.test_oracle import AUTH, order, post, receipt
from simulators.test_sap_simulator import CR_SRV, PASSWORD, USER, _return_body, _start, _token


@asynccontextmanager
async def _sap_client(*, logged_on: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """The SAP simulator on loopback and a client for it (with Basic auth unless ``logged_on`` is False)."""
    _, running = await _start(SapSimulatorConfig())
    try:
        auth = (USER, PASSWORD) if logged_on else None
        async with httpx.AsyncClient(base_url=running.url, auth=auth) as client:
            yield client
    finally:
        await running.stop()


@asynccontextmanager
async def _oracle_client() -> AsyncIterator[httpx.AsyncClient]:
    """The Oracle Fusion simulator on loopback and a client for its REST root (REST-Framework-Version 4)."""
    running = await RunningSimulator(OracleSimulator().app).start()
    try:
        async with httpx.AsyncClient(
            base_url=running.url + API_ROOT + "/", auth=AUTH, headers={"REST-Framework-Version": "4"}
        ) as client:
            yield client
    finally:
        await running.stop()


BAD_VALUES: list[Any] = [
    None,
    "",
    "A1",
    -1,
    0,
    Decimal("1.5"),
    Decimal("-0.001"),
    "1e400",
    "NaN",
    [],
    {},
    {"id": None},
    "2026-13-45",
    "x" * 400,
    True,
]


def leaf_paths(body: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(body, dict) and body:
        for key, value in body.items():
            yield from leaf_paths(value, (*path, key))
    elif isinstance(body, list) and body:
        for index, value in enumerate(body):
            yield from leaf_paths(value, (*path, index))
    else:
        yield path


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(body)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def variants(body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for path in leaf_paths(body):
        for value in BAD_VALUES:
            yield "/".join(map(str, path)) + f"={value!r}"[:40], replaced(body, path, value)


def encode(body: Any) -> bytes:
    return exactjson.dumps_bytes(body)


def assert_no_5xx(results: list[tuple[str, int, str]]) -> None:
    broken = [(where, status, text[:200]) for where, status, text in results if status >= 500]
    assert not broken, f"{len(broken)} bad inputs got a 5xx: {broken[:5]}"


@pytest.fixture
async def netsuite() -> AsyncIterator[Sim]:
    sim, running = await start()
    yield sim
    await sim.http.aclose()
    await running.stop()


async def test_netsuite_never_answers_bad_input_with_a_5xx(netsuite: Sim) -> None:
    body = ra_body(externalId="RMA-F-1", tranDate="2026-11-27", memo="m", department={"id": "1"})
    results = []
    for where, mutated in variants(body):
        response = await netsuite.http.post(
            f"{RECORD}/returnAuthorization",
            content=encode(mutated),
            headers={"Content-Type": "application/json"},
        )
        results.append((where, response.status_code, response.text))
    assert_no_5xx(results)
    assert any(status == 400 for _, status, _ in results)


async def test_sap_never_answers_bad_input_with_a_5xx() -> None:
    async with _sap_client() as client:
        token = await _token(client)
        body = _return_body("RMA-F-2", TransactionCurrency="USD", SDDocumentReason="R01")
        body["to_Item"]["results"][0].update(
            CustomerReturnItem="10", ReturnReason="101", ProfitCenter="YB101"
        )
        results = []
        for where, mutated in variants(body):
            response = await client.post(
                CR_SRV + "/A_CustomerReturn",
                content=encode(mutated),
                headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
            )
            results.append((where, response.status_code, response.text))
    assert_no_5xx(results)


@pytest.mark.parametrize(
    ("resource", "make"),
    [
        ("salesOrdersForOrderHub", lambda: return_order_payload()),
        ("receivablesCreditMemos", lambda: credit_memo_payload()),
        ("receivingReceiptRequests", lambda: receipt("700001", qty=Decimal(1))),
    ],
)
async def test_oracle_never_answers_bad_input_with_a_5xx(resource: str, make: Any) -> None:
    async with _oracle_client() as client:
        results = []
        for where, mutated in variants(make()):
            response = await client.post(
                resource, content=encode(mutated), headers={"Content-Type": "application/json"}
            )
            results.append((where, response.status_code, response.text))
    assert_no_5xx(results)


async def test_netsuite_transforms_never_answer_bad_input_with_a_5xx(netsuite: Sim) -> None:
    ra_id = await netsuite.create(f"{RECORD}/returnAuthorization", ra_body())
    bodies = {
        "creditMemo": {
            "tranDate": "2026-11-27",
            "discountItem": {"id": "701"},
            "discountRate": Decimal("-5.00"),
            "item": {"items": [{"item": {"id": "501"}, "quantity": 1, "rate": Decimal("19.99")}]},
        },
        "itemReceipt": {
            "item": {
                "items": [
                    {
                        "orderLine": 1,
                        "item": {"id": "501"},
                        "itemReceive": True,
                        "quantity": 1,
                        "location": {"id": "1"},
                    }
                ]
            }
        },
    }
    results = []
    for target, body in bodies.items():
        for where, mutated in variants(body):
            response = await netsuite.http.post(
                f"{RECORD}/returnAuthorization/{ra_id}/!transform/{target}",
                content=encode(mutated),
                headers={"Content-Type": "application/json"},
            )
            results.append((f"{target}:{where}", response.status_code, response.text))
    assert_no_5xx(results)


# Bodies no JSON parser of the real ERPs takes (Jackson, ABAP's sXML): Python's json lets NaN/Infinity
# through, and crashes on deep nesting and on integers of thousands of digits.
MALFORMED_BODIES = [
    pytest.param(b'{"memo": NaN}', id="nan-literal"),
    pytest.param(b'{"memo": -Infinity}', id="infinity-literal"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-100000"),
    pytest.param(b'{"memo":' * 200 + b"1" + b"}" * 200, id="nested-200"),
    pytest.param(b'{"memo": ' + b"9" * 5000 + b"}", id="5000-digit-integer"),
    pytest.param(b'{"memo": "\xff\xfe"}', id="not-utf8"),
]


@pytest.mark.parametrize("raw", MALFORMED_BODIES)
async def test_netsuite_refuses_malformed_json_with_a_400(netsuite: Sim, raw: bytes) -> None:
    response = await netsuite.http.post(
        f"{RECORD}/returnAuthorization", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"
    assert "Error" not in response.json()["o:errorDetails"][0]["detail"]


@pytest.mark.parametrize("raw", MALFORMED_BODIES)
async def test_sap_refuses_malformed_json_with_a_400(raw: bytes) -> None:
    async with _sap_client() as client:
        token = await _token(client)
        response = await client.post(
            CR_SRV + "/A_CustomerReturn",
            content=raw,
            headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/002"


@pytest.mark.parametrize("raw", MALFORMED_BODIES)
async def test_oracle_refuses_malformed_json_with_a_400(raw: bytes) -> None:
    async with _oracle_client() as client:
        response = await client.post(
            "salesOrdersForOrderHub", content=raw, headers={"Content-Type": "application/json"}
        )
        action = await client.post(
            client.base_url.join("/_sim/actions/stock/adjust"),
            content=raw,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_JSON"
    assert action.status_code == 400, action.text
    assert action.json()["error"]["code"] == "INVALID_JSON"


# str.isdigit() passes these, int() then refuses them ("²", 5000 digits) or reads Arabic-Indic digits as numbers.
BAD_INTEGERS = [
    pytest.param("²", id="superscript"),
    pytest.param("\u0661", id="arabic-indic"),
    pytest.param("9" * 5000, id="5000-digits"),
    pytest.param("9" * 20, id="beyond-int32"),
]


@pytest.mark.parametrize("raw", BAD_INTEGERS)
async def test_netsuite_refuses_non_ascii_or_huge_integers_in_the_url(netsuite: Sim, raw: str) -> None:
    ra_id = await netsuite.create(f"{RECORD}/returnAuthorization", ra_body())
    for name in ("limit", "offset"):
        response = await netsuite.http.post(
            "/services/rest/query/v1/suiteql",
            params={name: raw},
            content=b'{"q": "SELECT id FROM transaction"}',
            headers={"Content-Type": "application/json", "Prefer": "transient"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
    line = await netsuite.http.get(f"{RECORD}/returnAuthorization/{ra_id}/item/{raw}")
    assert line.status_code == 404, line.text
    assert line.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


@pytest.mark.parametrize("raw", BAD_INTEGERS)
async def test_sap_refuses_non_ascii_or_huge_top_and_skip(raw: str) -> None:
    async with _sap_client() as client:
        for option in ("$top", "$skip"):
            response = await client.get(CR_SRV + "/A_CustomerReturn", params={option: raw})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/023"


@pytest.mark.parametrize("raw", BAD_INTEGERS)
async def test_oracle_refuses_non_ascii_or_huge_limit_offset_and_version(raw: str) -> None:
    async with _oracle_client() as client:
        for name in ("limit", "offset"):
            response = await client.get("salesOrdersForOrderHub", params={name: raw})
            assert response.status_code == 400, response.text
            assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
        version = await client.get("salesOrdersForOrderHub", headers={"REST-Framework-Version": raw.encode()})
        assert version.status_code == 400, version.text
        assert "framework version" in version.text  # plain text: the version falls back to 1


async def test_non_ascii_credentials_are_refused_like_wrong_ones(netsuite: Sim) -> None:
    """A Basic header, CSRF token or signed form body that is not ASCII/UTF-8 is a failed logon, not a 500."""
    _, sap = await _start(SapSimulatorConfig())
    oracle = await RunningSimulator(OracleSimulator().app).start()
    try:
        async with httpx.AsyncClient(base_url=sap.url) as raw:
            logon = await raw.get(CR_SRV + "/A_CustomerReturn", headers={"Authorization": b"Basic \xff\xff"})
            assert logon.status_code == 401, logon.text
        async with httpx.AsyncClient(base_url=sap.url, auth=(USER, PASSWORD)) as client:
            await _token(client)
            csrf = await client.post(
                CR_SRV + "/A_CustomerReturn",
                content=b"{}",
                headers={"X-CSRF-Token": b"\xff", "Content-Type": "application/json"},
            )
            assert csrf.status_code == 403 and csrf.headers["x-csrf-token"] == "Required", csrf.text
        async with httpx.AsyncClient(base_url=oracle.url + API_ROOT + "/") as raw:
            fusion = await raw.get("salesOrdersForOrderHub", headers={"Authorization": b"Basic \xff\xff"})
            assert fusion.status_code == 401, fusion.text
        signed_form = await netsuite.http.post(
            f"{RECORD}/returnAuthorization",
            content=b"a=\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert signed_form.status_code == 401, signed_form.text
        assert signed_form.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    finally:
        await sap.stop()
        await oracle.stop()


# NetSuite keeps currency and quantity fields as doubles: a value of 1e15 or more (or a product of two
# in-range values that reaches it) is an invalid field value, not a decimal overflow inside the server.
OVER_RANGE = [
    pytest.param(
        "inventoryAdjustment",
        b'{"subsidiary": {"id": "1"}, "account": {"id": "510"}, "inventory": {"items": '
        b'[{"item": {"id": "501"}, "location": {"id": "1"}, "adjustQtyBy": 1e999}]}}',
        "inventory.items[0].adjustQtyBy",
        id="adjustQtyBy-1e999",
    ),
    pytest.param(
        "inventoryAdjustment",
        b'{"subsidiary": {"id": "1"}, "account": {"id": "510"}, "inventory": {"items": '
        b'[{"item": {"id": "501"}, "location": {"id": "1"}, "adjustQtyBy": 900000000000000, '
        b'"unitCost": 900000000000000}]}}',
        "inventory.items[0].unitCost",
        id="adjustment-value-over-range",
    ),
    pytest.param(
        "salesOrder/9001/!transform/returnAuthorization",
        b'{"item": {"items": [{"item": {"id": "501"}, "quantity": 1, "rate": 1E+30}]}}',
        "item.items[0].rate",
        id="transform-rate-1e30",
    ),
    pytest.param(
        "returnAuthorization",
        b'{"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "501"}, "quantity": 900000000000000, '
        b'"rate": 900000000000000, "location": {"id": "1"}}]}}',
        "item.items[0].amount",
        id="amount-over-range",
    ),
    pytest.param(
        "returnAuthorization",
        b'{"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "501"}, "quantity": 1, '
        b'"rate": 1, "amount": 1e400, "location": {"id": "1"}}]}}',
        "item.items[0].amount",
        id="amount-1e400",
    ),
    pytest.param(
        "RA/!transform/itemReceipt",
        b'{"item": {"items": [{"orderLine": 1, "item": "1e400", "itemReceive": true, "quantity": 1}]}}',
        "item.items[0].item",
        id="receipt-item-not-a-reference",
    ),
    pytest.param(
        "RA/!transform/itemReceipt",
        b'{"item": {"items": [{"orderLine": 1, "itemReceive": true, "quantity": 1e400}]}}',
        "item.items[0].quantity",
        id="receipt-quantity-1e400",
    ),
    pytest.param(
        "RA/!transform/creditMemo",
        b'{"item": {"items": [{"orderLine": 1, "rate": 1e30}]}}',
        "item.items[0].rate",
        id="credit-rate-1e30",
    ),
    pytest.param(
        "RA/!transform/creditMemo",
        b'{"discountItem": {"id": "701"}, "discountRate": "-900000000000000%"}',
        "discountRate",
        id="discount-percent-over-range",
    ),
]


@pytest.mark.parametrize(("target", "raw", "field"), OVER_RANGE)
async def test_netsuite_refuses_over_range_numbers_naming_the_field(
    netsuite: Sim, target: str, raw: bytes, field: str
) -> None:
    if target.startswith("RA/"):
        ra_id = await netsuite.create(f"{RECORD}/returnAuthorization", ra_body())
        target = target.replace("RA/", f"returnAuthorization/{ra_id}/")
    before = list(netsuite.simulator.kit.state.changes)
    response = await netsuite.http.post(
        f"{RECORD}/{target}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    detail = response.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "USER_ERROR"
    assert detail["o:errorPath"] == field
    assert netsuite.simulator.kit.state.changes == before


@pytest.mark.parametrize(
    ("q", "version"),
    [
        ("HeaderId=NaN", "1"),  # v1 query-by-example: values unquoted
        ("HeaderId>=-NaN", "1"),
        ("HeaderId<Infinity", "1"),
        ("HeaderId='sNaN'", "4"),
        ("HeaderId>'NaN'", "4"),
        ("HeaderId<='-NaN'", "4"),
        ("HeaderId<'Infinity'", "4"),
        ("HeaderId<>'-Infinity'", "4"),
        ("HeaderId='abc'", "4"),  # the non-number the filter already handled: no row matches
    ],
)
async def test_oracle_q_with_a_non_finite_number_matches_nothing(q: str, version: str) -> None:
    async with _oracle_client() as client:
        created = await post(client, "salesOrdersForOrderHub", order("RMA-Q-NAN"))
        assert created.status_code == 201, created.text
        response = await client.get(
            "salesOrdersForOrderHub", params={"q": q}, headers={"REST-Framework-Version": version}
        )
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


# RFC 6749 section 5.2: a token request that cannot be read is 400 invalid_request, never a server error.
UNREADABLE_FORMS = [
    pytest.param("multipart/form-data", b"garbage", id="multipart-without-boundary"),
    pytest.param("multipart/form-data; boundary=xx", b"garbage", id="multipart-boundary-missing"),
    pytest.param(
        "multipart/form-data; boundary=xx",
        b'--xx\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\n\xff\r\n--xx--\r\n',
        id="multipart-not-utf8",
    ),
    pytest.param(
        "multipart/form-data; boundary=xx", b"--xx\r\nbad header\r\n\r\nv\r\n--xx--\r\n", id="bad-part"
    ),
    pytest.param(
        "multipart/form-data; boundary=xx",
        b'--xx\r\nContent-Disposition: form-data; name="a"\r\n\r\nv',
        id="multipart-truncated",
    ),
    pytest.param("multipart/form-data; boundary=" + "x" * 100, b"--xx--\r\n", id="boundary-too-long"),
    pytest.param("application/x-www-form-urlencoded", b"grant_type=\xff", id="form-not-utf8"),
    pytest.param("application/x-www-form-urlencoded; charset=nope", b"grant_type=x", id="unknown-charset"),
]


@pytest.mark.parametrize(("content_type", "raw"), UNREADABLE_FORMS)
async def test_sap_oauth_token_refuses_an_unreadable_form_with_invalid_request(
    content_type: str, raw: bytes
) -> None:
    async with _sap_client(logged_on=False) as client:
        response = await client.post(
            "/sap/bc/sec/oauth2/token", content=raw, headers={"Content-Type": content_type}
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_netsuite_oauth2_token_refuses_a_non_utf8_form_with_invalid_request(netsuite: Sim) -> None:
    response = await netsuite.http.post(
        "/services/rest/auth/oauth2/v1/token",
        content=b"grant_type=client_credentials&client_assertion=\xff",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


async def test_sap_declares_only_function_imports_it_serves() -> None:
    """Every function import in a $metadata is served; an undeclared one (ReverseGoodsReceipt) is a 404."""
    async with _sap_client() as client:
        token = await _token(client)
        for service in _SERVICES.values():
            root = "/sap/opu/odata/sap/" + service.path
            metadata = (await client.get(root + "/$metadata")).text
            for function in service.functions:
                assert f'<FunctionImport Name="{function.name}"' in metadata
                params = "&".join(f"{name}='1'" for name, _, _ in function.params if "Date" not in name)
                response = await client.post(
                    f"{root}/{function.name}?{params}", headers={"X-CSRF-Token": token}
                )
                # An unknown document is a business error (400/404 naming it), never "not implemented".
                assert response.status_code < 500, (function.name, response.text)
                assert "not implemented" not in response.text, (function.name, response.text)
        dlv = "/sap/opu/odata/sap/API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
        assert "ReverseGoodsReceipt" not in (await client.get(dlv + "/$metadata")).text
        reverse = await client.post(
            dlv + "/ReverseGoodsReceipt?DeliveryDocument='80000001'", headers={"X-CSRF-Token": token}
        )
    assert reverse.status_code == 404, reverse.text
    assert reverse.json()["error"]["code"] == "/IWBEP/CM_MGW_RT/021"
