"""Serial claims at admission: a serial number is on one open return of a tenant at a time (real JetStream KV)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from nats.aio.client import Client as NatsClient

from dataquality.returns import Life
from delivery.pipeline_harness import Pipeline, make_order, md
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.bus import subjects
from returnbridge.bus.kv import dumps, modify_json
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import ensure_streams
from returnbridge.domain.money import ISO_4217
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.errors import PreconditionError, ValidationError
from returnbridge.services.admin import AdminServicer
from returnbridge.services.admission import Admissions
from returnbridge.services.serial_claims import RULE_SERIAL_IN_USE, SerialClaims
from returnbridge.sync.status import SyncStateStore

A, R, C, CL = (
    returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    returns_pb2.LIFECYCLE_EVENT_RECEIVED,
    returns_pb2.LIFECYCLE_EVENT_CANCELLED,
    returns_pb2.LIFECYCLE_EVENT_CLOSED,
)


@dataclass
class Bench:
    admissions: Admissions
    serials: SerialClaims
    status: SyncStateStore
    nc: NatsClient

    async def admit(self, life: Life, version: int, event: int, tenant: str = "acme") -> str:
        order = life.order(version, event)
        order.tenant_id = tenant
        digest = hashlib.sha256(order.SerializeToString(deterministic=True)).hexdigest()
        return (await self.admissions.admit(order, digest)).state

    async def holder(self, serial: str, tenant: str = "acme") -> str | None:
        claim = await self.serials.holder(tenant, serial)
        return None if claim is None else str(claim["return_id"])


@pytest.fixture
async def bench(nats_client: NatsClient) -> AsyncIterator[Bench]:
    js = nats_client.jetstream()
    buckets = await ensure_streams(js)
    status = SyncStateStore(buckets[subjects.SYNC_STATE_BUCKET], Publisher(nats_client, js))
    serials = SerialClaims(buckets[subjects.SERIALS_BUCKET], status, marker_ttl=1.0)
    yield Bench(
        Admissions(status, ReturnPolicyConfig(), ISO_4217, serials=serials), serials, status, nats_client
    )


def _life(name: str, serials: str) -> Life:
    return Life("netsuite", name, f"RMA-{name}", serials)


async def test_a_serial_on_an_open_return_is_refused_for_another_naming_the_holder(bench: Bench) -> None:
    first, second = _life("ret-1", "SN"), _life("ret-2", "OTHER")
    assert await bench.admit(first, 1, A) == "AUTHORIZED"
    clash = second.order(1, A)
    clash.tenant_id = "acme"
    clash.lines[1].serial_numbers[1] = "SN-2"  # SN-1, SN-2 are on ret-1
    with pytest.raises(ValidationError) as info:
        await bench.admissions.admit(clash, "digest")
    (violation,) = info.value.violations
    assert violation.field == "return_order.lines[1].serial_numbers[1]"
    assert violation.rule == RULE_SERIAL_IN_USE
    assert "'SN-2'" in violation.description and "'ret-1'" in violation.description
    assert "'RMA-ret-1'" in violation.description
    # Refused: nothing written, and its other serial was not left claimed either.
    assert await bench.status.get("acme", "ret-2") is None
    assert await bench.holder("OTHER-1") is None
    assert await bench.holder("SN-2") == "ret-1"
    # Another tenant's serials are its own: the same number is free there (and ret-1 is not named to it).
    other_tenant = _life("ret-9", "SN")
    assert await bench.admit(other_tenant, 1, A, tenant="globex") == "AUTHORIZED"
    assert await bench.holder("SN-2", tenant="globex") == "ret-9"


async def test_the_same_return_keeps_its_serials_across_resubmissions_and_versions(bench: Bench) -> None:
    life = _life("ret-3", "KEEP")
    assert await bench.admit(life, 1, A) == "AUTHORIZED"
    assert await bench.admit(life, 1, A) == "AUTHORIZED"  # the same event again: a duplicate, not a clash
    assert await bench.admit(life, 2, R) == "RECEIVED"
    record = await bench.status.get("acme", "ret-3")
    assert record is not None and record["lifecycle"]["serials"] == ["KEEP-1", "KEEP-2"]
    assert await bench.holder("KEEP-1") == "ret-3"


async def test_a_closed_or_cancelled_return_lets_its_serials_go(bench: Bench) -> None:
    life, later = _life("ret-4", "FREE"), _life("ret-5", "FREE")
    await bench.admit(life, 1, A)
    with pytest.raises(ValidationError):
        await bench.admit(later, 1, A)
    assert await bench.admit(life, 2, C) == "CANCELLED"
    assert await bench.holder("FREE-1") is None
    assert await bench.admit(later, 1, A) == "AUTHORIZED"
    # Closing the cancelled return claims nothing back and releases nothing of ret-5's.
    assert await bench.admit(life, 3, CL) == "CLOSED"
    assert await bench.holder("FREE-1") == "ret-5"

    # Released claims leave nothing behind once their purge markers expire: only ret-5's two claims stay.
    async def only_live_claims() -> None:
        info = await bench.nc.jetstream().stream_info(f"KV_{subjects.SERIALS_BUCKET}")
        assert info.state.messages == 2

    await assert_eventually(only_live_claims, timeout=30)


async def test_a_refused_event_releases_the_serials_it_claimed(bench: Bench) -> None:
    life = _life("ret-6", "REFUSED")
    with pytest.raises(PreconditionError):
        await bench.admit(life, 1, R)  # RECEIVED before AUTHORIZED: refused by the lifecycle
    assert await bench.holder("REFUSED-1") is None
    assert await bench.admit(_life("ret-7", "REFUSED"), 1, A) == "AUTHORIZED"


async def test_a_claim_whose_holder_never_got_admitted_is_void_after_a_while(bench: Bench) -> None:
    key = f"acme.{subjects.kv_token('GHOST-1')}"
    ghost = {"return_id": "ret-ghost", "rma_number": "RMA-G", "version": 1, "claimed_at": 0.0}
    await bench.serials.kv.put(key, dumps(ghost))  # its process stopped between the claim and the admission
    assert await bench.admit(_life("ret-8", "GHOST"), 1, A) == "AUTHORIZED"
    assert await bench.holder("GHOST-1") == "ret-8"
    # A fresh claim of a return being admitted right now is respected.
    fresh = SerialClaims(bench.serials.kv, bench.status, clock=lambda: ghost["claimed_at"] + 1.0)
    admissions = Admissions(bench.status, ReturnPolicyConfig(), ISO_4217, serials=fresh)
    await bench.serials.kv.put(f"acme.{subjects.kv_token('FRESH-1')}", dumps(ghost))
    clash = _life("ret-10", "FRESH").order(1, A)
    clash.tenant_id = "acme"
    with pytest.raises(ValidationError, match="another open return"):
        await admissions.admit(clash, "digest")


async def test_a_return_whose_authorization_was_discarded_holds_no_serial(bench: Bench) -> None:
    life = _life("ret-11", "DLQ")
    await bench.admit(life, 1, A)

    def discarded(record: dict | None) -> dict | None:  # type: ignore[type-arg]
        assert record is not None
        record["versions"]["1"] = {"event": "AUTHORIZED"}
        record["documents"]["1:return_authorization"] = {"version": 1, "state": "DISCARDED"}
        return record

    await modify_json(bench.status.kv, subjects.sync_state_key("acme", "ret-11"), discarded)
    assert await bench.admit(_life("ret-12", "DLQ"), 1, A) == "AUTHORIZED"
    assert await bench.holder("DLQ-1") == "ret-12"


async def test_concurrent_returns_never_share_a_serial(bench: Bench) -> None:
    lives = [_life(f"race-{n}", "RACE") for n in range(8)]
    outcomes = await asyncio.gather(*(bench.admit(life, 1, A) for life in lives), return_exceptions=True)
    admitted = [life.return_id for life, out in zip(lives, outcomes, strict=True) if out == "AUTHORIZED"]
    refused = [out for out in outcomes if isinstance(out, ValidationError)]
    assert len(admitted) + len(refused) == len(lives), outcomes
    assert len(admitted) <= 1
    holders = {await bench.holder("RACE-1"), await bench.holder("RACE-2")}
    assert holders == ({admitted[0]} if admitted else {None})
    # Retried one after another (as an RMS would), exactly one of them ends up holding the serials.
    for life in lives:
        try:
            await bench.admit(life, 1, A)
        except ValidationError:
            continue
    held = {await bench.holder("RACE-1"), await bench.holder("RACE-2")}
    assert len(held) == 1 and None not in held
    records = [await bench.status.get("acme", life.return_id) for life in lives]
    assert sum(record is not None for record in records) == 1


async def test_discarding_the_authorizations_dead_letter_releases_its_serials(pipeline: Pipeline) -> None:
    """Through the served API: the serial is held while the authorization sits in the DLQ, free once discarded."""
    serials = SerialClaims(pipeline.buckets[subjects.SERIALS_BUCKET], pipeline.status)
    pipeline.intake.admissions = Admissions(pipeline.status, ReturnPolicyConfig(), ISO_4217, serials=serials)
    admin_servicer = AdminServicer(pipeline.dead_letters, pipeline.status, serials=serials)
    channel = await pipeline.start_grpc(pipeline.returns_servicer(), admin_servicer)
    returns, admin = returns_pb2_grpc.ReturnsServiceStub(channel), admin_pb2_grpc.AdminServiceStub(channel)
    pipeline.mappers.broken.add("SD1")  # its authorization cannot be translated: dead-lettered
    await pipeline.start_worker("netsuite")

    def serialized(return_id: str) -> returns_pb2.SubmitReturnRequest:
        order = make_order(return_id)
        order.lines[0].serialized = True
        order.lines[0].serial_numbers.append("UNIT-77")
        return returns_pb2.SubmitReturnRequest(return_order=order)

    await returns.SubmitReturn(serialized("SD1"), metadata=md("acme"))

    async def dead_lettered() -> admin_pb2.DeadLetter:
        page = await admin.ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=md("acme"))
        assert len(page.dead_letters) == 1
        return page.dead_letters[0]

    letter = await assert_eventually(dead_lettered, timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await returns.SubmitReturn(serialized("SD2"), metadata=md("acme"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details)
    [violation] = bad.field_violations
    assert violation.field == "return_order.lines[0].serial_numbers[0]"
    assert "'UNIT-77'" in violation.description and "'SD1'" in violation.description
    await admin.DiscardDeadLetter(admin_pb2.DiscardDeadLetterRequest(id=letter.id), metadata=md("acme"))
    assert await serials.holder("acme", "UNIT-77") is None
    accepted = await returns.SubmitReturn(serialized("SD2"), metadata=md("acme"))
    assert accepted.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
