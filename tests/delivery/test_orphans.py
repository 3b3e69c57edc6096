"""Reservations nobody published (delivery/orphans.py): a gateway that stopped between the admission and its
publish, on a real nats-server. The sweeper publishes the reservation's message, once, and a worker delivers it."""

from __future__ import annotations

import asyncio
from typing import Any

from delivery.pipeline_harness import Pipeline, make_order, reconnecting, stopped_submission
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.delivery.headers import H_ACCEPTED_AT, H_IDEMPOTENCY
from returnbridge.delivery.orphans import OrphanSettings, OrphanSweeper, unnamed_versions
from returnbridge.domain.context import Principal, set_principal

_FAST = OrphanSettings(after_seconds=0.5, lookback_seconds=60)


async def _stored(pipeline: Pipeline) -> list[tuple[int, dict[str, str]]]:
    """(stream sequence, headers) of every message in RB_DELIVER."""
    js = pipeline.nc.jetstream()
    info = await js.stream_info(subjects.DELIVER_STREAM)
    stored: list[tuple[int, dict[str, str]]] = []
    if not info.state.messages:
        return stored
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(subjects.DELIVER_STREAM, seq)
        stored.append((seq, dict(msg.headers or {})))
    return stored


async def _first_version(pipeline: Pipeline, return_id: str) -> dict[str, Any]:
    record = await pipeline.status.get("acme", return_id)
    assert record is not None
    return dict(record["versions"]["1"])


async def _published(pipeline: Pipeline, return_id: str) -> None:
    """Fails until the return's first version names a stored message."""
    assert (await _first_version(pipeline, return_id))["stream_sequence"]


async def _sweeper(pipeline: Pipeline) -> OrphanSweeper:
    sweeper = OrphanSweeper(pipeline.nc.jetstream(), pipeline.publisher, pipeline.status, _FAST)
    await sweeper.start()
    return sweeper


async def test_a_reservation_whose_gateway_stopped_before_the_publish_is_published_and_delivered_once(
    pipeline: Pipeline,
) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    erp = await pipeline.start_worker()
    intake = await stopped_submission(pipeline, make_order("O1"), after_publish=False)
    record = await pipeline.status.get("acme", "O1")
    assert record is not None
    entry = record["versions"]["1"]
    # Reserved, its message kept with it, nothing stored: status says ACCEPTED and nobody would publish it.
    assert entry["stream_sequence"] == 0 and entry["pending"]["headers"][H_IDEMPOTENCY]
    assert await _stored(pipeline) == []
    sweeper = await _sweeper(pipeline)
    try:

        async def delivered() -> None:
            now = await pipeline.status.get("acme", "O1")
            assert now is not None and now["documents"]["1:return_authorization"]["state"] == "DELIVERED"

        await assert_eventually(delivered, timeout=30)
        stored = await _stored(pipeline)
        assert len(stored) == 1 and sum(erp.creates.values()) == 1 and sweeper.published == 1
        seq, headers = stored[0]
        # The message the gateway would have sent: its key and acceptance time, named in the record.
        assert headers[H_IDEMPOTENCY] == entry["pending"]["headers"][H_IDEMPOTENCY]
        assert float(headers[H_ACCEPTED_AT]) == entry["accepted_at"]
        named = await _first_version(pipeline, "O1")
        assert named["stream_sequence"] == seq and "pending" not in named
        # The client's late retry is answered from it: DUPLICATE, the same message, nothing stored again.
        again = await intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("O1")))
        assert again.outcome == returns_pb2.SUBMIT_OUTCOME_DUPLICATE and again.stream_sequence == seq
        assert len(await _stored(pipeline)) == 1 and sum(erp.creates.values()) == 1
    finally:
        await sweeper.stop()


async def test_a_publish_that_landed_but_was_never_named_is_named_not_stored_twice(
    pipeline: Pipeline,
) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    await stopped_submission(pipeline, make_order("O2"), after_publish=True)
    ((seq, _),) = await _stored(pipeline)
    sweeper = await _sweeper(pipeline)
    try:
        await assert_eventually(lambda: _published(pipeline, "O2"), timeout=30)
        assert (await _first_version(pipeline, "O2"))["stream_sequence"] == seq
        # Within the duplicate window JetStream answered the republish with the stored message.
        assert [s for s, _ in await _stored(pipeline)] == [seq]
    finally:
        await sweeper.stop()


async def test_a_later_version_goes_through_once_its_orphaned_predecessor_is_published(
    pipeline: Pipeline,
) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    erp = await pipeline.start_worker()
    intake = await stopped_submission(pipeline, make_order("O3"), after_publish=False)
    received = make_order("O3", 2, returns_pb2.LIFECYCLE_EVENT_RECEIVED)
    await intake.submit(returns_pb2.SubmitReturnRequest(return_order=received))
    sweeper = await _sweeper(pipeline)
    try:

        async def both_delivered() -> None:
            record = await pipeline.status.get("acme", "O3")
            assert record is not None
            states = {key: doc["state"] for key, doc in record["documents"].items()}
            assert set(states.values()) == {"DELIVERED"} and len(states) == 2, states

        # Without the sweeper version 2 would wait version_gap_wait_seconds (300 s) for version 1.
        await assert_eventually(both_delivered, timeout=30)
        assert sum(erp.creates.values()) == 2 and sweeper.published == 1
    finally:
        await sweeper.stop()


