"""The webhook receiver: authenticates an ERP's notification and wakes the poller for that target and feed.

Order of checks, cheapest and least revealing first: body size (413), signature headers (401), key id
(401), timestamp in the replay window (401), the body within the read timeout (408), HMAC (401), the ERP's payload shape (400 / 422); then the poller
is woken, and only then are signature and event id checked against the replay marks (409 replayed /
duplicate; 503 when the marks cannot be written, so the sender retries). Tenant and target come from the key,
never from the body. Nothing is written but the replay marks; a notification is a hint, the poller reads the
ERP's own feed, so a replay that wakes a poll changes nothing (the poller coalesces wakes, so replays cost
at most one extra poll per poll).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from nats.errors import Error as NatsError

from returnbridge.inbound.payloads import PayloadError, parse_notification
from returnbridge.inbound.replay import ReplayGuard
from returnbridge.observability.push_metrics import count_notification
from returnbridge.webhook_signing import SignatureError, check_timestamp, read_headers, signature_matches

__all__ = ["PATH", "HintSink", "InboundReceiver", "ReceiverKey"]

log = logging.getLogger(__name__)

PATH = "/inbound/v1/notifications"


class HintSink(Protocol):
    """Where a valid notification goes (the poller); returns False when it polls no such target."""

    def wake(self, target: str, kind: str, occurred_at: float | None) -> bool: ...


@dataclass(frozen=True, slots=True)
class ReceiverKey:
    """A resolved credential: its secret and the tenant, target and ERP its notifications are for."""

    key_id: str
    secret: bytes
    tenant: str
    target: str
    erp: str


class _Refused(Exception):
    def __init__(self, status: int, reason: str, message: str, erp: str = "") -> None:
        super().__init__(message)
        self.status, self.reason, self.erp = status, reason, erp


class InboundReceiver:
    """Args:
    keys: credentials by key id.
    sink: wakes the poller.
    replay: the shared replay marks.
    max_body_bytes: larger bodies are refused with 413 before they are read.
    window_seconds: how far a timestamp may be from now.
    read_timeout_seconds: a body not fully received by then is refused with 408 (a stalled sender would
        otherwise hold its connection for ever).
    clock: unix seconds (tests pass a fixed clock).
    """

    def __init__(
        self,
        keys: dict[str, ReceiverKey],
        sink: HintSink,
        replay: ReplayGuard,
        *,
        max_body_bytes: int = 64 * 1024,
        window_seconds: float = 300.0,
        read_timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._sink = sink
        self._replay = replay
        self._max_body = max_body_bytes
        self._window = window_seconds
        self._read_timeout = read_timeout_seconds
        self._clock = clock
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        # client_max_size makes aiohttp itself answer 413 for a body streamed past the limit.
        app = web.Application(client_max_size=self._max_body)
        app.add_routes([web.post(PATH, self._handle)])
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the bound port."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            key, kinds, event = await self._check(request)
        except _Refused as refused:
            count_notification(refused.erp, "refused", refused.reason)
            log.info("inbound notification refused (%s): %s", refused.reason, refused)
            return web.json_response(
                {"error": refused.reason, "message": str(refused)}, status=refused.status
            )
        count_notification(key.erp, "accepted")
        return web.json_response({"accepted": True, "event": event, "feeds": list(kinds)}, status=202)

    async def _check(self, request: web.Request) -> tuple[ReceiverKey, tuple[str, ...], str]:
        if request.content_length is not None and request.content_length > self._max_body:
            raise _Refused(413, "too_large", f"the body is larger than {self._max_body} bytes")
        try:
            signed = read_headers(request.headers)
        except SignatureError as exc:
            raise _Refused(401, exc.reason, str(exc)) from None
        key = self._keys.get(signed.key_id)
        if key is None:
            raise _Refused(401, "unknown_key", "unknown key id")
        try:
            check_timestamp(signed.timestamp, self._clock(), self._window)
        except SignatureError as exc:
            raise _Refused(401, exc.reason, str(exc), key.erp) from None
        try:
            async with asyncio.timeout(self._read_timeout):
                body = await request.read()
        except TimeoutError:
            raise _Refused(
                408, "read_timeout", f"the body was not received within {self._read_timeout:g} s", key.erp
            ) from None
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(
                413, "too_large", f"the body is larger than {self._max_body} bytes", key.erp
            ) from None
        if not signature_matches(key.secret, signed, body):
            raise _Refused(401, "bad_signature", "the signature does not match the body", key.erp)
        try:
            note = parse_notification(key.erp, body)
        except PayloadError as exc:
            status = 422 if exc.reason == "unsupported_event" else 400
            raise _Refused(status, exc.reason, str(exc), key.erp) from None
        # Wake first: a wake is only a hint (the poll reads the ERP's feed and skips what it stored), so a
        # replay that wakes a poll changes nothing, while waiting for the replay marks would put a KV round
        # trip (or a slow or unavailable bucket) between every push and its poll.
        for kind in note.kinds:
            if not self._sink.wake(key.target, kind, note.occurred_at):
                raise _Refused(422, "unknown_target", f"target {key.target!r} is not polled", key.erp)
        # Both marks in one round trip: each is set either way, and a replay is told apart from a resend.
        try:
            new_signature, new_event = await asyncio.gather(
                self._replay.first_time("sig", key.key_id, signed.signature),
                self._replay.first_time("evt", key.key_id, note.event_id),
            )
        except (NatsError, TimeoutError) as exc:  # the poll is woken already; a 5xx makes the sender retry
            raise _Refused(
                503, "replay_marks_unavailable", f"replay marks not written: {exc!r}", key.erp
            ) from None
        if not new_signature:
            raise _Refused(409, "replayed", "this signature was already received", key.erp)
        if not new_event:
            raise _Refused(409, "duplicate", f"event {note.event_id!r} was already received", key.erp)
        return key, note.kinds, note.event
