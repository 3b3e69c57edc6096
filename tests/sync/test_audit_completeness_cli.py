"""`returnbridge audit verify --completeness` fails on a delivered document without its audit entry."""

from __future__ import annotations

import asyncio

import nats
import pytest

from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import StreamsConfig, ensure_streams
from returnbridge.cli import build_parser
from returnbridge.domain.steps import PlannedStep
from returnbridge.sync.status import SyncStateStore


async def _seed(url: str, *, audited: bool, submitted_twice: bool = False) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        buckets = await ensure_streams(js, StreamsConfig())
        status = SyncStateStore(buckets[subjects.SYNC_STATE_BUCKET], Publisher(nc, js))
        audit = await AuditLog.open(js)
        order = returns_pb2.ReturnOrder(tenant_id="acme", return_id="R1", version=1)
        decision = returns_pb2.RouteDecision(target="netsuite")
        step = PlannedStep(step="return_authorization", document_type="returnAuthorization", mapping="m")
        await status.register(order, decision, [step], stream_sequence=1, accepted_at=1.0)
        for _ in range(2 if submitted_twice else 1):
            await audit.record(
                action="return.submitted",
                object_type="return",
                object_id="R1:1",
                tenant_id="acme",
                actor="rms",
            )
        await status.transition("acme", "R1", 1, "return_authorization", "DELIVERED", erp_document_id="1001")
        if audited:
            await audit.record(
                action="erp.document_created",
                object_type="return",
                object_id="R1:1",
                tenant_id="acme",
                actor="system",
                details={"step": "return_authorization", "erp_document_id": "1001"},
            )
    finally:
        await nc.drain()


@pytest.mark.parametrize("audited", [True, False])
def test_verify_completeness(
    nats_server: EmbeddedNatsServer, capsys: pytest.CaptureFixture[str], audited: bool
) -> None:
    asyncio.run(_seed(nats_server.url, audited=audited))
    args = build_parser().parse_args(["audit", "verify", "--nats-url", nats_server.url, "--completeness"])
    code = args.func(args)
    out = capsys.readouterr().out
    assert "audit chain OK" in out
    if audited:
        assert code == 0 and "audit completeness OK: 1 accepted versions, 1 delivered documents" in out
    else:
        assert code == 1
        assert (
            "acme/R1 v1 return_authorization: ERP document 1001 delivered without an erp.document_* entry"
            in out
        )


def test_verify_completeness_reports_an_acceptance_audited_twice(
    nats_server: EmbeddedNatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Written before the scribe's appends carried a message id (or after the duplicate window): counted twice.
    asyncio.run(_seed(nats_server.url, audited=True, submitted_twice=True))
    args = build_parser().parse_args(["audit", "verify", "--nats-url", nats_server.url, "--completeness"])
    code = args.func(args)
    out = capsys.readouterr().out
    assert code == 1
    assert "acme/R1 v1: 2 return.submitted entries" in out
    assert "audit completeness FAILED (1 duplicated entries)" in out
