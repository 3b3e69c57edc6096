"""AuditLog on a real JetStream: chain, concurrency, append-only stream, redaction, queries."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime, timedelta

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js import errors as js_errors
from nats.js.api import StreamConfig

from returnbridge.audit.entry import GENESIS_HASH, AuditEntry
from returnbridge.audit.log import AuditLog, _seal
from returnbridge.audit.redact import REDACTED, register_secret
from returnbridge.audit.verify import verify_stream
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.domain.context import Principal, set_principal, set_request_id
from returnbridge.errors import ConfigError, ValidationError

CANARY = "canary-S3cr3t-9f8e7d6c5b4a"
CUSTOMER_EMAIL = "jane.doe@example.com"


class StepClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        value = self.now
        self.now += timedelta(minutes=1)
        return value


async def test_entries_chain_and_carry_caller_identity(nats_client: NatsClient) -> None:
    log = await AuditLog.open(nats_client.jetstream())
    set_principal(
        Principal(name="rms-prod", tenant_id="acme", roles=frozenset({"submitter"}), auth_method="jwt")
    )
    set_request_id("req-123")
    before, after = b"old-order-bytes", b"new-order-bytes"
    seq1 = await log.record(
        action="return.submitted",
        object_type="return_order",
        object_id="RMA-1",
        tenant_id="acme",
        after=after,
    )
    seq2 = await log.record(
        action="return.updated",
        object_type="return_order",
        object_id="RMA-1",
        tenant_id="acme",
        before=before,
        after=after,
        actor="ops-console",
    )
    assert (seq1, seq2) == (1, 2)
    stored = [AuditEntry.from_json(s.data) async for s in log.raw_entries()]
    first, second = stored
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert (first.actor, first.auth_method, first.request_id) == ("rms-prod", "jwt", "req-123")
    assert first.before_sha256 == "" and first.after_sha256 == hashlib.sha256(after).hexdigest()
    assert second.actor == "ops-console" and second.before_sha256 == hashlib.sha256(before).hexdigest()
    assert datetime.fromisoformat(first.ts).tzinfo is not None
    report = await verify_stream(log)
    assert report.ok and report.checked == 2 and report.last_hash == second.hash


async def test_concurrent_writers_in_separate_connections_never_fork(nats_server: EmbeddedNatsServer) -> None:
    clients = [await nats.connect(nats_server.url) for _ in range(3)]
    try:
        logs = [await AuditLog.open(nc.jetstream()) for nc in clients]
        seqs = await asyncio.gather(
            *(
                logs[i % 3].record(
                    action="admin.reload", object_type="config", object_id=f"c{i}", tenant_id=""
                )
                for i in range(30)
            )
        )
        assert sorted(seqs) == list(range(1, 31))
        report = await verify_stream(logs[0])
        assert report.ok, report.problems
        assert report.checked == 30
    finally:
        for nc in clients:
            await nc.close()


async def test_concurrent_records_are_pipelined_in_call_order(nats_client: NatsClient) -> None:
    log = await AuditLog.open(nats_client.jetstream())
    seqs = await asyncio.gather(
        *(
            log.record(action="return.submitted", object_type="return", object_id=f"r{i}", tenant_id="acme")
            for i in range(600)
        )
    )
    # Sequences follow the order of the calls, across more than one pipeline.
    assert seqs == list(range(1, 601))
    stored = [AuditEntry.from_json(s.data) async for s in log.raw_entries()]
    assert [e.object_id for e in stored] == [f"r{i}" for i in range(600)]
    report = await verify_stream(log)
    assert report.ok, report.problems
    assert report.checked == 600


def test_seal_matches_the_entry_dataclass_byte_for_byte() -> None:
    entry = AuditEntry(
        seq=7,
        ts="2026-11-27T16:00:00.000001+00:00",
        tenant_id="acme",
        actor="rms-prod",
        auth_method="jwt",
        request_id="req-1",
        action="return.submitted",
        object_type="return",
        object_id="R1:1",
        before_sha256="",
        after_sha256=hashlib.sha256(b"x").hexdigest(),
        details={"target": "netsuite", "note": 'caf\u00e9 "quoted"'},
        prev_hash="ab" * 32,
    )
    body = entry.body()
    assert _seal(body) == (entry.sealed().hash, entry.sealed().to_json())


async def test_racing_pipelines_of_two_processes_never_fork(nats_server: EmbeddedNatsServer) -> None:
    clients = [await nats.connect(nats_server.url) for _ in range(2)]
    try:
        logs = [await AuditLog.open(nc.jetstream()) for nc in clients]
        # Both writers chain whole pipelines on the same tail; the loser's entries are refused and re-chained.
        seqs = await asyncio.gather(
            *(
                logs[i % 2].record(
                    action="admin.reload", object_type="config", object_id=f"c{i}", tenant_id=""
                )
                for i in range(400)
            )
        )
        assert sorted(seqs) == list(range(1, 401))
        stored = [AuditEntry.from_json(s.data) async for s in logs[1].raw_entries()]
        assert sorted(e.object_id for e in stored) == sorted(f"c{i}" for i in range(400))
        report = await verify_stream(logs[0])
        assert report.ok, report.problems
        assert report.checked == 400
    finally:
        for nc in clients:
            await nc.close()


async def test_stream_refuses_delete_and_purge(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    log = await AuditLog.open(js)
    await log.record(
        action="return.submitted", object_type="return_order", object_id="RMA-1", tenant_id="acme"
    )
    info = await js.stream_info("RB_AUDIT")
    assert info.config.deny_delete and info.config.deny_purge
    with pytest.raises(js_errors.APIError):
        await js.delete_msg("RB_AUDIT", 1)
    with pytest.raises(js_errors.APIError):
        await js.purge_stream("RB_AUDIT")
    assert (await verify_stream(log)).ok


async def test_existing_stream_without_protection_is_refused(nats_client: NatsClient) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name="RB_AUDIT", subjects=["rb.audit.>"]))
    with pytest.raises(ConfigError, match="deny_delete"):
        await AuditLog.open(js)


async def test_canary_secret_and_customer_email_never_stored_or_logged(
    nats_client: NatsClient, caplog: pytest.LogCaptureFixture
) -> None:
    register_secret(CANARY)
    log = await AuditLog.open(nats_client.jetstream())
    caplog.set_level(logging.DEBUG)
    await log.record(
        action="principal.created",
        object_type="principal",
        object_id="svc-rms",
        tenant_id="acme",
        actor=CUSTOMER_EMAIL,
        details={
            "api_key": "rb_live_0123456789",
            "note": f"rotated, old secret {CANARY}",
            "customer_email": CUSTOMER_EMAIL,
            "comment": f"requested by {CUSTOMER_EMAIL} with Authorization: Bearer abc.def.ghi",
            "client_secret": "whatever",
            "rma_number": "RMA-7",
        },
    )
    raw = b"".join([s.data async for s in log.raw_entries()])
    assert CANARY.encode() not in raw and CUSTOMER_EMAIL.encode() not in raw
    assert b"rb_live_0123456789" not in raw and b"abc.def.ghi" not in raw and b"whatever" not in raw
    entry = AuditEntry.from_json(raw)
    assert entry.details["rma_number"] == "RMA-7"
    assert entry.details["api_key"] == REDACTED and entry.actor == REDACTED
    assert CANARY not in caplog.text and CUSTOMER_EMAIL not in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"action": "Return Submitted"}, "action"),
        ({"object_type": ""}, "object_type"),
        ({"object_id": ""}, "object_id"),
        ({"tenant_id": "acme.eu"}, "tenant_id"),
        ({"tenant_id": "a*"}, "tenant_id"),
    ],
)
async def test_bad_record_input_names_the_field(
    nats_client: NatsClient, kwargs: dict[str, str], field: str
) -> None:
    log = await AuditLog.open(nats_client.jetstream())
    args = {
        "action": "return.submitted",
        "object_type": "return_order",
        "object_id": "R",
        "tenant_id": "acme",
    }
    with pytest.raises(ValidationError) as info:
        await log.record(**{**args, **kwargs})
    assert [v.field for v in info.value.violations] == [field]


async def test_query_is_tenant_scoped_filtered_and_paged(nats_client: NatsClient) -> None:
    # Near the server's clock: scans are bounded by server storage time within CLOCK_SKEW.
    start = datetime.now(UTC).replace(microsecond=0)
    log = await AuditLog.open(nats_client.jetstream(), clock=StepClock(start))
    for i in range(7):
        await log.record(
            action="return.submitted", object_type="return_order", object_id=f"A{i}", tenant_id="acme"
        )
        await log.record(
            action="return.submitted", object_type="return_order", object_id=f"B{i}", tenant_id="beta"
        )
    await log.record(
        action="mapping.override",
        object_type="mapping",
        object_id="sap/credit_memo_request",
        tenant_id="acme",
    )

    page = await log.query(tenant_id="acme", page_size=3)
    ids = [e.object_id for e in page.entries]
    while page.next_page_token:
        page = await log.query(tenant_id="acme", page_size=3, page_token=page.next_page_token)
        ids += [e.object_id for e in page.entries]
    assert ids == [f"A{i}" for i in range(7)] + ["sap/credit_memo_request"]

    beta = await log.query(tenant_id="beta", page_size=100)
    assert {e.tenant_id for e in beta.entries} == {"beta"} and len(beta.entries) == 7

    admin = await log.query(tenant_id="acme", action="mapping.override")
    assert [e.object_id for e in admin.entries] == ["sap/credit_memo_request"]
    one = await log.query(tenant_id="acme", object_id="A3")
    assert [e.object_id for e in one.entries] == ["A3"]

    # Clock steps a minute per entry: acme entries sit at minutes 0, 2, 4, ...
    window = await log.query(
        tenant_id="acme",
        since=start + timedelta(minutes=2),
        until=start + timedelta(minutes=6),
        page_size=100,
    )
    assert [e.object_id for e in window.entries] == ["A1", "A2"]
    assert (await log.query(tenant_id="gamma")).entries == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"page_token": "abc"}, "page_token"),
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"tenant_id": "x y"}, "tenant_id"),
    ],
)
async def test_bad_query_names_the_field(
    nats_client: NatsClient, kwargs: dict[str, object], field: str
) -> None:
    log = await AuditLog.open(nats_client.jetstream())
    args: dict[str, object] = {"tenant_id": "acme", **kwargs}
    with pytest.raises(ValidationError) as info:
        await log.query(**args)  # type: ignore[arg-type]
    assert [v.field for v in info.value.violations] == [field]


async def test_admin_queries_scope_to_the_callers_tenant(nats_client: NatsClient) -> None:
    from returnbridge.api.v1 import admin_pb2
    from returnbridge.audit.service import AUDIT_SEQUENCE, AuditQueries
    from returnbridge.domain.tenant_ids import TenantIds
    from returnbridge.errors import AuthError

    log = await AuditLog.open(nats_client.jetstream())
    for tenant in ("acme", "beta", "acme"):
        await log.record(
            action="return.submitted", object_type="return_order", object_id="RMA-1", tenant_id=tenant
        )
    ids = TenantIds(b"k" * 32)
    queries = AuditQueries(log, ids=ids)
    set_principal(None)
    with pytest.raises(AuthError):
        await queries.query(admin_pb2.QueryAuditRequest())
    set_principal(Principal(name="auditor-1", tenant_id="beta", roles=frozenset({"auditor"})))
    response = await queries.query(admin_pb2.QueryAuditRequest(page_size=10))
    # Sequences are per-tenant opaque ids of the shared chain's positions (issue 12).
    assert [(e.sequence, e.tenant_id) for e in response.entries] == [
        (ids.encode("beta", AUDIT_SEQUENCE, 2), "beta")
    ]
    assert response.entries[0].occurred_at.seconds > 0 and len(response.entries[0].hash) == 64
    verified = await queries.verify(admin_pb2.VerifyAuditRequest())
    # Only the caller's own entries are counted: beta cannot watch acme's activity through this number.
    assert verified.intact and verified.entries_checked == 1
    set_principal(Principal(name="auditor-2", tenant_id="acme", roles=frozenset({"auditor"})))
    assert (await queries.verify(admin_pb2.VerifyAuditRequest())).entries_checked == 2


async def test_time_seek_uses_server_storage_time(nats_client: NatsClient) -> None:
    log = await AuditLog.open(nats_client.jetstream())
    for i in range(5):
        await log.record(
            action="return.submitted", object_type="return_order", object_id=f"A{i}", tenant_id="acme"
        )
    middle = datetime.now(UTC)
    for i in range(5):
        await log.record(
            action="return.submitted", object_type="return_order", object_id=f"B{i}", tenant_id="acme"
        )
    assert await log._first_seq_stored_at(middle) == 6
    assert await log._first_seq_stored_at(middle - timedelta(days=1)) == 1
    assert await log._first_seq_stored_at(middle + timedelta(days=1)) == 11
    recent = await log.query(tenant_id="acme", since=middle, page_size=100)
    assert [e.object_id for e in recent.entries] == [f"B{i}" for i in range(5)]
    assert (await log.query(tenant_id="acme", until=middle - timedelta(hours=1))).entries == []
