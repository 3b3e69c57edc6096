"""AdminService QueryAudit / VerifyAudit behaviour, tenant-scoped from the caller's credential."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from returnbridge.api.v1 import admin_pb2
from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_entries
from returnbridge.domain.context import current_principal
from returnbridge.domain.tenant_ids import TenantIds, default_ids
from returnbridge.errors import FieldViolation, ValidationError

__all__ = ["AuditQueries", "entry_to_proto"]

#: Kind of opaque id (tenant_ids) for audit sequences and page tokens.
AUDIT_SEQUENCE: Final = "audit_sequence"

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
    """What the AdminService servicer calls; the tenant always comes from the authenticated principal.

    The chain is one stream for all tenants, so every number a tenant sees is its own: entry sequences and page
    tokens are per-tenant opaque ids, and VerifyAudit counts and reports the caller's entries only.
    """

    def __init__(self, log: AuditLog, *, default_page_size: int = 50, ids: TenantIds | None = None) -> None:
        self._log = log
        self._default_page_size = default_page_size
        self._ids = ids or default_ids()

    async def query(self, request: admin_pb2.QueryAuditRequest) -> admin_pb2.QueryAuditResponse:
        """Raises ValidationError for a bad page size/token; AuthError when the call is unauthenticated."""
        tenant = current_principal().tenant_id
        page_token = ""
        if request.page_token:
            position = self._ids.decode(tenant, AUDIT_SEQUENCE, int(request.page_token))
            if position is None:
                raise ValidationError(
                    "malformed page_token",
                    [FieldViolation("page_token", "pass back next_page_token unchanged")],
                )
            page_token = str(position)
        page = await self._log.query(
            tenant_id=tenant,
            since=_moment(request.since, request.HasField("since")),
            until=_moment(request.until, request.HasField("until")),
            action=request.action,
            object_id=request.object_id,
            page_size=request.page_size or self._default_page_size,
            page_token=page_token,
        )
        entries = []
        for entry in page.entries:
            shown = entry_to_proto(entry)
            shown.sequence = self._ids.encode(tenant, AUDIT_SEQUENCE, entry.seq)
            entries.append(shown)
        next_token = page.next_page_token
        if next_token:
            next_token = str(self._ids.encode(tenant, AUDIT_SEQUENCE, int(next_token)))
        return admin_pb2.QueryAuditResponse(entries=entries, next_page_token=next_token)

    async def verify(self, request: admin_pb2.VerifyAuditRequest) -> admin_pb2.VerifyAuditResponse:
        """Walk the whole chain; report the caller's entries, and only that the chain is broken elsewhere."""
        tenant = current_principal().tenant_id
        own_subject = self._log.subject_for(tenant)
        items: list[tuple[int | None, bytes]] = []
        own: set[int] = set()
        async for stored in self._log.raw_entries():
            items.append((stored.seq, stored.data))
            if stored.subject == own_subject:
                own.add(stored.seq)
        report = verify_entries(items)
        problems = [
            admin_pb2.AuditProblem(
                sequence=self._ids.encode(tenant, AUDIT_SEQUENCE, p.seq),
                kind=_PROBLEM_KIND.get(p.kind, p.kind),
                detail=f"{p.kind}: {p.message}",
            )
            for p in report.problems
            if p.seq in own
        ]
        if len(problems) < len(report.problems):
            # The chain is shared: its break elsewhere matters to everyone, but whose entries is not theirs to see.
            problems.append(
                admin_pb2.AuditProblem(
                    sequence=0, kind="altered", detail="the chain is broken outside this tenant's entries"
                )
            )
        return admin_pb2.VerifyAuditResponse(intact=report.ok, entries_checked=len(own), problems=problems)
