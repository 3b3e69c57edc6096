"""Authentication matrix: nothing but health answers an anonymous or badly credentialed caller."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from security.conftest import JWT_SECRET, Served, api_key, bearer, make_jwt
from security.rpcs import api_rpcs


def _alg_none() -> str:
    def seg(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    body = {"sub": "x", "tenant_id": "acme", "roles": ["auditor"], "iat": now, "exp": now + 600}
    return f"{seg({'alg': 'none', 'typ': 'JWT'})}.{seg(body)}."


BAD_CREDENTIALS: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (),
    "empty bearer": (("authorization", "Bearer "),),
    "basic scheme": (("authorization", "Basic " + base64.b64encode(b"admin:admin").decode()),),
    "unknown api key": bearer("rbk_suite_acme_auditor_0123456789abcdeX"),
    "api key of another scheme": (("authorization", api_key("acme", "auditor")),),
    "garbage": bearer("%%%not-a-token; DROP TABLE"),
    "expired jwt": bearer(
        make_jwt("acme", ["auditor"], exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    ),
    "jwt wrong secret": bearer(
        make_jwt("acme", ["auditor"], secret="another-secret-0123456789abcdef0123" * 2)
    ),
    "jwt wrong issuer": bearer(make_jwt("acme", ["auditor"], iss="https://evil.test")),
    "jwt wrong audience": bearer(make_jwt("acme", ["auditor"], aud="someone-else")),
    "jwt without tenant": bearer(make_jwt("acme", ["auditor"], tenant_id=None)),
    "jwt alg none": bearer(_alg_none()),
    "jwt HS512 not allowed": bearer(make_jwt("acme", ["auditor"], algorithm="HS512", secret=JWT_SECRET)),
    "jwt from the future": bearer(make_jwt("acme", ["auditor"], nbf=int(time.time()) + 3600)),
}


async def test_health_is_the_only_open_rpc(served: Served) -> None:
    reply = await served.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    async def code(rpc: object) -> grpc.StatusCode:
        try:
            await rpc.call(served.channel, timeout=5)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    rpcs = api_rpcs()
    codes = await asyncio.gather(*(code(rpc) for rpc in rpcs))
    open_ones = [
        rpc.short for rpc, c in zip(rpcs, codes, strict=True) if c != grpc.StatusCode.UNAUTHENTICATED
    ]
    assert open_ones == []  # reflection included


@pytest.mark.parametrize("name", sorted(BAD_CREDENTIALS))
async def test_bad_credentials_are_unauthenticated_everywhere(served: Served, name: str) -> None:
    metadata = BAD_CREDENTIALS[name]

    async def code(rpc: object) -> tuple[grpc.StatusCode, str]:
        try:
            await rpc.call(served.channel, metadata=metadata, timeout=5)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        return grpc.StatusCode.OK, ""

    rpcs = api_rpcs()
    results = await asyncio.gather(*(code(rpc) for rpc in rpcs))
    for rpc, (status, details) in zip(rpcs, results, strict=True):
        assert status == grpc.StatusCode.UNAUTHENTICATED, (rpc.short, status, details)
        assert "Error" not in details and "Traceback" not in details


async def test_oversized_token_is_refused_without_answering(served: Served) -> None:
    rpc = next(r for r in api_rpcs() if r.short == "AdminService.VerifyAudit")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await rpc.call(served.channel, metadata=bearer("x" * 9000), timeout=5)
    assert info.value.code() != grpc.StatusCode.OK
    assert info.value.code() != grpc.StatusCode.INTERNAL or "metadata" in (info.value.details() or "").lower()


async def test_a_valid_credential_passes(served: Served) -> None:
    rpc = next(r for r in api_rpcs() if r.short == "AdminService.VerifyAudit")
    for md in (bearer(api_key("acme", "auditor")), bearer(make_jwt("acme", ["auditor"]))):
        reply = await rpc.call(served.channel, metadata=md, timeout=5)
        assert reply.intact
