"""A record's dedup id: the same fact written twice (a writer that died before its own ack) is stored once."""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import StorageType, StreamConfig

from returnbridge.audit.log import AUDIT_DUPLICATE_WINDOW, AuditLog
from returnbridge.audit.verify import verify_stream
from returnbridge.bus.embedded import EmbeddedNatsServer


async def _record(log: AuditLog, object_id: str, dedup_id: str | None = None) -> int:
    return await log.record(
        action="return.submitted",
        object_type="return",
        object_id=object_id,
        tenant_id="acme",
        actor="rms",
        dedup_id=dedup_id,
    )


async def test_a_second_record_with_the_same_dedup_id_is_dropped(nats_server: EmbeddedNatsServer) -> None:
    # Two writers, as two processes: the second does not know the first one's tail.
    conns = [await nats.connect(nats_server.url) for _ in range(2)]
    try:
        first, second = [await AuditLog.open(nc.jetstream()) for nc in conns]
        seq = await _record(first, "R1:1", "submitted-R1-1")
        assert await _record(second, "R1:1", "submitted-R1-1") == seq
        # The chain goes on after the dropped one, from either writer.
        assert await _record(second, "R2:1") == seq + 1
        assert await _record(first, "R3:1", "submitted-R3-1") == seq + 2
        assert await first.last_sequence() == seq + 2
        report = await verify_stream(first)
        assert report.ok and report.checked == seq + 2, report.problems
    finally:
        for nc in conns:
            await nc.close()


async def test_a_duplicate_inside_a_pipeline_keeps_the_chain(nats_client: NatsClient) -> None:
    # One pipeline carries entries with a dedup id (their Nats-Msg-Id) next to entries without (their hash):
    # each entry's Nats-Expected-Last-Msg-Id must name its predecessor's id, whichever it is.
    log = await AuditLog.open(nats_client.jetstream())
    seqs = await asyncio.gather(
        _record(log, "A:1", "a"),
        _record(log, "B:1"),
        _record(log, "A:1", "a"),
        _record(log, "C:1", "c"),
        _record(log, "D:1"),
    )
    assert seqs[2] == seqs[0]
    assert sorted({*seqs}) == list(range(1, 5)), seqs
    assert await log.last_sequence() == 4
    report = await verify_stream(log)
    assert report.ok and report.checked == 4, report.problems


async def test_the_audit_stream_remembers_dedup_ids_longer_than_a_scribe_restart(
    nats_client: NatsClient,
) -> None:
    js = nats_client.jetstream()
    log = await AuditLog.open(js)
    info = await js.stream_info(log.stream)
    assert info.config.duplicate_window == AUDIT_DUPLICATE_WINDOW


async def test_an_existing_audit_stream_gets_the_longer_window(nats_client: NatsClient) -> None:
    # A log created before dedup ids had the server's default window (2 min).
    js = nats_client.jetstream()
    await js.add_stream(
        StreamConfig(
            name="RB_AUDIT",
            subjects=["rb.audit.>"],
            deny_delete=True,
            deny_purge=True,
            storage=StorageType.FILE,
        )
    )
    log = await AuditLog.open(js)
    info = await js.stream_info(log.stream)
    assert info.config.duplicate_window == AUDIT_DUPLICATE_WINDOW
    assert info.config.deny_delete and info.config.deny_purge


async def test_an_entry_after_a_duplicate_whose_original_is_the_tail_is_rechained(
    nats_server: EmbeddedNatsServer,
) -> None:
    # JetStream answers a duplicate before it checks Nats-Expected-Last-Sequence. When another writer stored the
    # original as the very last entry, the copy's successor in the same pipeline passes both of its checks (the
    # last sequence is where it expected its predecessor, and the last message id is the copy's id), so it would
    # be stored chained to the copy, which was never stored: a broken link (seen after a NATS restart in CI).
    conns = [await nats.connect(nats_server.url) for _ in range(2)]
    try:
        first, second = [await AuditLog.open(nc.jetstream()) for nc in conns]
        await _record(second, "R0:1")  # the second writer's tail is now this entry
        await _record(first, "R1:1", "submitted-R1-1")  # the original, stored after it by the other writer
        # The second writer, its tail one behind, writes the same fact again and one more entry in one pipeline.
        copy, following = await asyncio.gather(
            _record(second, "R1:1", "submitted-R1-1"), _record(second, "R2:1")
        )
        assert following == copy + 1
        report = await verify_stream(first)
        assert report.ok and report.checked == 3, report.problems
    finally:
        for nc in conns:
            await nc.close()
