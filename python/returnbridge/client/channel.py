"""A grpc.aio channel for RMS developers: shipped retry service config, keepalive, deadlines and auth metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import grpc

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "RETRY_SERVICE_CONFIG", "channel_options", "open_channel"]

#: Deadline given to every call that sets none (watch streams pass their own, usually None).
DEFAULT_TIMEOUT_SECONDS: Final = 30.0

_SERVICES: Final = ("ReturnsService", "InventoryService", "TranslationService", "AdminService")

#: Retried only when the server did not take the call (UNAVAILABLE) or shed it (RESOURCE_EXHAUSTED); every v1
#: write is idempotent (submissions by idempotency key, replays by dead-letter state), so a retry is safe.
RETRY_SERVICE_CONFIG: Final[dict[str, Any]] = {
    "methodConfig": [
        {
            "name": [{"service": f"returnbridge.api.v1.{service}"} for service in _SERVICES],
            "retryPolicy": {
                "maxAttempts": 5,
                "initialBackoff": "0.2s",
                "maxBackoff": "10s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
            },
        }
    ]
}


def channel_options(*, keepalive_seconds: float = 30.0) -> list[tuple[str, Any]]:
    """Channel arguments: retries on, the shipped service config, keepalive pings that survive idle NATs."""
    return [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(RETRY_SERVICE_CONFIG)),
        ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        # Keep pinging a channel with open watch streams but no unary calls in flight.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Each channel its own connection (grpc shares one between equal channels): N channels can reach N of
        # the server's gateway processes, which share one port.
        ("grpc.use_local_subchannel_pool", 1),
    ]


class _CallDefaults:
    """Adds ``authorization: Bearer`` and a default deadline to every call that does not set its own.

    grpc.aio files an interceptor under the first interceptor kind it is an instance of, so each call
    kind gets its own small subclass below.
    """

    def __init__(self, token: str | None, timeout: float | None) -> None:
        self._metadata: list[tuple[str, str]] = [("authorization", f"Bearer {token}")] if token else []
        self._timeout = timeout

    def _details(self, details: Any) -> Any:
        metadata = list(details.metadata or ())
        if self._metadata and not any(key == "authorization" for key, _ in metadata):
            metadata.extend(self._metadata)
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout if details.timeout is not None else self._timeout,
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )


class _UnaryUnary(_CallDefaults, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_CallDefaults, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_CallDefaults, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    async def intercept_stream_unary(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


class _StreamStream(_CallDefaults, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type hints
    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


def open_channel(
    target: str,
    *,
    token: str | None = None,
    root_certificates: bytes | None = None,
    client_certificate: tuple[bytes, bytes] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    streaming_timeout: float | None = None,
    keepalive_seconds: float = 30.0,
    extra_options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A channel to a returnbridge gateway; plaintext unless TLS material is given.

    Args:
        target: ``host:port``.
        token: API key or JWT, sent as ``authorization: Bearer <token>`` on every call.
        root_certificates: PEM CA bundle to verify the server (TLS); with it the channel is secure.
        client_certificate: ``(private_key_pem, certificate_chain_pem)`` for mutual TLS.
        timeout: deadline for unary and client-streaming calls that set none (None: no deadline).
        streaming_timeout: deadline for server-streaming calls (watches) that set none; None keeps them open.
        keepalive_seconds: interval of HTTP/2 keepalive pings.
        extra_options: more channel arguments, appended last (they win).

    Raises:
        ValueError: empty target, or a client certificate without TLS.
    """
    if not target:
        raise ValueError("target must be host:port")
    if client_certificate is not None and root_certificates is None:
        raise ValueError("a client certificate needs root_certificates (mutual TLS runs over TLS)")
    options = channel_options(keepalive_seconds=keepalive_seconds) + list(extra_options)
    interceptors: list[grpc.aio.ClientInterceptor] = [
        _UnaryUnary(token, timeout),
        _UnaryStream(token, streaming_timeout),
        _StreamUnary(token, timeout),
        _StreamStream(token, streaming_timeout),
    ]
    if root_certificates is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    key, chain = client_certificate if client_certificate is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(root_certificates, key, chain)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
