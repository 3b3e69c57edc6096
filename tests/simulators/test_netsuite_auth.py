"""NetSuite simulator authentication: oauthlib-signed TBA requests accepted, altered ones refused; OAuth 2.0."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from connectors.harnesses.netsuite import CONSUMER_KEY, CONSUMER_SECRET, TOKEN_ID, TOKEN_SECRET, ec_key_pair
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.netsuite import (
    NetSuiteSimulator,
    NetSuiteSimulatorConfig,
    OAuth2ClientConfig,
    TbaToken,
)
from returnbridge.simulators.netsuite_auth import (
    base_string_uri,
    normalized_parameters,
    parse_oauth_header,
    pct,
)

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PRIVATE = RSA_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
RSA_PUBLIC = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
EC_PRIVATE, EC_PUBLIC = ec_key_pair()


@dataclass
class Sim:
    simulator: NetSuiteSimulator
    url: str
    http: httpx.AsyncClient

    def reasons(self) -> list[str]:
        return [entry["detail"] for entry in self.simulator.login_audit if entry["status"] == "Failure"]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    config = NetSuiteSimulatorConfig(
        consumers={CONSUMER_KEY: CONSUMER_SECRET, "other-consumer": "other-secret"},
        tokens={
            TOKEN_ID: TbaToken(consumer_key=CONSUMER_KEY, secret=TOKEN_SECRET),
            "other-token": TbaToken(consumer_key="other-consumer", secret="other-token-secret"),
        },
        oauth2_clients=[
            OAuth2ClientConfig(client_id="rsa-client", certificate_id="rsa-cert", public_key_pem=RSA_PUBLIC),
            OAuth2ClientConfig(client_id="ec-client", certificate_id="ec-cert", public_key_pem=EC_PUBLIC),
        ],
    )
    simulator = NetSuiteSimulator(config)
    running = await RunningSimulator(simulator.app).start()
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as http:
        yield Sim(simulator, running.url, http)
    await running.stop()


def oauth_header(
    method: str,
    url: str,
    *,
    consumer_key: str = CONSUMER_KEY,
    consumer_secret: str = CONSUMER_SECRET,
    token_id: str = TOKEN_ID,
    token_secret: str = TOKEN_SECRET,
    realm: str = "1234567",
    signature_method: str = SIGNATURE_HMAC_SHA256,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    client = OAuth1Client(
        consumer_key,
        client_secret=consumer_secret,
        resource_owner_key=token_id,
        resource_owner_secret=token_secret,
        signature_method=signature_method,
        realm=realm,
        nonce=nonce,
        timestamp=None if timestamp is None else str(timestamp),
    )
    _, headers, _ = client.sign(url, http_method=method)
    return str(headers["Authorization"])


async def get_order(
    sim: Sim, authorization: str, path: str = "/services/rest/record/v1/salesOrder/9001"
) -> httpx.Response:
    return await sim.http.get(path, headers={"Authorization": authorization})


def assert_invalid_login(response: httpx.Response) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"
    assert "Login Audit Trail" in body["o:errorDetails"][0]["detail"]


# -- TBA ------------------------------------------------------------------------------------------


async def test_oauthlib_signed_request_is_accepted(sim: Sim) -> None:
    url = sim.url + "/services/rest/record/v1/salesOrder/9001"
    response = await get_order(sim, oauth_header("GET", url))
    assert response.status_code == 200, response.text
    assert response.json()["tranId"] == "SO1001"


async def test_signed_query_parameters_are_part_of_the_signature(sim: Sim) -> None:
    url = sim.url + "/services/rest/query/v1/suiteql?limit=5&offset=0"
    body = {"q": "SELECT id FROM transaction"}
    headers = {"Authorization": oauth_header("POST", url), "Prefer": "transient"}
    ok = await sim.http.post("/services/rest/query/v1/suiteql?limit=5&offset=0", json=body, headers=headers)
    assert ok.status_code == 200, ok.text
    headers = {"Authorization": oauth_header("POST", url), "Prefer": "transient"}
    altered = await sim.http.post(
        "/services/rest/query/v1/suiteql?limit=6&offset=0", json=body, headers=headers
    )
    assert_invalid_login(altered)
    assert sim.reasons() == ["signature mismatch"]


async def test_altered_signature_is_refused(sim: Sim) -> None:
    header = oauth_header("GET", sim.url + "/services/rest/record/v1/salesOrder/9001")
    params = parse_oauth_header(header)
    signature = params["oauth_signature"]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    altered = header.replace(urllib.parse.quote(signature, safe=""), urllib.parse.quote(flipped, safe=""))
    assert altered != header
    assert_invalid_login(await get_order(sim, altered))
    assert sim.reasons() == ["signature mismatch"]


async def test_signature_for_another_path_or_method_is_refused(sim: Sim) -> None:
    other_path = oauth_header("GET", sim.url + "/services/rest/record/v1/salesOrder/9002")
    assert_invalid_login(await get_order(sim, other_path))
    other_method = oauth_header("POST", sim.url + "/services/rest/record/v1/salesOrder/9001")
    assert_invalid_login(await get_order(sim, other_method))
    assert sim.reasons() == ["signature mismatch", "signature mismatch"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"token_secret": "wrong"}, "signature mismatch"),
        ({"consumer_secret": "wrong"}, "signature mismatch"),
        ({"consumer_key": "nobody"}, "consumer_key_unknown"),
        ({"token_id": "no-such-token"}, "token unknown"),
        ({"token_id": "other-token", "token_secret": "other-token-secret"}, "consumer_key_refused"),
        ({"realm": "7654321"}, "wrong realm"),
        ({"signature_method": SIGNATURE_HMAC_SHA1}, "signature method HMAC-SHA1 not allowed"),
        ({"nonce": "abc"}, "nonce must be 6..64 characters"),
        ({"timestamp": int(time.time()) - 3600}, "timestamp too old or in the future"),
        ({"timestamp": int(time.time()) + 3600}, "timestamp too old or in the future"),
    ],
)
async def test_bad_credentials_are_refused(sim: Sim, overrides: dict[str, Any], reason: str) -> None:
    header = oauth_header("GET", sim.url + "/services/rest/record/v1/salesOrder/9001", **overrides)
    assert_invalid_login(await get_order(sim, header))
    assert sim.reasons()[0].startswith(reason)


async def test_replayed_nonce_is_refused(sim: Sim) -> None:
    header = oauth_header(
        "GET", sim.url + "/services/rest/record/v1/salesOrder/9001", nonce="n0nce-replayed-123"
    )
    assert (await get_order(sim, header)).status_code == 200
    assert_invalid_login(await get_order(sim, header))
    assert sim.reasons() == ["nonce already used"]


async def test_timestamp_going_back_is_refused(sim: Sim) -> None:
    url = sim.url + "/services/rest/record/v1/salesOrder/9001"
    now = int(time.time())
    assert (await get_order(sim, oauth_header("GET", url, timestamp=now))).status_code == 200
    # Within the tolerance for requests racing each other: still fine.
    assert (await get_order(sim, oauth_header("GET", url, timestamp=now - 4))).status_code == 200
    assert_invalid_login(await get_order(sim, oauth_header("GET", url, timestamp=now - 60)))
    assert sim.reasons() == ["timestamp went back"]


async def test_missing_or_foreign_authorization_is_refused(sim: Sim) -> None:
    assert_invalid_login(await sim.http.get("/services/rest/record/v1/salesOrder/9001"))
    assert_invalid_login(await get_order(sim, "Basic dXNlcjpwYXNz"))
    assert_invalid_login(await get_order(sim, 'OAuth realm="1234567", oauth_consumer_key="x"'))
    assert sim.reasons()[2].startswith("MissingTokenPassportRequiredFields")


async def test_refused_request_changes_nothing(sim: Sim) -> None:
    header = oauth_header(
        "POST", sim.url + "/services/rest/record/v1/returnAuthorization", token_secret="bad"
    )
    body = {"entity": {"id": "101"}, "item": {"items": [{"item": {"id": "501"}, "quantity": 1}]}}
    response = await sim.http.post(
        "/services/rest/record/v1/returnAuthorization", json=body, headers={"Authorization": header}
    )
    assert_invalid_login(response)
    assert sim.simulator.documents("returnAuthorization") == {}


def test_rfc5849_building_blocks() -> None:
    # RFC 5849 3.6 and 3.4.1.2 examples.
    assert pct("Ladies + Gentlemen") == "Ladies%20%2B%20Gentlemen"
    assert pct("An encoded string!") == "An%20encoded%20string%21"
    assert pct("Dogs, Cats & Mice") == "Dogs%2C%20Cats%20%26%20Mice"
    assert pct("☃") == "%E2%98%83"
    assert base_string_uri("HTTP", "EXAMPLE.COM", 80, "/r%20v/X") == "http://example.com/r%20v/X"
    assert base_string_uri("https", "www.example.net", 8080, "/") == "https://www.example.net:8080/"
    # RFC 5849 3.4.1.3.2: sorted by encoded name, then value.
    params = [
        ("b5", "=%3D"),
        ("a3", "a"),
        ("c@", ""),
        ("a2", "r b"),
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("c2", ""),
        ("a3", "2 q"),
    ]
    assert normalized_parameters(params) == (
        "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2"
    )


# -- OAuth 2.0 client credentials -----------------------------------------------------------------


def assertion(
    sim: Sim,
    *,
    key: str = RSA_PRIVATE,
    alg: str = "PS256",
    kid: str = "rsa-cert",
    iss: str = "rsa-client",
    aud: str | None = None,
    lifetime: int = 300,
    iat: int | None = None,
    scope: Any = "rest_webservices",
    jti: str | None = "j-1",
) -> str:
    issued = int(time.time()) if iat is None else iat
    claims: dict[str, Any] = {
        "iss": iss,
        "scope": scope,
        "aud": aud or sim.url + "/services/rest/auth/oauth2/v1/token",
        "iat": issued,
        "exp": issued + lifetime,
    }
    if jti is not None:
        claims["jti"] = jti
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


async def token_request(sim: Sim, client_assertion: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
        **form,
    }
    return await sim.http.post("/services/rest/auth/oauth2/v1/token", data=data)


@pytest.mark.parametrize(
    ("key", "alg", "kid", "iss"),
    [(RSA_PRIVATE, "PS256", "rsa-cert", "rsa-client"), (EC_PRIVATE, "ES256", "ec-cert", "ec-client")],
)
async def test_client_credentials_issue_a_bearer_token(
    sim: Sim, key: str, alg: str, kid: str, iss: str
) -> None:
    response = await token_request(sim, assertion(sim, key=key, alg=alg, kid=kid, iss=iss))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == "3600"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "PS256"
    assert (
        jwt.decode(body["access_token"], options={"verify_signature": False})["iss"]
        == "https://system.netsuite.com"
    )
    ok = await get_order(sim, f"Bearer {body['access_token']}")
    assert ok.status_code == 200
    assert_invalid_login(await get_order(sim, "Bearer not-a-token"))


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"aud": "https://elsewhere.example/token"}, 400, "invalid_grant"),
        ({"iat": int(time.time()) - 4000}, 400, "invalid_grant"),
        ({"lifetime": 7200}, 400, "invalid_grant"),
        ({"kid": "unknown-cert"}, 401, "invalid_client"),
        ({"key": EC_PRIVATE, "alg": "ES256"}, 401, "invalid_client"),
        ({"iss": "someone-else"}, 400, "invalid_grant"),
        ({"scope": "restlets"}, 400, "invalid_scope"),
    ],
)
async def test_bad_assertions_are_refused(sim: Sim, kwargs: dict[str, Any], status: int, error: str) -> None:
    response = await token_request(sim, assertion(sim, **kwargs))
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


async def test_symmetric_assertion_and_replay_are_refused(sim: Sim) -> None:
    forged = jwt.encode(
        {"iss": "rsa-client"},
        "shared-secret-that-is-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": "rsa-cert"},
    )
    response = await token_request(sim, forged)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    once = assertion(sim, jti="only-once")
    assert (await token_request(sim, once)).status_code == 200
    replay = await token_request(sim, once)
    assert replay.status_code == 400 and "replayed" in replay.json()["error_description"]


async def test_wrong_grant_type_is_refused(sim: Sim) -> None:
    response = await token_request(sim, assertion(sim), grant_type="password")
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"


async def test_expired_access_tokens_are_refused(sim: Sim) -> None:
    token = (await token_request(sim, assertion(sim))).json()["access_token"]
    assert (await get_order(sim, f"Bearer {token}")).status_code == 200
    expired = await sim.http.post("/_sim/netsuite/expire-tokens")
    assert expired.json() == {"expired": 1}
    assert_invalid_login(await get_order(sim, f"Bearer {token}"))
    assert sim.reasons()[-1] == "access token expired"
