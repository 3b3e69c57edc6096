"""Test servicers, credentials and a grpc.aio server on port 0 wired with the gateway interceptors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import jwt
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2_grpc

from returnbridge.api.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    returns_pb2,
    returns_pb2_grpc,
    sync_pb2,
)
from returnbridge.domain.context import Principal, current_principal, request_id
from returnbridge.errors import NotFoundError, ValidationError
from returnbridge.gateway.auth import Authenticator, hash_api_key
from returnbridge.gateway.interceptors import build_interceptors, remaining_timeout
from returnbridge.gateway.ratelimit import RateLimiter
from returnbridge.gateway.rbac import require_tenant_match
from returnbridge.gateway.security_config import SecurityConfig

HMAC_SECRET = "test-hmac-secret-0123456789abcdefghijklmnop"
HMAC_ENV = "RB_TEST_JWT_SECRET"
ISSUER = "https://idp.example.test"
AUDIENCE = "returnbridge"

KEYS = {
    "submitter": "rbk_submitter_key_acme_0001",
    "reader": "rbk_reader_key_acme_000000001",
    "auditor": "rbk_auditor_key_acme_00000001",
    "integration_admin": "rbk_admin_key_acme_0000000001",
    "beta_submitter": "rbk_submitter_key_beta_00001",
}


class FakeClock:
    """A rate limiter's clock: ``now`` moves when a test moves it, plus ``step`` on every reading."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 100.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def principal(name: str = "rms", tenant: str = "acme") -> Principal:
    return Principal(name=name, tenant_id=tenant, roles=frozenset({"submitter"}))


def api_key_entries() -> list[dict[str, Any]]:
    entries = []
    for role, raw in KEYS.items():
        tenant, role_name = ("beta", "submitter") if role == "beta_submitter" else ("acme", role)
        entries.append(
            {"name": f"{role}-svc", "tenant_id": tenant, "roles": [role_name], "sha256": hash_api_key(raw)}
        )
    return entries


def security_config(**overrides: Any) -> SecurityConfig:
    data: dict[str, Any] = {
        "api_keys": api_key_entries(),
        "jwt": {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE, "hmac_secret_env": HMAC_ENV},
    }
    data.update(overrides)
    return SecurityConfig.model_validate(data)


def make_jwt(
    *,
    secret: str | bytes = HMAC_SECRET,
    algorithm: str = "HS256",
    lifetime: float = 600,
    not_before: float | None = None,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "rms-jwt",
        "tenant_id": "acme",
        "roles": ["submitter"],
        "iat": now,
        "exp": now + lifetime,
    }
    if not_before is not None:
        body["nbf"] = now + not_before
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret, algorithm=algorithm, headers=headers)


def unsigned_jwt(**claims: Any) -> str:
    """An ``alg: none`` token, built by hand since PyJWT refuses to help."""
    import base64
    import json

    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant_id": "acme", "roles": ["submitter"]}
    body |= {"iat": now, "exp": now + 600, **claims}

    def seg(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{seg({'alg': 'none', 'typ': 'JWT'})}.{seg(body)}."


class ReturnsServicer(returns_pb2_grpc.ReturnsServiceServicer):
    """Echoes who called; a few client references trigger error paths."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def SubmitReturn(self, request: Any, context: Any) -> returns_pb2.SubmitReturnResponse:
        tenant = require_tenant_match(request.return_order.tenant_id, field="return_order.tenant_id")
        ref = request.client_reference
        if ref == "boom":
            raise RuntimeError("db password=hunter2 at 10.0.0.7")
        if ref == "bus-timeout":
            import nats.errors

            raise nats.errors.TimeoutError  # a PubAck that never came: the bus, not us
        if ref == "missing":
            raise NotFoundError("return RMA-9 not found")
        if ref == "invalid":
            from returnbridge.errors import FieldViolation

            raise ValidationError(
                "bad return", [FieldViolation("return_order.lines[0].quantity", "must be > 0")]
            )
        if ref == "abort":
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "servicer's own status")
        if ref == "set-code":
            context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
            context.set_details("set by the servicer")
            return returns_pb2.SubmitReturnResponse()
        if ref == "erp":
            from returnbridge.errors import PermanentErpError

            raise PermanentErpError(
                "customer jane.doe@example.com blocked", erp="netsuite", code="USER_ERROR"
            )
        if ref == "hold":
            self.entered += 1
            await self.release.wait()
        return returns_pb2.SubmitReturnResponse(
            tenant_id=tenant,
            return_id=current_principal().name,
            client_reference=request_id(),
        )

    async def SubmitReturns(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for request in request_iterator:
            if request.client_reference == "invalid":
                raise ValidationError("bad item")
            yield returns_pb2.SubmitReturnResult(
                client_reference=request.client_reference, return_id=current_principal().tenant_id
            )

    async def GetReturnStatus(self, request: Any, context: Any) -> sync_pb2.ReturnSyncStatus:
        left = remaining_timeout(context)
        return sync_pb2.ReturnSyncStatus(
            tenant_id=current_principal().tenant_id, return_id="none" if left is None else f"{left:.3f}"
        )

    async def WatchSyncEvents(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for sequence in range(1, 4):
            if list(request.return_ids) == ["fail"] and sequence == 2:
                raise NotFoundError("return 'fail' vanished")
            yield sync_pb2.SyncEvent(sequence=sequence, tenant_id=current_principal().tenant_id)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    async def VerifyAudit(self, request: Any, context: Any) -> admin_pb2.VerifyAuditResponse:
        return admin_pb2.VerifyAuditResponse(intact=True)

    async def ReplayDeadLetter(self, request: Any, context: Any) -> admin_pb2.ReplayDeadLetterResponse:
        return admin_pb2.ReplayDeadLetterResponse()


@dataclass
class Running:
    server: grpc.aio.Server
    channel: grpc.aio.Channel
    returns: returns_pb2_grpc.ReturnsServiceStub
    admin: admin_pb2_grpc.AdminServiceStub
    servicer: ReturnsServicer
    port: int


async def start(
    config: SecurityConfig,
    *,
    limiter: RateLimiter | None = None,
    audit: Any = None,
    alerter: Any = None,
    admission: Any = None,
    credentials: grpc.ServerCredentials | None = None,
    channel_credentials: grpc.ChannelCredentials | None = None,
) -> Running:
    authenticator = Authenticator(config, env={HMAC_ENV: HMAC_SECRET})
    server = grpc.aio.server(
        interceptors=build_interceptors(
            config,
            authenticator=authenticator,
            limiter=limiter,
            audit=audit,
            alerter=alerter,
            admission=admission,
        )
    )
    servicer = ReturnsServicer()
    returns_pb2_grpc.add_ReturnsServiceServicer_to_server(servicer, server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    if channel_credentials is None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    else:
        channel = grpc.aio.secure_channel(
            f"127.0.0.1:{port}", channel_credentials, options=[("grpc.ssl_target_name_override", "localhost")]
        )
    return Running(
        server,
        channel,
        returns_pb2_grpc.ReturnsServiceStub(channel),
        admin_pb2_grpc.AdminServiceStub(channel),
        servicer,
        port,
    )


async def stop(running: Running) -> None:
    await running.channel.close()
    await running.server.stop(None)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    raise AssertionError("no rich status details in trailing metadata")


def detail(status: status_pb2.Status, message_type: type[Any]) -> Any:
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            value = message_type()
            packed.Unpack(value)
            return value
    raise AssertionError(f"no {message_type.__name__} in status details")


__all__ = ["error_details_pb2"]
