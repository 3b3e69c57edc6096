"""The webhook receiver over real HTTP with its replay marks in a real NATS KV bucket.

Every refusal is checked for its status, its reason (also counted in the metrics) and for changing nothing:
the poller is not woken.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from nats.aio.client import Client as NatsClient
from prometheus_client import REGISTRY

from returnbridge.bus import subjects
from returnbridge.bus.streams import ensure_streams
from returnbridge.inbound import PATH, InboundReceiver, ReceiverKey, ReplayGuard
from returnbridge.webhook_signing import sign

SECRET = b"s3cret-s3cret-s3cret-s3cret-0000"
NOW = 1_800_000_000.0


@dataclass
class Wakes:
    """Records what the receiver asked the poller to read (the only effect a notification has)."""

    calls: list[tuple[str, str, float | None]] = field(default_factory=list)
    targets: frozenset[str] = frozenset({"sap", "netsuite", "oracle_fusion"})

    def wake(self, target: str, kind: str, occurred_at: float | None) -> bool:
        if target not in self.targets:
            return False
        self.calls.append((target, kind, occurred_at))
        return True


@dataclass
class Served:
    url: str
    wakes: Wakes
    clock: list[float]


KEYS = {
    "k-sap": ReceiverKey("k-sap", SECRET, "acme", "sap", "sap_s4hana"),
    "k-ns": ReceiverKey("k-ns", SECRET, "acme", "netsuite", "netsuite"),
    "k-ora": ReceiverKey("k-ora", SECRET, "acme", "oracle_fusion", "oracle_fusion"),
    "k-gone": ReceiverKey("k-gone", SECRET, "acme", "retired", "netsuite"),
}


@pytest.fixture
async def served(nats_client: NatsClient) -> AsyncIterator[Served]:
    buckets = await ensure_streams(nats_client.jetstream())
    wakes, clock = Wakes(), [NOW]
    receiver = InboundReceiver(
        KEYS,
        wakes,
        ReplayGuard(buckets[subjects.INBOUND_SEEN_BUCKET]),
        max_body_bytes=4096,
        window_seconds=300,
        read_timeout_seconds=1.0,
        clock=lambda: clock[0],
    )
    port = await receiver.start("127.0.0.1", 0)
    try:
        yield Served(f"http://127.0.0.1:{port}{PATH}", wakes, clock)
    finally:
        await receiver.stop()


def sap_event(
    event_id: str = "e-1", event_type: str = "sap.s4.beh.materialstock.v1.MaterialStock.Changed.v1"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": "/default/sap.s4.beh/RB1CLNT100",
        "id": event_id,
        "time": "2027-01-15T08:00:00.000Z",
        "datacontenttype": "application/json",
        "data": {"Material": "SKU-1001", "Plant": "DAL1", "StorageLocation": "0001"},
    }


def netsuite_event(record_type: str = "creditmemo", notification_id: str = "n-1") -> dict[str, Any]:
    return {"notificationId": notification_id, "eventType": "create", "recordType": record_type, "id": "1042"}


def oracle_event(name: str = "Order Status Updated", event_id: str = "o-1") -> dict[str, Any]:
    return {
        "eventId": event_id,
        "eventName": name,
        "eventTime": "2027-01-15T08:00:00Z",
        "payload": {"HeaderId": "7"},
    }


async def post(
    url: str,
    body: bytes,
    *,
    key_id: str = "k-sap",
    secret: bytes = SECRET,
    ts: float = NOW,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    sent = sign(secret, key_id, body, int(ts)) if headers is None else headers
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=sent) as response:
        return response.status, await response.json()


def refused(erp: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "rb_inbound_notifications_total", {"erp": erp, "outcome": "refused", "reason": reason}
    )
    return value or 0.0


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


EVENT_TIME = datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp()


async def test_a_signed_notification_wakes_the_targets_feed_with_its_change_time(served: Served) -> None:
    status, body = await post(served.url, encode(sap_event()))
    assert status == 202, body
    assert body["feeds"] == ["inventory"]
    assert served.wakes.calls == [("sap", "inventory", EVENT_TIME)]


@pytest.mark.parametrize(
    ("key_id", "event", "feeds"),
    [
        (
            "k-sap",
            sap_event(event_type="sap.s4.beh.creditmemorequest.v1.CreditMemoRequest.Changed.v1"),
            ["status"],
        ),
        (
            "k-sap",
            sap_event(event_type="sap.s4.beh.customerreturnsdelivery.v1.CustomerReturnsDelivery.Changed.v1"),
            ["inventory", "status"],
        ),
        ("k-ns", netsuite_event("creditmemo"), ["status"]),
        ("k-ns", netsuite_event("inventoryadjustment"), ["inventory"]),
        ("k-ns", netsuite_event("itemReceipt"), ["inventory", "status"]),
        ("k-ora", oracle_event("Order Status Updated"), ["status"]),
        ("k-ora", oracle_event("Inventory On Hand Updated"), ["inventory"]),
    ],
)
async def test_each_erps_own_shape_is_read(
    served: Served, key_id: str, event: dict[str, Any], feeds: list[str]
) -> None:
    status, body = await post(served.url, encode(event), key_id=key_id)
    assert status == 202, body
    assert body["feeds"] == feeds
    target = KEYS[key_id].target
    assert [(t, k) for t, k, _ in served.wakes.calls] == [(target, kind) for kind in feeds]


async def test_tenant_and_target_come_from_the_key_never_the_body(served: Served) -> None:
    event = netsuite_event() | {"tenant": "beta", "target": "sap"}
    status, _ = await post(served.url, encode(event), key_id="k-ns")
    assert status == 202
    assert [t for t, _, _ in served.wakes.calls] == ["netsuite"]


def _headers(body: bytes, **changes: str) -> dict[str, str]:
    headers = sign(SECRET, "k-sap", body, int(NOW))
    for name, value in changes.items():
        header = {"key": "X-RB-Key-Id", "ts": "X-RB-Timestamp", "sig": "X-RB-Signature"}[name]
        if value:
            headers[header] = value
        else:
            del headers[header]
    return headers


BODY = encode(sap_event())


@pytest.mark.parametrize(
    ("name", "call", "status", "reason"),
    [
        ("no signature", lambda url: post(url, BODY, headers={}), 401, "missing_signature"),
        (
            "no timestamp",
            lambda url: post(url, BODY, headers=_headers(BODY, ts="")),
            401,
            "missing_signature",
        ),
        (
            "timestamp not digits",
            lambda url: post(url, BODY, headers=_headers(BODY, ts="12:00")),
            401,
            "malformed",
        ),
        (
            "signature not hex",
            lambda url: post(url, BODY, headers=_headers(BODY, sig="v1=zz")),
            401,
            "malformed",
        ),
        (
            "other scheme",
            lambda url: post(url, BODY, headers=_headers(BODY, sig="v0=" + "0" * 64)),
            401,
            "malformed",
        ),
        ("unknown key", lambda url: post(url, BODY, key_id="k-nobody"), 401, "unknown_key"),
        (
            "wrong secret",
            lambda url: post(url, BODY, secret=b"not-the-secret-not-the-secret-00"),
            401,
            "bad_signature",
        ),
        ("body changed", lambda url: post(url, BODY + b" ", headers=_headers(BODY)), 401, "bad_signature"),
        ("stale", lambda url: post(url, BODY, ts=NOW - 301), 401, "stale"),
        ("future", lambda url: post(url, BODY, ts=NOW + 301), 401, "future"),
        ("oversize", lambda url: post(url, b"{" + b" " * 5000 + b"}"), 413, "too_large"),
        ("not json", lambda url: post(url, b"<event/>"), 400, "bad_payload"),
        ("not an object", lambda url: post(url, b"[1]"), 400, "bad_payload"),
        ("nested too deeply", lambda url: post(url, b"[" * 2000 + b"]" * 2000), 400, "bad_payload"),
        (
            "nested too deeply inside data",
            lambda url: post(url, BODY[:-1] + b', "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"),
            400,
            "bad_payload",
        ),
        (
            # Signed, but the first or the last id wins depending on the parser: which event was signed?
            "a key given twice",
            lambda url: post(url, BODY[:-1] + b', "id": "e-other"}'),
            400,
            "bad_payload",
        ),
        (
            "event id a lone surrogate",
            lambda url: post(url, encode(sap_event(event_id="\ud800"))),
            400,
            "bad_payload",
        ),
        (
            "notification id a lone surrogate",
            lambda url: post(url, encode(netsuite_event(notification_id="\udcff")), key_id="k-ns"),
            400,
            "bad_payload",
        ),
        ("not cloudevents", lambda url: post(url, encode({"type": "x"})), 400, "bad_payload"),
        ("netsuite shape to an sap key", lambda url: post(url, encode(netsuite_event())), 400, "bad_payload"),
        ("sap shape to a netsuite key", lambda url: post(url, BODY, key_id="k-ns"), 400, "bad_payload"),
        (
            "oracle without payload",
            lambda url: post(
                url, encode({"eventId": "x", "eventName": "Order Status Updated"}), key_id="k-ora"
            ),
            400,
            "bad_payload",
        ),
        (
            "bad event time",
            lambda url: post(url, encode(sap_event() | {"time": "yesterday"})),
            400,
            "bad_payload",
        ),
        (
            "sap event we do not read",
            lambda url: post(
                url, encode(sap_event(event_type="sap.s4.beh.businesspartner.v1.BusinessPartner.Changed.v1"))
            ),
            422,
            "unsupported_event",
        ),
        (
            "netsuite record we do not read",
            lambda url: post(url, encode(netsuite_event("employee")), key_id="k-ns"),
            422,
            "unsupported_event",
        ),
        (
            "target not polled",
            lambda url: post(url, encode(netsuite_event()), key_id="k-gone"),
            422,
            "unknown_target",
        ),
    ],
)
async def test_each_bad_request_is_refused_clearly_and_changes_nothing(
    served: Served, name: str, call: Any, status: int, reason: str
) -> None:
    got, body = await call(served.url)
    assert (got, body["error"]) == (status, reason), (name, body)
    assert body["message"]
    assert served.wakes.calls == []


async def test_a_refusal_is_counted_by_reason(served: Served) -> None:
    before = refused("sap_s4hana", "stale")
    await post(served.url, BODY, ts=NOW - 1000)
    assert refused("sap_s4hana", "stale") == before + 1


async def test_a_replayed_request_is_refused_though_its_wake_came_first(served: Served) -> None:
    # The wake goes out before the replay marks are read (it is only a hint: the poll reads the feed and
    # skips what it stored), so a replay wakes a poll that changes nothing, and is still answered 409.
    headers = _headers(BODY)
    assert (await post(served.url, BODY, headers=headers))[0] == 202
    status, body = await post(served.url, BODY, headers=headers)
    assert (status, body["error"]) == (409, "replayed")
    assert len(served.wakes.calls) == 2


async def test_a_resent_event_under_a_fresh_signature_is_a_duplicate(served: Served) -> None:
    assert (await post(served.url, BODY))[0] == 202
    served.clock[0] = NOW + 5  # the sender retried five seconds later: new timestamp, new signature
    status, body = await post(served.url, BODY, ts=NOW + 5)
    assert (status, body["error"]) == (409, "duplicate")
    assert len(served.wakes.calls) == 2


async def test_the_poll_is_woken_even_when_the_replay_marks_cannot_be_written(
    served: Served, nats_client: NatsClient
) -> None:
    # The real bucket goes away, so the marks' KV create fails: the wake happened before it, and the sender
    # is told to retry (5xx), not that its notification was refused.
    await nats_client.jetstream().delete_key_value(subjects.INBOUND_SEEN_BUCKET)
    before = refused("sap_s4hana", "replay_marks_unavailable")
    status, body = await post(served.url, BODY)
    assert (status, body["error"]) == (503, "replay_marks_unavailable")
    assert served.wakes.calls == [("sap", "inventory", EVENT_TIME)]
    assert refused("sap_s4hana", "replay_marks_unavailable") == before + 1


async def test_event_ids_are_per_key(served: Served) -> None:
    """Two ERPs may well number their events alike; one's id does not block the other's."""
    assert (await post(served.url, encode(netsuite_event(notification_id="same")), key_id="k-ns"))[0] == 202
    event = oracle_event(event_id="same")
    assert (await post(served.url, encode(event), key_id="k-ora"))[0] == 202


async def test_a_body_streamed_past_the_limit_is_refused(served: Served) -> None:
    """No Content-Length to check up front: aiohttp's own limit stops the read."""
    body = b"{" + b" " * 8000 + b"}"

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    headers = sign(SECRET, "k-sap", body, int(NOW))
    async with (
        aiohttp.ClientSession() as session,
        session.post(served.url, data=chunks(), headers=headers) as response,
    ):
        assert response.status == 413
    assert served.wakes.calls == []


async def test_a_body_that_stalls_is_refused_after_the_read_timeout(served: Served) -> None:
    """A sender that names a longer body than it sends must not hold its connection for ever."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in sign(SECRET, "k-sap", BODY, int(NOW)).items())
    host_port = served.url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host_port}\r\n{headers}Content-Length: {len(BODY) + 100}\r\n\r\n"
        )
        writer.write(request.encode() + BODY)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        assert status_line.split()[1] == b"408", status_line
    finally:
        writer.close()
    assert served.wakes.calls == []