async def test_named_versions_are_never_published_again(pipeline: Pipeline) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    sweeper = await _sweeper(pipeline)
    try:
        for index in range(5):
            await pipeline.intake.submit(
                returns_pb2.SubmitReturnRequest(return_order=make_order(f"N{index}"))
            )
        await pipeline.intake.drain()  # the namings the answers did not wait for
        # Past the sweeper's due time: every reservation was named, so nothing is due, in a round of its own or here.
        await asyncio.sleep(2 * _FAST.after_seconds)
        assert await sweeper.sweep() == 0
        assert len(await _stored(pipeline)) == 5 and sweeper.published == 0
        for index in range(5):
            entry = await _first_version(pipeline, f"N{index}")
            assert entry["stream_sequence"] and "pending" not in entry
    finally:
        await sweeper.stop()


async def test_the_sweeper_lives_through_a_nats_server_crash(server: EmbeddedNatsServer) -> None:
    """Its ordered consumer is an ephemeral one: a killed server forgets it, and the sweeper must follow again."""
    set_principal(Principal(name="rms", tenant_id="acme"))
    nc = await reconnecting(server)
    pipeline = await Pipeline.create(nc)
    sweeper = await _sweeper(pipeline)
    try:
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        server.start()  # same port and store

        async def reconnected() -> None:
            try:
                await pipeline.status.get("acme", "none")
            except Exception as exc:
                raise AssertionError(f"not reconnected yet: {exc!r}") from exc

        await assert_eventually(reconnected, timeout=30)
        await stopped_submission(pipeline, make_order("R1"), after_publish=False)
        assert (await _first_version(pipeline, "R1"))["stream_sequence"] == 0

        await assert_eventually(lambda: _published(pipeline, "R1"), timeout=30)
        assert sweeper.published == 1 and len(await _stored(pipeline)) == 1
    finally:
        await sweeper.stop()
        await pipeline.close()
        await nc.close()


async def test_a_sweeper_with_no_mark_starts_lookback_seconds_back_in_the_stream(pipeline: Pipeline) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    await stopped_submission(pipeline, make_order("L1"), after_publish=False)
    for index in range(20):  # history to search through
        await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order(f"H{index}")))
    await asyncio.sleep(1.5)
    await stopped_submission(pipeline, make_order("L2"), after_publish=False)
    sweeper = OrphanSweeper(
        pipeline.nc.jetstream(),
        pipeline.publisher,
        pipeline.status,
        OrphanSettings(after_seconds=0.2, lookback_seconds=1.0),
    )
    await sweeper.start()
    try:
        await assert_eventually(lambda: _published(pipeline, "L2"), timeout=30)
        # L1 was reserved before the lookback: a first sweeper (no mark in rb_cursors) never reads it.
        assert (await _first_version(pipeline, "L1"))["stream_sequence"] == 0 and sweeper.published == 1
    finally:
        await sweeper.stop()


async def test_a_restarted_sweeper_resumes_at_its_mark_however_long_it_was_stopped(
    pipeline: Pipeline,
) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    js = pipeline.nc.jetstream()
    # The first sweeper sees M1 reserved but not yet due, and stops (its process is down for a long time).
    await stopped_submission(pipeline, make_order("M1"), after_publish=False)
    first = OrphanSweeper(
        js, pipeline.publisher, pipeline.status, OrphanSettings(after_seconds=3600, lookback_seconds=60)
    )
    await first.start()
    try:

        async def watching() -> None:
            assert first.watching == 1

        await assert_eventually(watching, timeout=30)
    finally:
        await first.stop()  # writes its mark: M1's record
    for index in range(10):  # the service went on meanwhile
        await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order(f"N{index}")))
    await asyncio.sleep(1.5)
    # Restarted long after: M1 is older than its lookback, but the mark still holds it.
    second = OrphanSweeper(
        js, pipeline.publisher, pipeline.status, OrphanSettings(after_seconds=0.2, lookback_seconds=1.0)
    )
    await second.start()
    try:
        await assert_eventually(lambda: _published(pipeline, "M1"), timeout=30)
        assert second.published == 1

        async def moved_past_it() -> None:
            entry = await (await js.key_value(subjects.CURSORS_BUCKET)).get("orphans.watched")
            state = (await js.stream_info(f"KV_{subjects.SYNC_STATE_BUCKET}")).state
            assert int(entry.value or b"0") == state.last_seq + 1  # nothing left to watch

        await assert_eventually(moved_past_it, timeout=30)
    finally:
        await second.stop()


def test_only_records_with_an_unnamed_version_are_decoded() -> None:
    assert unnamed_versions(b'{"versions":{"1":{"stream_sequence":7,"accepted_at":1.5}}}') == {}
    assert unnamed_versions(
        b'{"versions":{"1":{"stream_sequence":7},"2":{"stream_sequence":0,"accepted_at":2.5}}}'
    ) == {2: 2.5}
