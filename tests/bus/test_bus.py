"""Subjects, idempotent stream/bucket setup with explicit limits, and the KV compare-and-set loop."""

from __future__ import annotations

import asyncio

import pydantic
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, StorageType

from returnbridge.bus import subjects
from returnbridge.bus.kv import get_json, keys_matching, modify_json
from returnbridge.bus.streams import StreamLimits, StreamsConfig, ensure_streams
from returnbridge.errors import ValidationError


def test_subjects_are_built_from_safe_tokens() -> None:
    assert subjects.deliver("netsuite-us", "acme") == "rb.deliver.netsuite-us.acme"
    assert subjects.dlq("sap", "acme") == "rb.dlq.sap.acme"
    assert subjects.status("acme") == "rb.status.acme"
    assert subjects.alerts("critical") == "rb.alerts.critical"
    for bad in ("a.b", "*", ">", "a b", ""):
        with pytest.raises(ValidationError):
            subjects.deliver("sap", bad)
    with pytest.raises(ValidationError):
        subjects.alerts("loud")
    assert subjects.subject_tenant("rb.dlq.sap.acme") == "acme"
    assert subjects.subject_target("rb.dlq.sap.acme") == "sap"


def test_kv_tokens_round_trip_any_id() -> None:
    for value in ("R-1", "returns/2024 #7", "ü.x", "=xabc"):
        token = subjects.kv_token(value)
        assert "." not in token and " " not in token
        assert subjects.kv_untoken(token) == value
    assert subjects.inventory_key("acme", "SKU 1", "DAL1", "", "sap") == "acme.=x534b552031.DAL1._.sap"


async def test_ensure_streams_is_idempotent_with_explicit_limits(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    config = StreamsConfig(deliver=StreamLimits(max_msgs=1234, max_bytes=1 << 20, max_age_seconds=600))
    await ensure_streams(js, config)
    buckets = await ensure_streams(js, config)
    assert set(buckets) == {
        "rb_idempotency",
        "rb_sync_state",
        "rb_inventory",
        "rb_cursors",
        "rb_rma_index",
        "rb_serials",
        "rb_inbound_seen",
        "rb_incidents",
    }
    info = await js.stream_info(subjects.DELIVER_STREAM)
    assert info.config.max_msgs == 1234 and info.config.max_bytes == 1 << 20
    assert info.config.discard == DiscardPolicy.NEW and info.config.storage == StorageType.FILE
    assert info.config.duplicate_window == 120
    events = await js.stream_info(subjects.EVENTS_STREAM)
    assert set(events.config.subjects or []) == {"rb.status.>", "rb.inventory.>", "rb.docstatus.>"}
    with pytest.raises(pydantic.ValidationError, match="duplicate_window"):
        StreamsConfig(deliver=StreamLimits(max_age_seconds=60))
    # Changed limits are applied on the next start.
    await ensure_streams(js, StreamsConfig(deliver=StreamLimits(max_msgs=99)))
    assert (await js.stream_info(subjects.DELIVER_STREAM)).config.max_msgs == 99


async def test_full_stream_refuses_instead_of_dropping(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    await ensure_streams(js, StreamsConfig(deliver=StreamLimits(max_msgs=2)))
    await js.publish("rb.deliver.sap.acme", b"1")
    await js.publish("rb.deliver.sap.acme", b"2")
    with pytest.raises(Exception, match="maximum messages exceeded"):
        await js.publish("rb.deliver.sap.acme", b"3")


async def test_modify_json_never_loses_concurrent_updates(nats_client: NatsClient) -> None:
    kv = (await ensure_streams(nats_client.jetstream()))[subjects.SYNC_STATE_BUCKET]

    def add(item: int):  # type: ignore[no-untyped-def]
        def change(record):  # type: ignore[no-untyped-def]
            record = record or {"items": []}
            record["items"].append(item)
            return record

        return change

    await asyncio.gather(*(modify_json(kv, "t.r", add(i)) for i in range(40)))
    record, revision = await get_json(kv, "t.r")
    assert record is not None and sorted(record["items"]) == list(range(40))
    assert revision > 0
    assert await modify_json(kv, "t.r", lambda r: None) == record
    await kv.put("u.r", b"{}")
    assert sorted(await keys_matching(kv, "t.*")) == ["t.r"]
    assert await keys_matching(kv, "nobody.*") == []
