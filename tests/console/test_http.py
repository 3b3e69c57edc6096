"""The console over plain HTTP: sign-in, cookie flags, CSRF, RBAC and tenant isolation (no browser needed)."""

from __future__ import annotations

import re
import socket
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .harness import KEYS, ServedApp


def login(served: ServedApp, who: str) -> httpx.Client:
    client = httpx.Client(base_url=served.console_url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login", data={"login_csrf": token.group(1), "token": KEYS[who][0], "next": "/returns"}
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: httpx.Client, path: str = "/returns") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_pages_need_a_session(served: ServedApp) -> None:
    with httpx.Client(base_url=served.console_url) as anonymous:
        response = anonymous.get("/dead-letters?erp=sap&return_id=R-1")
        assert response.status_code == 303
        # The page's whole query survives the round trip through the login form.
        location = urlsplit(response.headers["location"])
        assert location.path == "/login"
        assert parse_qs(location.query) == {"next": ["/dead-letters?erp=sap&return_id=R-1"]}
        form = anonymous.get(response.headers["location"]).text
        assert 'value="/dead-letters?erp=sap&amp;return_id=R-1"' in form
        assert anonymous.post("/logout").status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(served: ServedApp) -> None:
    client = httpx.Client(base_url=served.console_url)
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post("/login", data={"login_csrf": token.group(1), "token": KEYS["acme_reader"][0]})
    assert response.status_code == 303
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith("rb_console="))
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert KEYS["acme_reader"][0] not in header


def test_login_refuses_a_bad_key_and_a_missing_login_token(served: ServedApp) -> None:
    client = httpx.Client(base_url=served.console_url)
    page = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    bad = client.post("/login", data={"login_csrf": token.group(1), "token": "rbk_not_a_key_0123456789"})
    assert bad.status_code == 401
    assert "invalid API key" in bad.text
    forged = httpx.Client(base_url=served.console_url).post(
        "/login", data={"login_csrf": "forged", "token": KEYS["acme_admin"][0]}
    )
    assert forged.status_code == 403


