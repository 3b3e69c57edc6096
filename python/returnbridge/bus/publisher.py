"""Publishes delivery work with Nats-Msg-Id dedup and fire-and-forget events on the event stream."""

from __future__ import annotations

from collections.abc import Mapping

from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck

from returnbridge.bus import subjects
from returnbridge.bus.link import require_link

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
        hdrs = dict(headers or {})
        hdrs[MSG_ID] = msg_id
        return await self._js.publish(
            subjects.deliver(target, tenant),
            payload,
            timeout=self._timeout,
            stream=subjects.DELIVER_STREAM,
            headers=hdrs,
        )

    async def publish_dead_letter(
        self, target: str, tenant: str, payload: bytes, *, msg_id: str, headers: Mapping[str, str]
    ) -> PubAck:
        hdrs = dict(headers)
        hdrs[MSG_ID] = msg_id
        return await self._js.publish(
            subjects.dlq(target, tenant),
            payload,
            timeout=self._timeout,
            stream=subjects.DLQ_STREAM,
            headers=hdrs,
        )

    async def publish_event(self, subject: str, payload: bytes) -> None:
        """Publish without waiting for a PubAck: RB_EVENTS captures it; events are notifications, state lives in KV."""
        await self._nc.publish(subject, payload)
