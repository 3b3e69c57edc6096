"""NetSuite connector units: exact JSON, error parsing, config and secrets, edge paths over MockTransport."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from returnbridge import exactjson
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.netsuite import (
    NetSuiteConfig,
    NetSuiteConnector,
    parse_netsuite_error,
    suiteql_literal,
)
from returnbridge.connectors.netsuite_auth import TbaAuth
from returnbridge.connectors.registry import build_connector, parse_connector_config
from returnbridge.errors import AmbiguousErpError, ConfigError, ErpAuthError, PermanentErpError

TBA = {
    "method": "tba",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "token_id": "tk",
    "token_secret": "ts",
}


def test_encode_json_writes_decimals_digit_for_digit() -> None:
    value = {"a": Decimal("19.990"), "b": [Decimal("1E+2"), Decimal("-0.000001"), 3, True, None], "c": 'é"\n'}
    encoded = exactjson.dumps_bytes(value)
    assert encoded == '{"a":19.990,"b":[100,-0.000001,3,true,null],"c":"é\\"\\n"}'.encode()
    assert exactjson.loads(encoded)["a"] == Decimal("19.990")
    with pytest.raises(TypeError, match="floats are not allowed"):
        exactjson.dumps_bytes({"x": 0.1})
    with pytest.raises(ValueError, match="cannot encode"):
        exactjson.dumps_bytes(Decimal("NaN"))
    with pytest.raises(TypeError):
        exactjson.dumps_bytes({"x": object()})


def test_round_trip_keeps_every_digit() -> None:
    raw = b'{"rate":0.1000000000000000055511151231257827,"qty":12345678901234567890.5}'
    assert exactjson.dumps_bytes(exactjson.loads(raw)) == raw


def _response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), request=httpx.Request("GET", "https://x")
    )


def test_parse_netsuite_error_bodies() -> None:
    body = {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid entity reference key 9.",
                "o:errorCode": "INVALID_KEY_OR_REF",
                "o:errorPath": "entity",
            }
        ],
    }
    assert parse_netsuite_error(_response(400, body)) == (
        "INVALID_KEY_OR_REF",
        "Invalid entity reference key 9. (path: entity)",
    )
    assert parse_netsuite_error(_response(401, {"error": "invalid_client", "error_description": "bad"})) == (
        "invalid_client",
        "bad",
    )
    assert parse_netsuite_error(_response(503, {"status": 503, "title": "Simulated fault"})) == (
        "503",
        "Simulated fault",
    )
    with pytest.raises(ValueError):
        parse_netsuite_error(
            httpx.Response(500, content=b"<html>", request=httpx.Request("GET", "https://x"))
        )


def test_suiteql_literal_escapes_quotes_and_refuses_control_characters() -> None:
    assert suiteql_literal("O'Brien") == "'O''Brien'"
    with pytest.raises(PermanentErpError):
        suiteql_literal("a\x00b")


def test_config_defaults_for_production_and_sandbox() -> None:
    prod = NetSuiteConfig.model_validate({"account_id": "1234567", "auth": TBA})
    assert prod.resolved_base_url() == "https://1234567.suitetalk.api.netsuite.com"
    assert prod.resolved_realm() == "1234567"
    assert prod.max_concurrency == 5
    sandbox = NetSuiteConfig.model_validate({"account_id": "1234567_SB1", "auth": TBA})
    assert sandbox.resolved_base_url() == "https://1234567-sb1.suitetalk.api.netsuite.com"
    assert sandbox.resolved_realm() == "1234567_SB1"
    assert "cs" not in repr(prod) and "ts" not in repr(prod.auth).replace("tba", "")


def test_registry_builds_the_netsuite_connector() -> None:
    config = parse_connector_config(
        {"kind": "netsuite", "account_id": "1234567", "base_url": "http://127.0.0.1:9", "auth": TBA}
    )
    assert isinstance(config, NetSuiteConfig)
    connector = build_connector(config)
    assert isinstance(connector, NetSuiteConnector)
    assert connector.kind == "netsuite" and connector.erp == "netsuite"
    assert "cs" not in repr(connector)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"account_id": "1234567", "auth": {**TBA, "consumer_secret_env": "X"}},
            "exactly one of consumer_secret",
        ),
        (
            {
                "account_id": "1234567",
                "auth": {"method": "tba", "consumer_key": "ck", "token_id": "t", "token_secret": "s"},
            },
            "exactly one of consumer_secret",
        ),
        ({"account_id": "12 34", "auth": TBA}, "account_id"),
        ({"account_id": "1", "auth": TBA, "max_concurrency": 0}, "max_concurrency"),
        ({"account_id": "1", "auth": TBA, "base_url": "ftp://x"}, "base_url"),
        (
            {
                "account_id": "1",
                "auth": {
                    "method": "oauth2",
                    "client_id": "c",
                    "certificate_id": "k",
                    "private_key_file": "/k",
                    "algorithm": "HS256",
                },
            },
            "algorithm",
        ),
        ({"account_id": "1", "auth": {"method": "basic"}}, "auth"),
    ],
)
def test_bad_config_is_refused_naming_the_field(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_connector_config({"kind": "netsuite", **section}, source="config.yaml connectors.netsuite")


def test_missing_secret_env_fails_at_build() -> None:
    config = NetSuiteConfig.model_validate(
        {
            "account_id": "1",
            "auth": {
                "method": "tba",
                "consumer_key": "ck",
                "consumer_secret_env": "NS_UNSET_VAR_X",
                "token_id": "t",
                "token_secret": "s",
            },
        }
    )
    with pytest.raises(ConfigError, match="NS_UNSET_VAR_X"):
        build_connector(config)


def test_tba_header_shape() -> None:
    auth = TbaAuth(
        realm="1234567_SB1",
        consumer_key="ck",
        consumer_secret=SecretStr("cs"),
        token_id="tk",
        token_secret=SecretStr("ts"),
    )
    header = auth.sign(
        "GET", "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer/1"
    )
    assert header.startswith('OAuth realm="1234567_SB1"')
    for part in (
        'oauth_consumer_key="ck"',
        'oauth_token="tk"',
        'oauth_signature_method="HMAC-SHA256"',
        'oauth_version="1.0"',
    ):
        assert part in header
    assert "cs" not in repr(auth)


def _mock_connector(handler: Any) -> NetSuiteConnector:
    config = NetSuiteConfig.model_validate({"account_id": "1234567", "auth": TBA})
    client = httpx.AsyncClient(
        base_url="https://1234567.suitetalk.api.netsuite.com", transport=httpx.MockTransport(handler)
    )
    return NetSuiteConnector(config, client=client)


async def test_refused_duplicate_on_transform_returns_the_existing_document() -> None:
    calls: list[str] = []
    lookups = iter([[{"id": "77", "tranid": "IR5", "externalid": "R-1", "statusname": "", "links": []}]])

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        assert request.headers["Authorization"].startswith("OAuth ")
        if request.url.path.endswith("/suiteql"):
            assert request.headers["Prefer"] == "transient"
            assert "externalid = 'R-1'" in json.loads(request.content)["q"]
            return httpx.Response(200, json={"items": next(lookups), "hasMore": False})
        body = {
            "status": 400,
            "title": "Bad Request",
            "o:errorDetails": [{"detail": "This record already exists.", "o:errorCode": "DUP_RCRD"}],
        }
        return httpx.Response(400, json=body)

    connector = _mock_connector(handler)
    result = await connector.create_document(
        DocumentRequest(
            "itemReceipt", "R-1", b"{}", source_document_type="returnAuthorization", source_document_id="12"
        )
    )
    assert (result.document_id, result.created, result.document_number) == ("77", False, "IR5")
    # No lookup before the write (one call in the happy path); the refusal is what triggers one.
    assert calls == [
        "POST /services/rest/record/v1/returnAuthorization/12/!transform/itemReceipt",
        "POST /services/rest/query/v1/suiteql",
    ]
    await connector.aclose()


async def test_write_without_location_header_is_ambiguous() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/suiteql"):
            return httpx.Response(200, json={"items": [], "hasMore": False})
        assert request.method == "PUT" and request.url.path.endswith("/returnAuthorization/eid:R-2")
        assert json.loads(request.content)["externalId"] == "R-2"
        return httpx.Response(204)

    connector = _mock_connector(handler)
    with pytest.raises(AmbiguousErpError) as info:
        await connector.create_document(
            DocumentRequest("returnAuthorization", "R-2", b'{"externalId":"other"}')
        )
    assert info.value.code == "NO_LOCATION"
    await connector.aclose()


async def test_auth_refusal_is_auth_error_with_netsuite_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={
                "status": 401,
                "title": "Unauthorized",
                "o:errorDetails": [{"detail": "Invalid login attempt.", "o:errorCode": "INVALID_LOGIN"}],
            },
        )

    connector = _mock_connector(handler)
    with pytest.raises(ErpAuthError) as info:
        await connector.get_document_status("returnAuthorization", "1")
    assert (info.value.code, info.value.http_status) == ("INVALID_LOGIN", 401)
    await connector.aclose()


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.text()
        | st.decimals(allow_nan=False, allow_infinity=False),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_encode_then_parse_is_exact(value: Any) -> None:
    decoded = exactjson.loads(exactjson.dumps_bytes(value))

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, Decimal):
            # Integral decimals come back as ints, fractional ones as the same Decimal.
            if isinstance(b, int) and not isinstance(b, bool):
                return Decimal(b) == a and a == a.to_integral_value()
            return isinstance(b, Decimal) and format(b, "f") == format(a, "f")
        if isinstance(a, list):
            return (
                isinstance(b, list)
                and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True))
            )
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return type(a) is type(b) and a == b

    assert same(value, decoded)


async def test_tba_refusal_is_retried_once_with_a_fresh_signature() -> None:
    seen: list[str] = []
    answers = iter([401, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        status = next(answers)
        if status == 401:
            return httpx.Response(
                401,
                json={
                    "status": 401,
                    "o:errorDetails": [{"detail": "Invalid login attempt.", "o:errorCode": "INVALID_LOGIN"}],
                },
            )
        return httpx.Response(
            200, json={"id": "5", "tranId": "RMA5", "status": {"id": "B", "refName": "Pending Receipt"}}
        )

    connector = _mock_connector(handler)
    result = await connector.get_document_status("returnAuthorization", "5")
    assert result.status == "Pending Receipt"
    assert len(seen) == 2 and seen[0] != seen[1], "the retry carries a new nonce and signature"
    await connector.aclose()
