"""grpc.aio server interceptors: request id + error mapping + metrics, authentication, rate limits, RBAC."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

import grpc
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.audit.redact import redact_text
from returnbridge.bus.trace_context import extract, tracer
from returnbridge.domain.context import (
    maybe_principal,
    new_request_id,
    set_principal,
    set_request_id,
)
from returnbridge.errors import (
    PermissionDeniedError,
    RateLimitedError,
    ReturnBridgeError,
    ValidationError,
)
from returnbridge.gateway.admission import Admission
from returnbridge.gateway.auth import Authenticator
from returnbridge.gateway.malformed import MalformedLog, MalformedRequest, refusal, tolerant
from returnbridge.gateway.ratelimit import RateLimiter
from returnbridge.gateway.rbac import authorize
from returnbridge.gateway.request_limits import check_request
from returnbridge.gateway.security_config import SecurityConfig
from returnbridge.observability.alerts import Alerter
from returnbridge.observability.metrics import count_api_call, count_rejection
from returnbridge.services.errors import RefusedItem, as_status_error, status_for_error

__all__ = [
    "AuthInterceptor",
    "ErrorsInterceptor",
    "RateLimitInterceptor",
    "RbacInterceptor",
    "RequestLimitsInterceptor",
    "build_interceptors",
    "remaining_timeout",
    "status_for_error",
]

log = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "x-request-id"
# Server pushback for gRPC's built-in retries (gRFC A6): milliseconds to wait before the next attempt.
PUSHBACK_HEADER: Final = "grpc-retry-pushback-ms"
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Around = Callable[[str, grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]
Check = Callable[[Any, grpc.aio.ServicerContext], None]


def _reset(token: contextvars.Token[Any]) -> None:
    try:
        token.var.reset(token)
    except ValueError:
        # A stream closed from another context (e.g. cancelled by the runtime): that context is going away.
        pass


def _wrap_handler(
    handler: grpc.RpcMethodHandler,
    method: str,
    around: Around,
    check: Check | None = None,
    deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    """The same handler with every call run inside ``around(method, context)``, for all four RPC shapes.

    ``check`` sees each request message (each one of a request stream) inside ``around`` before the handler;
    ``deserializer`` replaces the handler's own. In a request stream answered item by item (``_PER_ITEM_STREAMS``)
    an item ``check`` refuses reaches the handler as a ``RefusedItem`` instead of ending the call: a bulk client
    gets that item's error and the rest of its stream is served (and the server never ends a call while the
    client is still writing, where grpc's aio client reports INTERNAL "Internal error from Core" instead of our
    status).
    """
    per_item = method in _PER_ITEM_STREAMS

    def checked(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if check is None:
            return request
        if hasattr(request, "__aiter__"):

            async def each() -> AsyncIterator[Any]:
                async for item in request:
                    if isinstance(item, RefusedItem):
                        yield item  # refused by an outer interceptor already
                        continue
                    try:
                        check(item, context)
                    except ValidationError as refused:
                        if not per_item:
                            raise
                        yield RefusedItem(item, refused)
                        continue
                    yield item

            return each()
        check(request, context)
        return request

    def unary_response(behavior: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with around(method, context):
                result = behavior(checked(request, context), context)
                return await result if inspect.isawaitable(result) else result

        return run

    def stream_response(behavior: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with around(method, context):
                result = behavior(checked(request, context), context)
                if hasattr(result, "__aiter__"):
                    async for item in result:
                        yield item
                elif inspect.isawaitable(result):
                    # Handlers that write with context.write() and return None.
                    await result

        return run

    kwargs = {
        "request_deserializer": deserializer or handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kwargs)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kwargs)


def _cached(
    owner: object, method: str, handler: grpc.RpcMethodHandler, wrap: Callable[[], grpc.RpcMethodHandler]
) -> grpc.RpcMethodHandler:
    """The wrapped handler of ``method``, built once: grpc hands every call of a method the same registered handler
    (and so the inner interceptors, which cache too, the same wrapped one), so only a changed handler rebuilds."""
    cache: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = owner.__dict__.setdefault(
        "_wrapped_handlers", {}
    )
    hit = cache.get(method)
    if hit is not None and hit[0] is handler:
        return hit[1]
    wrapped = wrap()
    cache[method] = (handler, wrapped)
    return wrapped


class _WrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        return _cached(self, method, handler, lambda: _wrap_handler(handler, method, self.around, self.check))

    def around(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    #: Run on every request message before the servicer sees it (None: no check).
    check: Check | None = None


def _code_name(context: grpc.aio.ServicerContext, default: str) -> str:
    try:
        code = context.code()
    except (NotImplementedError, AttributeError):
        return default
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):
        for candidate in grpc.StatusCode:
            if candidate.value[0] == code:
                return str(candidate.name)
    return default


async def _abort_with(
    context: grpc.aio.ServicerContext, exc: ReturnBridgeError, rid: str, method: str
) -> None:
    status = status_for_error(exc, rid)
    if exc.grpc_status == grpc.StatusCode.INTERNAL:
        log.error("request %s %s failed: %s", rid, method, redact_text(str(exc)))
    trailing: tuple[tuple[str, str], ...] = (*status.trailing_metadata, (REQUEST_ID_HEADER, rid))
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        # gRPC's own retry policy (the service config we ship) waits this long instead of its backoff.
        trailing = (*trailing, (PUSHBACK_HEADER, str(math.ceil(retry_after * 1000))))
    await context.abort(status.code, status.details, trailing_metadata=trailing)


class ErrorsInterceptor(_WrappingInterceptor):
    """Outermost: request id in, request id out, our errors -> their status, anything else -> INTERNAL, metrics.

    It also decodes requests tolerantly, so bytes that are no valid request message are INVALID_ARGUMENT here,
    before authentication, logged once per peer host per ``malformed_log.interval``.
    """

    def __init__(self, malformed_log: MalformedLog | None = None) -> None:
        self.malformed_log = malformed_log or MalformedLog()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method

        def refuse_malformed(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, MalformedRequest):
                self.malformed_log.note(context.peer() or "unknown", method)
                refused = refusal(method)
                if method in _SUBMIT_METHODS:
                    _count_refused_submission(refused)
                raise refused

        return _cached(
            self,
            method,
            handler,
            lambda: _wrap_handler(
                handler, method, self.around, refuse_malformed, tolerant(handler.request_deserializer)
            ),
        )

    @asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """One SERVER span per call (continuing the caller's trace when it sent a W3C traceparent), the request id,
        error mapping and the API metric; one context manager, as this runs on every call."""
        carrier: dict[str, str] = {}
        incoming = ""
        for key, value in context.invocation_metadata() or ():
            key = key.lower()
            if key == REQUEST_ID_HEADER:
                incoming = value if isinstance(value, str) else value.decode(errors="replace")
            elif key in _TRACE_HEADERS:
                carrier[key] = value if isinstance(value, str) else value.decode(errors="replace")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else new_request_id()
        # The span is attached by hand, not with start_as_current_span: when a client cancels a stream, grpc may
        # close the response generator from another context, where OpenTelemetry's detach logs an ERROR with a
        # traceback; ``_reset`` lets that context go quietly, as for our own context variables.
        span = tracer().start_span(method.lstrip("/"), context=extract(carrier), kind=SpanKind.SERVER)
        span_token = otel_context.attach(set_span_in_context(span))
        try:
            span.set_attribute("rpc.system", "grpc")
            span.set_attribute("rpc.method", method)
            rid_token = set_request_id(rid)
            # Clear anything a previous call left in this task's context.
            principal_token = set_principal(None)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, rid),))
            code = "OK"
            counted = False

            def count(name: str) -> None:
                # Counted before our abort sends the status, so a client that saw the error can see the metric.
                nonlocal code, counted
                code, counted = name, True
                count_api_call(method, name)

            try:
                yield
                # A servicer may also end a call with context.set_code() and a normal return.
                code = _code_name(context, "OK")
            except grpc.aio.AbortError:
                # The servicer aborted with its own status; keep it.
                code = _code_name(context, "UNKNOWN")
                raise
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except ReturnBridgeError as exc:
                count(exc.grpc_status.name)
                await _abort_with(context, exc, rid, method)
            except NotImplementedError:
                # Generated base servicers raise this for RPCs nobody implemented yet.
                count("UNIMPLEMENTED")
                await context.abort(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{method} is not implemented",
                    trailing_metadata=((REQUEST_ID_HEADER, rid),),
                )
            except Exception as exc:
                span.record_exception(exc)
                # The bus unreachable mid-call (a PubAck that never came) is UNAVAILABLE: safe to retry.
                if (mapped := as_status_error(exc)) is not None:
                    count(mapped.grpc_status.name)
                    await _abort_with(context, mapped, rid, method)
                count("INTERNAL")
                log.exception("request %s %s failed unexpectedly", rid, method)
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error (request id {rid})",
                    trailing_metadata=((REQUEST_ID_HEADER, rid),),
                )
            finally:
                if not counted:
                    count_api_call(method, code)
                _reset(principal_token)
                _reset(rid_token)
                span.set_attribute("rpc.grpc.status_code", code)
                if code not in ("OK", "NOT_FOUND", "ALREADY_EXISTS", "CANCELLED"):
                    span.set_status(Status(StatusCode.ERROR, code))
        finally:
            span.end()
            _reset(span_token)


_TRACE_HEADERS: Final = frozenset({"traceparent", "tracestate", "baggage"})


class AuthInterceptor(_WrappingInterceptor):
    """Authenticates every call except open methods and puts the principal in the call context."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    @asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        if self._authenticator.is_open(method):
            yield
            return
        principal = self._authenticator.authenticate(context.invocation_metadata(), context.auth_context())
        token = set_principal(principal)
        try:
            yield
        finally:
            _reset(token)


class AdmissionInterceptor(_WrappingInterceptor):
    """Innermost: a submission waits for a tenant-fair work slot, or is shed (see ``gateway.admission``)."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    @asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        principal = maybe_principal()
        async with self._admission.slot(method, principal.tenant_id if principal is not None else "-"):
            yield


class RateLimitInterceptor(_WrappingInterceptor):
    """Charges the caller's buckets and holds a concurrency slot for the length of the call.

    With an ``alerter``, refusals at the concurrency cap raise a ``backlog`` alert (the server is saturated),
    resolved once in-flight calls fall back to half the cap. Alerts are sent in the background so a refusal is
    never slowed down by a webhook.
    """

    BACKLOG_KEY: Final = "grpc:concurrent_rpcs"

    def __init__(
        self, limiter: RateLimiter, authenticator: Authenticator, *, alerter: Alerter | None = None
    ) -> None:
        self._limiter = limiter
        self._authenticator = authenticator
        self._alerter = alerter
        self._saturated = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def _background(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("backlog alert failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        if self._authenticator.is_open(method):
            yield
            return
        principal = maybe_principal()
        if principal is not None:
            self._limiter.check_rate(principal)
        try:
            held = self._limiter.acquire_slot(method)
        except RateLimitedError as exc:
            if self._alerter is not None and not self._saturated:
                self._saturated = True
                self._background(
                    self._alerter.alert(
                        kind="backlog",
                        key=self.BACKLOG_KEY,
                        severity="warning",
                        summary=str(exc),
                        details={"max_concurrent_rpcs": str(self._limiter.config.max_concurrent_rpcs)},
                    )
                )
            raise
        try:
            yield
        finally:
            if held:
                self._limiter.release_slot()
            if self._saturated and self._limiter.in_flight <= self._limiter.config.max_concurrent_rpcs // 2:
                self._saturated = False
                if self._alerter is not None:
                    self._background(self._alerter.resolve(kind="backlog", key=self.BACKLOG_KEY))


class RbacInterceptor(_WrappingInterceptor):
    """Refuses calls outside the principal's permissions (and unknown RPCs); audits each refusal."""

    def __init__(self, authenticator: Authenticator, *, audit: AuditLog | None = None) -> None:
        self._authenticator = authenticator
        self._audit = audit

    @asynccontextmanager
    async def around(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        if self._authenticator.is_open(method):
            yield
            return
        principal = maybe_principal()
        if principal is None:
            raise PermissionDeniedError(f"{method} needs an authenticated caller")
        try:
            authorize(principal, method)
        except PermissionDeniedError as exc:
            await self._record_denial(method, principal.tenant_id, str(exc))
            raise
        yield

    async def _record_denial(self, method: str, tenant_id: str, reason: str) -> None:
        if self._audit is None:
            return
        try:
            await self._audit.record(
                action="access.denied",
                object_type="rpc",
                object_id=method,
                tenant_id=tenant_id,
                details={"reason": reason},
            )
        except Exception:
            # A failing audit store must not turn a clean PERMISSION_DENIED into INTERNAL.
            log.exception("could not audit denied call to %s", method)


class RequestLimitsInterceptor(_WrappingInterceptor):
    """Innermost: every request message meets ``request_limits.RULES`` before the servicer sees it (a refused item
    of a bulk stream reaches it as a ``RefusedItem``)."""

    def around(self, method: str, context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[None]:
        return _no_context(method, context)

    @staticmethod
    def check(request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            check_request(request)
        except ValidationError as refused:
            if isinstance(request, returns_pb2.SubmitReturnRequest):  # one item of SubmitReturns too
                _count_refused_submission(refused)
            raise


# Refusals of these at the edge are refused submissions too (KPIs: rb_rejected_total, processing accuracy).
_SUBMIT_METHODS: Final = frozenset(
    f"/{returns_pb2.DESCRIPTOR.services_by_name['ReturnsService'].full_name}/{name}"
    for name in ("SubmitReturn", "SubmitReturns")
)


# Request streams whose every item gets its own result (an ItemError for a refused one); see ``_wrap_handler``.
_PER_ITEM_STREAMS: Final = frozenset(
    {f"/{returns_pb2.DESCRIPTOR.services_by_name['ReturnsService'].full_name}/SubmitReturns"}
)


def _count_refused_submission(refused: ValidationError) -> None:
    count_rejection(v.rule for v in refused.violations)


@asynccontextmanager
async def _no_context(method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    yield


def build_interceptors(
    config: SecurityConfig,
    *,
    authenticator: Authenticator | None = None,
    limiter: RateLimiter | None = None,
    audit: AuditLog | None = None,
    alerter: Alerter | None = None,
    admission: Admission | None = None,
) -> list[grpc.aio.ServerInterceptor]:
    """Interceptors for ``grpc.aio.server(interceptors=...)``, outermost first.

    Order: errors/request id/metrics (and malformed bytes), authentication, rate limits, RBAC, request field
    limits. Rate limits run before RBAC so a principal hammering a forbidden RPC is still throttled. ``audit`` records permission denials; ``alerter``
    raises a ``backlog`` alert while the concurrency cap refuses calls.

    Raises:
        ConfigError: JWT or TLS key material in ``config`` cannot be loaded.
    """
    authenticator = authenticator or Authenticator(config)
    limiter = limiter or RateLimiter(config.rate_limits)
    chain: list[grpc.aio.ServerInterceptor] = [
        ErrorsInterceptor(),
        AuthInterceptor(authenticator),
        RateLimitInterceptor(limiter, authenticator, alerter=alerter),
        RbacInterceptor(authenticator, audit=audit),
        RequestLimitsInterceptor(),
    ]
    if admission is not None:
        chain.append(AdmissionInterceptor(admission))  # after RBAC: a refused call never takes a slot
    return chain


def remaining_timeout(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds left before the caller's deadline (never negative), or None when the caller set none.

    Pass it on to downstream calls (NATS requests, ERP HTTP timeouts) so work stops when nobody waits for it.
    """
    remaining = context.time_remaining()
    if remaining is None or math.isinf(remaining) or remaining > 1e8:
        return None
    return max(0.0, float(remaining))
