"""Shared HTTP plumbing for the REST/OData connectors: pooled client, concurrency cap, error classes."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from opentelemetry import propagate, trace

from returnbridge.connectors.tally import note_request
from returnbridge.errors import (
    AmbiguousErpError,
    ErpAuthError,
    ErpError,
    PermanentErpError,
    TransientErpError,
)

# (code, message) pulled out of an ERP error body; each connector knows its ERP's error JSON.
ErrorParser = Callable[[httpx.Response], tuple[str, str]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def describe_transport_error(exc: Exception) -> str:
    """What went wrong on the wire, in words: ERP errors reach tenants (dead letters), class names must not."""
    return str(exc) or "the connection failed without a message"


_describe = describe_transport_error


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify_status(response: httpx.Response, *, erp: str, code: str, message: str) -> ErpError:
    """Map an HTTP error response to the exception tree, keeping the ERP's own code and message."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    kwargs: dict[str, Any] = {"erp": erp, "code": code, "http_status": status, "retry_after": retry_after}
    text = message or response.reason_phrase or f"HTTP {status}"
    if status in (401, 407):
        return ErpAuthError(text, **kwargs)
    if status in (408, 425, 429) or status >= 500:
        return TransientErpError(text, **kwargs)
    return PermanentErpError(text, **kwargs)


class HttpTransport:
    """An ``httpx.AsyncClient`` with a per-ERP-account concurrency cap and exception classification.

    The cap is shared by every flow that uses this transport, so no single flow can exhaust the
    ERP's account-wide budget (NetSuite's concurrency limit is the classic case).

    Args:
        erp: ERP family name for errors ("netsuite", "sap_s4hana", ...).
        base_url: the ERP's base URL.
        max_concurrency: requests in flight at once against this account.
        timeout: per-request timeout in seconds (connect, read, write, pool).
        error_parser: pulls (code, message) from an error response body.
        client: inject a prebuilt client (tests may pass one with ``httpx.MockTransport``).
    """

    def __init__(
        self,
        *,
        erp: str,
        base_url: str,
        max_concurrency: int = 10,
        timeout: float = 30.0,
        error_parser: ErrorParser | None = None,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.erp = erp
        self.timeout = timeout
        self._limit = asyncio.Semaphore(max_concurrency)
        self._error_parser = error_parser or _default_error_parser
        self.client = client or httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            headers=dict(headers or {}),
        )

    async def request(
        self, method: str, url: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; raise the classified ErpError for transport failures and error statuses."""
        response = await self.send(method, url, timeout=timeout, **kwargs)
        if response.status_code >= 400:
            raise self.error_for(response)
        return response

    async def send(
        self, method: str, url: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request and return any response; only transport failures raise."""
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(min(timeout, self.timeout))
        async with self._limit:
            note_request()
            try:
                return await self._traced(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Never reached the ERP: plainly retryable.
                raise TransientErpError(
                    f"cannot reach {self.erp}: {_describe(exc)}", erp=self.erp, code="CONNECT"
                ) from exc
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # Sent, but no answer: a write may have been applied.
                err_cls = TransientErpError if method.upper() in SAFE_METHODS else AmbiguousErpError
                raise err_cls(
                    f"no answer from {self.erp}: {_describe(exc)}", erp=self.erp, code="NO_RESPONSE"
                ) from exc
            except httpx.TransportError as exc:
                raise TransientErpError(
                    f"transport error talking to {self.erp}: {_describe(exc)}", erp=self.erp, code="TRANSPORT"
                ) from exc

    async def _traced(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One CLIENT span per ERP call; ``traceparent`` goes along (ERPs that trace can join the trace)."""
        with trace.get_tracer("returnbridge").start_as_current_span(
            f"{method.upper()} {self.erp}", kind=trace.SpanKind.CLIENT
        ) as span:
            span.set_attribute("http.request.method", method.upper())
            span.set_attribute("server.address", self.client.base_url.host)
            # The path only: query strings may carry ERP filters with customer data.
            span.set_attribute("url.path", httpx.URL(url).path or url)
            span.set_attribute("returnbridge.erp", self.erp)
            headers = dict(kwargs.pop("headers", None) or {})
            propagate.inject(headers)
            response = await self.client.request(method, url, headers=headers, **kwargs)
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {response.status_code}"))
            return response

    def error_for(self, response: httpx.Response) -> ErpError:
        try:
            code, message = self._error_parser(response)
        except ValueError:
            code, message = "", response.text[:500]
        return classify_status(response, erp=self.erp, code=code, message=message)

    async def aclose(self) -> None:
        await self.client.aclose()


def _default_error_parser(response: httpx.Response) -> tuple[str, str]:
    return str(response.status_code), response.text[:500]