def test_posts_need_the_csrf_token_and_same_origin(served: ServedApp) -> None:
    client = login(served, "acme_admin")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    token = csrf_of(client)
    cross = client.post("/logout", data={"csrf": token}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    # The session is gone: the same cookie no longer opens pages.
    assert client.get("/returns").status_code == 303


def test_next_never_leaves_the_site(served: ServedApp) -> None:
    client = httpx.Client(base_url=served.console_url)
    page = client.get("/login?next=//evil.example/x")
    assert 'name="next" value="/"' in page.text


def test_security_headers(served: ServedApp) -> None:
    client = login(served, "acme_reader")
    response = client.get("/returns")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_reader_sees_reader_pages_only(served: ServedApp) -> None:
    client = login(served, "acme_reader")
    nav = client.get("/returns").text
    assert 'href="/inventory"' in nav
    assert 'href="/dead-letters"' not in nav
    assert 'href="/kpis"' not in nav
    denied = client.get("/dead-letters")
    assert denied.status_code == 403
    assert "PERMISSION_DENIED" in denied.text
    assert client.get("/kpis").status_code == 403
    assert client.get("/sandbox").status_code == 403
    token = csrf_of(client)
    run = client.post(
        "/sandbox",
        data={
            "csrf": token,
            "run": "1",
            "mapping_id": "netsuite/return_authorization",
            "sample": "us_authorized_netsuite",
        },
    )
    assert run.status_code == 403


def test_tenants_never_see_each_other(served: ServedApp) -> None:
    served.submit("acme_admin", "iso-acme-1")
    acme = login(served, "acme_reader")
    page = acme.get("/returns/iso-acme-1")
    assert page.status_code == 200
    assert "tenant acme" in page.text
    globex = login(served, "globex_admin")
    other = globex.get("/returns/iso-acme-1")
    assert other.status_code == 404
    assert "iso-acme-1" not in other.text.replace("return &#39;iso-acme-1&#39;", "")
    assert "iso-acme-1" not in globex.get("/dead-letters?resolved=1").text


def test_unknown_erp_filter_and_sample_are_bad_requests(served: ServedApp) -> None:
    client = login(served, "acme_admin")
    assert client.get("/dead-letters?erp=bogus").status_code == 400
    assert client.get("/sandbox?sample=bogus").status_code == 400


@pytest.mark.parametrize(
    ("mapping_id", "needle"),
    [("netsuite/return_authorization", "returnAuthorization"), ("sap/customer_return", "A_CustomerReturn")],
)
def test_sandbox_translates_and_explains(served: ServedApp, mapping_id: str, needle: str) -> None:
    client = login(served, "acme_admin")
    token = csrf_of(client, "/sandbox")
    sample = "us_authorized_netsuite" if mapping_id.startswith("netsuite") else "eu_authorized_sap"
    page = client.post(
        "/sandbox", data={"csrf": token, "run": "1", "mapping_id": mapping_id, "sample": sample}
    )
    assert page.status_code == 200, page.text
    assert 'id="output"' in page.text
    assert 'id="explain"' in page.text
    bad = client.post(
        "/sandbox", data={"csrf": token, "run": "1", "mapping_id": mapping_id, "document": "{nope"}
    )
    assert bad.status_code == 400
    assert "not a valid ReturnOrder" in bad.text


def test_override_validation_reports_problems(served: ServedApp) -> None:
    client = login(served, "acme_admin")
    token = csrf_of(client, "/sandbox")
    page = client.post(
        "/sandbox/validate",
        data={
            "csrf": token,
            "override": "rules: [this is not a rule]\n",
            "base_mapping_id": "netsuite/return_authorization",
        },
    )
    assert page.status_code == 200
    assert 'id="override-problems"' in page.text


def test_search_finds_a_return_by_its_rma_number_within_the_tenant(served: ServedApp) -> None:
    served.submit("acme_admin", "rma-search-1")  # its RMA number is "RMA-rma-search-1"
    acme = login(served, "acme_reader")
    by_rma = acme.get("/returns", params={"q": "RMA-rma-search-1"})
    assert by_rma.status_code == 303 and by_rma.headers["location"] == "/returns/rma-search-1"
    assert "tenant acme" in acme.get(by_rma.headers["location"]).text
    by_id = acme.get("/returns", params={"q": "rma-search-1"})
    assert by_id.headers["location"] == "/returns/rma-search-1"
    # Another tenant's RMA number finds nothing: the search falls through to a timeline that is NOT_FOUND.
    globex = login(served, "globex_admin")
    miss = globex.get("/returns", params={"q": "RMA-rma-search-1"})
    assert miss.headers["location"] == "/returns/RMA-rma-search-1"
    assert globex.get(miss.headers["location"]).status_code == 404


@pytest.mark.parametrize("letter_id", ["18446744073709551616", "9" * 30])
def test_dead_letter_ids_beyond_uint64_are_bad_requests(served: ServedApp, letter_id: str) -> None:
    client = login(served, "acme_admin")
    token = csrf_of(client)
    assert client.get(f"/dead-letters/{letter_id}").status_code == 400
    for action in ("replay", "discard"):
        acted = client.post(f"/dead-letters/{letter_id}/{action}", data={"csrf": token, "confirm": "yes"})
        assert acted.status_code == 400, acted.text
    for ids in ([letter_id], ["-5"], ["1", letter_id]):
        bulk = client.post("/dead-letters/bulk-replay", data={"csrf": token, "id": ids, "confirm": "yes"})
        assert bulk.status_code == 400, bulk.text
        assert "whole numbers" in bulk.text


# Bodies aiohttp cannot read as a form: no boundary, no starting boundary, an unknown charset, a field that is
# not in its (default UTF-8) charset.
_FIELD = b'--B\r\nContent-Disposition: form-data; name="login_csrf"\r\n'
UNREADABLE_FORMS = [
    ("multipart/form-data", b"abc"),
    ("multipart/form-data; boundary=B", b"abc"),
    ("application/x-www-form-urlencoded; charset=bogus", b"login_csrf=a"),
    (
        "multipart/form-data; boundary=B",
        _FIELD + b"Content-Type: text/plain; charset=bogus\r\n\r\nabc\r\n--B--\r\n",
    ),
    ("multipart/form-data; boundary=B", _FIELD + b"\r\n\xff\xfe\r\n--B--\r\n"),
]


@pytest.mark.parametrize(("content_type", "body"), UNREADABLE_FORMS)
def test_an_unreadable_form_is_a_bad_request(served: ServedApp, content_type: str, body: bytes) -> None:
    headers = {"Content-Type": content_type}
    anonymous = httpx.Client(base_url=served.console_url)
    login_page = anonymous.post("/login", content=body, headers=headers)
    assert login_page.status_code == 400, login_page.text
    assert "the form could not be read" in login_page.text
    client = login(served, "acme_admin")
    for path in ("/logout", "/sandbox", "/dead-letters/bulk-replay"):
        page = client.post(path, content=body, headers=headers)
        assert page.status_code == 400, (path, page.text)
    assert client.get("/returns").status_code == 200  # still signed in: the bad logout changed nothing


def test_a_form_stalled_mid_body_gets_408_and_frees_its_connection(served: ServedApp) -> None:
    # The sign-in form is read before any session: anyone could otherwise hold a connection and a handler open.
    host, port = served.console_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /login HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nlogin_csrf=abc"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            assert chunk, f"closed without an answer: {answer!r}"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # The console still serves everyone else.
    assert httpx.get(served.console_url + "/login").status_code == 200


def test_non_ascii_tokens_are_refused_not_compared(served: ServedApp) -> None:
    anonymous = httpx.Client(base_url=served.console_url)
    anonymous.get("/login")  # sets the login token cookie
    non_ascii = anonymous.post("/login", data={"login_csrf": "é" * 43, "token": KEYS["acme_admin"][0]})
    assert non_ascii.status_code == 403, non_ascii.text
    cookie = b"rb_login_csrf=" + "é".encode() * 43
    forged_cookie = httpx.Client(base_url=served.console_url).post(
        "/login", data={"login_csrf": "é" * 43}, headers={"Cookie": cookie}
    )
    assert forged_cookie.status_code == 403, forged_cookie.text
    client = login(served, "acme_admin")
    # Bytes that are not UTF-8 reach the handler as surrogates.
    logout = client.post("/logout", headers={"X-CSRF-Token": b"\xff\xfe" * 20})
    assert logout.status_code == 403, logout.text
    assert client.get("/returns").status_code == 200


@pytest.mark.parametrize(
    "next_path", ["/\t/evil.example/x", "/\n/evil.example", "/\r\nSet-Cookie: x=1", "/\x00"]
)
def test_next_with_whitespace_or_control_characters_goes_home(served: ServedApp, next_path: str) -> None:
    client = httpx.Client(base_url=served.console_url, follow_redirects=False)
    page = client.get("/login", params={"next": next_path})
    assert 'name="next" value="/"' in page.text
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    signed_in = client.post(
        "/login", data={"login_csrf": token.group(1), "token": KEYS["acme_reader"][0], "next": next_path}
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/"
