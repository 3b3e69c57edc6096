"""AdminService QueryAudit / VerifyAudit behaviour, tenant-scoped from the caller's credential."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from returnbridge.api.v1 import admin_pb2
from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_stream
from returnbridge.domain.context import current_principal

__all__ = ["AuditQueries", "entry_to_proto"]

# The proto speaks of altered / missing / reordered; a broken link or foreign message means an altered chain.
_PROBLEM_KIND: Final = {"broken_link": "altered", "malformed": "altered"}


def entry_to_proto(entry: AuditEntry) -> admin_pb2.AuditEntry:
    occurred = Timestamp()
    occurred.FromDatetime(entry.timestamp.astimezone(UTC))
    return admin_pb2.AuditEntry(
        sequence=entry.seq,
        occurred_at=occurred,
        actor=entry.actor,
        tenant_id=entry.tenant_id,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        before_digest=entry.before_sha256,
        after_digest=entry.after_sha256,
        details=entry.details,
        request_id=entry.request_id,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
    )


def _moment(ts: Timestamp, present: bool) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if present else None


class AuditQueries:
    """What the AdminService servicer calls; the tenant always comes from the authenticated principal."""

    def __init__(self, log: AuditLog, *, default_page_size: int = 50) -> None:
        self._log = log
        self._default_page_size = default_page_size

    async def query(self, request: admin_pb2.QueryAuditRequest) -> admin_pb2.QueryAuditResponse:
        """Raises ValidationError for a bad page size/token; AuthError when the call is unauthenticated."""
        tenant = current_principal().tenant_id
        page = await self._log.query(
            tenant_id=tenant,
            since=_moment(request.since, request.HasField("since")),
            until=_moment(request.until, request.HasField("until")),
            action=request.action,
            object_id=request.object_id,
            page_size=request.page_size or self._default_page_size,
            page_token=request.page_token,
        )
        return admin_pb2.QueryAuditResponse(
            entries=[entry_to_proto(e) for e in page.entries], next_page_token=page.next_page_token
        )

    async def verify(self, request: admin_pb2.VerifyAuditRequest) -> admin_pb2.VerifyAuditResponse:
        """Walk the whole chain (all tenants: the chain is global, problems name only sequences)."""
        current_principal()
        report = await verify_stream(self._log)
        return admin_pb2.VerifyAuditResponse(
            intact=report.ok,
            entries_checked=report.checked,
            problems=[
                admin_pb2.AuditProblem(
                    sequence=p.seq, kind=_PROBLEM_KIND.get(p.kind, p.kind), detail=f"{p.kind}: {p.message}"
                )
                for p in report.problems
            ],
        )
