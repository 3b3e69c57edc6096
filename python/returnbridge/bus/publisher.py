"""Publishes delivery work with Nats-Msg-Id dedup and fire-and-forget events on the event stream."""

from __future__ import annotations

from collections.abc import Mapping

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry.trace import SpanKind

from returnbridge.bus import subjects
from returnbridge.bus.link import require_link
from returnbridge.bus.trace_context import inject, tracer

MSG_ID = "Nats-Msg-Id"


class Publisher:
    """One per process; safe to share between concurrent requests (nats.py multiplexes the replies).

    Args:
        nc: connected NATS client.
        js: its JetStream context.
        timeout: PubAck wait in seconds.
    """

    def __init__(self, nc: NatsClient, js: JetStreamContext, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._js = js
        self._timeout = timeout

    def require_link(self) -> None:
        """Raise BusUnavailableError at once while the NATS link is down (see ``bus.link.require_link``)."""
        require_link(self._nc)

    async def publish_delivery(
        self,
        target: str,
        tenant: str,
        payload: bytes,
        *,
        msg_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> PubAck:
        """Store one delivery message; returns after JetStream acknowledged it (``duplicate`` set on dedup)."""
        subject = subjects.deliver(target, tenant)
        with tracer().start_as_current_span(
            f"publish {subjects.DELIVER_STREAM}", kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            # The worker continues this trace from the message's traceparent header.
            hdrs = inject(dict(headers or {}))
            hdrs[MSG_ID] = msg_id
            return await self._js.publish(
                subject, payload, timeout=self._timeout, stream=subjects.DELIVER_STREAM, headers=hdrs
            )

    async def publish_dead_letter(
        self, target: str, tenant: str, payload: bytes, *, msg_id: str, headers: Mapping[str, str]
    ) -> PubAck:
        hdrs = inject(dict(headers))
        hdrs[MSG_ID] = msg_id
        return await self._js.publish(
            subjects.dlq(target, tenant),
            payload,
            timeout=self._timeout,
            stream=subjects.DLQ_STREAM,
            headers=hdrs,
        )

    async def publish_event(self, subject: str, payload: bytes) -> None:
        """Publish without waiting for a PubAck: RB_EVENTS captures it; events are notifications, state lives in KV.

        The event carries the current trace (``traceparent`` header), so a watcher can join the return's trace.
        """
        with tracer().start_as_current_span(
            f"publish {subject.rsplit('.', 1)[0]}", kind=SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "nats")
            span.set_attribute("messaging.destination.name", subject)
            await self._nc.publish(subject, payload, headers=inject({}))
