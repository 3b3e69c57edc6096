"""Gateway interceptors through a real grpc.aio server and channel: authentication, RBAC, errors, request ids."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from pydantic import ValidationError as PydanticValidationError

from gateway.support import (
    HMAC_ENV,
    HMAC_SECRET,
    KEYS,
    Running,
    bearer,
    detail,
    make_jwt,
    rich_status,
    security_config,
    start,
    stop,
    unsigned_jwt,
)
from returnbridge.api.v1 import admin_pb2, returns_pb2
from returnbridge.audit.redact import RedactingFilter
from returnbridge.errors import ConfigError
from returnbridge.gateway.auth import Authenticator
from returnbridge.gateway.interceptors import build_interceptors

SUBMIT = "/returnbridge.api.v1.ReturnsService/SubmitReturn"


@pytest.fixture
async def gw() -> AsyncIterator[Running]:
    running = await start(security_config())
    try:
        yield running
    finally:
        await stop(running)


def _authenticator() -> Authenticator:
    return Authenticator(security_config(), env={HMAC_ENV: HMAC_SECRET})


def _submit(tenant: str = "", ref: str = "") -> returns_pb2.SubmitReturnRequest:
    return returns_pb2.SubmitReturnRequest(
        return_order=returns_pb2.ReturnOrder(return_id="R-1", tenant_id=tenant), client_reference=ref
    )


AUTH_CASES = [
    ("no credentials", (), grpc.StatusCode.UNAUTHENTICATED, "missing credentials"),
    (
        "not bearer",
        (("authorization", f"Basic {KEYS['submitter']}"),),
        grpc.StatusCode.UNAUTHENTICATED,
        "Bearer",
    ),
    (
        "unknown api key",
        bearer("rbk_this_key_was_never_issued"),
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid API key",
    ),
    ("two headers", bearer(KEYS["submitter"]) * 2, grpc.StatusCode.UNAUTHENTICATED, "more than one"),
    ("expired jwt", bearer(make_jwt(lifetime=-120)), grpc.StatusCode.UNAUTHENTICATED, "token expired"),
    ("jwt not yet valid", bearer(make_jwt(not_before=600)), grpc.StatusCode.UNAUTHENTICATED, "not yet valid"),
    ("alg none", bearer(unsigned_jwt()), grpc.StatusCode.UNAUTHENTICATED, "'none' is not allowed"),
    (
        "alg not in allow-list",
        bearer(make_jwt(algorithm="HS512", secret=HMAC_SECRET * 2)),
        grpc.StatusCode.UNAUTHENTICATED,
        "'HS512' is not allowed",
    ),
    ("wrong audience", bearer(make_jwt(aud="someone-else")), grpc.StatusCode.UNAUTHENTICATED, "Audience"),
    ("wrong issuer", bearer(make_jwt(iss="https://evil.test")), grpc.StatusCode.UNAUTHENTICATED, "issuer"),
    ("bad signature", bearer(make_jwt(secret="x" * 48)), grpc.StatusCode.UNAUTHENTICATED, "Signature"),
    ("no tenant claim", bearer(make_jwt(tenant_id=None)), grpc.StatusCode.UNAUTHENTICATED, "tenant_id"),
    ("bad tenant claim", bearer(make_jwt(tenant_id="a.b")), grpc.StatusCode.UNAUTHENTICATED, "tenant"),
    ("lifetime too long", bearer(make_jwt(lifetime=10 * 86400)), grpc.StatusCode.UNAUTHENTICATED, "lifetime"),
    ("reader cannot submit", bearer(KEYS["reader"]), grpc.StatusCode.PERMISSION_DENIED, "returns.submit"),
    ("auditor cannot submit", bearer(KEYS["auditor"]), grpc.StatusCode.PERMISSION_DENIED, "returns.submit"),
    (
        "jwt without a known role",
        bearer(make_jwt(roles=["superuser", "system"])),
        grpc.StatusCode.PERMISSION_DENIED,
        "returns.submit",
    ),
    ("submitter api key", bearer(KEYS["submitter"]), grpc.StatusCode.OK, ""),
    ("submitter jwt", bearer(make_jwt()), grpc.StatusCode.OK, ""),
    ("roles as a string claim", bearer(make_jwt(roles="reader submitter")), grpc.StatusCode.OK, ""),
]


@pytest.mark.parametrize(
    ("metadata", "code", "message"), [c[1:] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES]
)
async def test_auth_table(
    gw: Running, metadata: tuple[tuple[str, str], ...], code: grpc.StatusCode, message: str
) -> None:
    if code == grpc.StatusCode.OK:
        response = await gw.returns.SubmitReturn(_submit(), metadata=metadata)
        assert response.tenant_id == "acme"
        return
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(), metadata=metadata)
    assert info.value.code() == code
    assert message in (info.value.details() or "")


async def test_principal_comes_from_the_credential(gw: Running) -> None:
    by_key = await gw.returns.SubmitReturn(_submit(), metadata=bearer(KEYS["submitter"]))
    assert (by_key.tenant_id, by_key.return_id) == ("acme", "submitter-svc")
    by_jwt = await gw.returns.SubmitReturn(
        _submit(), metadata=bearer(make_jwt(sub="rms-eu", tenant_id="beta"))
    )
    assert (by_jwt.tenant_id, by_jwt.return_id) == ("beta", "rms-eu")


async def test_body_tenant_must_match_the_credential(gw: Running) -> None:
    ok = await gw.returns.SubmitReturn(_submit(tenant="acme"), metadata=bearer(KEYS["submitter"]))
    assert ok.tenant_id == "acme"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(tenant="acme"), metadata=bearer(KEYS["beta_submitter"]))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "return_order.tenant_id" in (info.value.details() or "")


async def test_health_is_open_and_admin_rpcs_follow_roles(gw: Running) -> None:
    reply = await health_pb2_grpc.HealthStub(gw.channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    verified = await gw.admin.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=bearer(KEYS["auditor"]))
    assert verified.intact
    for role in ("submitter", "reader", "integration_admin"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await gw.admin.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=bearer(KEYS[role]))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, role
    await gw.admin.ReplayDeadLetter(
        admin_pb2.ReplayDeadLetterRequest(id=1), metadata=bearer(KEYS["integration_admin"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.admin.ReplayDeadLetter(
            admin_pb2.ReplayDeadLetterRequest(id=1), metadata=bearer(KEYS["auditor"])
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unimplemented_rpc_still_requires_auth(gw: Running) -> None:
    # GetDeadLetter is not implemented by the test servicer: an anonymous caller learns nothing about that.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.admin.GetDeadLetter(admin_pb2.GetDeadLetterRequest())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.admin.GetDeadLetter(admin_pb2.GetDeadLetterRequest(id=1), metadata=bearer(KEYS["auditor"]))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def _trailing(error_or_call: grpc.aio.AioRpcError, key: str) -> str:
    return dict(error_or_call.trailing_metadata() or ()).get(key, "")


async def test_request_id_is_propagated_and_returned(gw: Running) -> None:
    call = gw.returns.SubmitReturn(
        _submit(), metadata=(*bearer(KEYS["submitter"]), ("x-request-id", "rms-req-42"))
    )
    response = await call
    assert response.client_reference == "rms-req-42"
    assert dict(await call.trailing_metadata())["x-request-id"] == "rms-req-42"

    generated = gw.returns.SubmitReturn(
        _submit(), metadata=(*bearer(KEYS["submitter"]), ("x-request-id", "bad id!"))
    )
    response = await generated
    assert response.client_reference != "bad id!" and len(response.client_reference) == 32
    assert dict(await generated.trailing_metadata())["x-request-id"] == response.client_reference

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(), metadata=(("x-request-id", "anon-1"),))
    assert _trailing(info.value, "x-request-id") == "anon-1"


async def test_errors_map_to_status_without_leaking_internals(
    gw: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RedactingFilter())
    md = (*bearer(KEYS["submitter"]), ("x-request-id", "req-boom"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="boom"), metadata=md)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "internal error (request id req-boom)"
    assert "hunter2" not in str(info.value.debug_error_string())
    assert any("req-boom" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    # The traceback is logged for operators, with the secret in the exception message redacted.
    assert "RuntimeError" in caplog.text and "hunter2" not in caplog.text

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="missing"), metadata=md)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "return RMA-9 not found"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="invalid"), metadata=md)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_request = detail(rich_status(info.value), error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("return_order.lines[0].quantity", "must be > 0")
    ]
    assert detail(rich_status(info.value), error_details_pb2.RequestInfo).request_id == "req-boom"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="abort"), metadata=md)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert info.value.details() == "servicer's own status"

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="erp"), metadata=md)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == "customer [REDACTED] blocked"


async def test_bus_failure_mid_call_is_unavailable_with_retry_info(gw: Running) -> None:
    """A NATS timeout is the bus being unreachable: UNAVAILABLE (retryable), never INTERNAL."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await gw.returns.SubmitReturn(_submit(ref="bus-timeout"), metadata=bearer(KEYS["submitter"]))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "retry with the same idempotency key" in (info.value.details() or "")
    retry = detail(rich_status(info.value), error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 1


def _count(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("rb_api_calls_total", {"method": method, "code": code}) or 0.0


async def test_api_calls_are_counted_per_method_and_code(gw: Running) -> None:
    ok, unauth, denied = (
        _count(SUBMIT, "OK"),
        _count(SUBMIT, "UNAUTHENTICATED"),
        _count(SUBMIT, "PERMISSION_DENIED"),
    )
    aborted, set_code = _count(SUBMIT, "ALREADY_EXISTS"), _count(SUBMIT, "FAILED_PRECONDITION")
    for ref in ("abort", "set-code"):
        with pytest.raises(grpc.aio.AioRpcError):
            await gw.returns.SubmitReturn(_submit(ref=ref), metadata=bearer(KEYS["submitter"]))
    # A servicer's own abort sends the status before the interceptor's bookkeeping resumes: wait for it.
    await _counted(SUBMIT, "ALREADY_EXISTS", aborted + 1)
    await _counted(SUBMIT, "FAILED_PRECONDITION", set_code + 1)
    await gw.returns.SubmitReturn(_submit(), metadata=bearer(KEYS["submitter"]))
    for metadata in ((), bearer(KEYS["reader"])):
        with pytest.raises(grpc.aio.AioRpcError):
            await gw.returns.SubmitReturn(_submit(), metadata=metadata)
    # Refusals made by the interceptors are counted before the status goes out: no waiting needed.
    assert _count(SUBMIT, "OK") == ok + 1
    assert _count(SUBMIT, "UNAUTHENTICATED") == unauth + 1
    assert _count(SUBMIT, "PERMISSION_DENIED") == denied + 1


async def _counted(method: str, code: str, expected: float) -> None:
    for _ in range(1000):
        if _count(method, code) >= expected:
            break
        await asyncio.sleep(0.01)
    assert _count(method, code) == expected


async def test_streaming_rpcs_are_authenticated_and_mapped(gw: Running) -> None:
    async def requests() -> AsyncIterator[returns_pb2.SubmitReturnRequest]:
        for ref in ("a", "b"):
            yield returns_pb2.SubmitReturnRequest(client_reference=ref)

    results = [r async for r in gw.returns.SubmitReturns(requests(), metadata=bearer(KEYS["beta_submitter"]))]
    assert [(r.client_reference, r.return_id) for r in results] == [("a", "beta"), ("b", "beta")]

    # The server refuses before reading; a client still writing would race its own INTERNAL, so write nothing.
    anonymous = gw.returns.SubmitReturns()
    await anonymous.done_writing()
    assert await anonymous.code() == grpc.StatusCode.UNAUTHENTICATED

    watch = gw.returns.WatchSyncEvents(returns_pb2.WatchSyncEventsRequest(), metadata=bearer(KEYS["reader"]))
    assert [e.sequence async for e in watch] == [1, 2, 3]

    seen = []
    failing = gw.returns.WatchSyncEvents(
        returns_pb2.WatchSyncEventsRequest(return_ids=["fail"]), metadata=bearer(KEYS["reader"])
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in failing:
            seen.append(event.sequence)
    assert seen == [1]
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert _trailing(info.value, "x-request-id")


async def test_deadline_propagation_helper(gw: Running) -> None:
    without = await gw.returns.GetReturnStatus(
        returns_pb2.GetReturnStatusRequest(return_id="R-1"), metadata=bearer(KEYS["reader"])
    )
    assert without.return_id == "none"
    with_deadline = await gw.returns.GetReturnStatus(
        returns_pb2.GetReturnStatusRequest(return_id="R-1"), metadata=bearer(KEYS["reader"]), timeout=30
    )
    # grpc pads the propagated deadline slightly.
    assert 25.0 < float(with_deadline.return_id) <= 31.0


@pytest.mark.parametrize("open_on_loopback", [False, True])
async def test_reflection_needs_a_credential_unless_opened_on_loopback(open_on_loopback: bool) -> None:
    from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

    config = security_config(reflection_open_on_loopback=open_on_loopback).with_open_reflection("127.0.0.1")
    authenticator = Authenticator(config, env={HMAC_ENV: HMAC_SECRET})
    server = grpc.aio.server(interceptors=build_interceptors(config, authenticator=authenticator))
    reflection.enable_server_reflection((reflection.SERVICE_NAME,), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            if not open_on_loopback:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    _ = [r async for r in stub.ServerReflectionInfo(ask())]
                assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            for role in ("reader", "auditor"):
                replies = [r async for r in stub.ServerReflectionInfo(ask(), metadata=bearer(KEYS[role]))]
                names = [s.name for s in replies[0].list_services_response.service]
                assert reflection.SERVICE_NAME in names
            if open_on_loopback:
                replies = [r async for r in stub.ServerReflectionInfo(ask())]
                assert replies[0].list_services_response.service
    finally:
        await server.stop(None)


def test_open_reflection_is_refused_off_loopback() -> None:
    config = security_config(reflection_open_on_loopback=True)
    with pytest.raises(ConfigError, match="not a loopback address"):
        config.with_open_reflection("0.0.0.0")
    with pytest.raises(PydanticValidationError, match="only health and reflection"):
        security_config(open_methods=["/returnbridge.api.v1.AdminService/QueryAudit"])
