"""One return's whole life, gathered from the API with the viewer's own permissions.

Each section is fetched only when the viewer holds its permission; a section the viewer may not see is
``None`` and the page says which permission it needs. New sections (lifecycle states, rejections by rule)
are one more field and one more fetch here.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import grpc

from returnbridge.api.v1 import admin_pb2, sync_pb2
from returnbridge.client import ReturnBridgeClient

__all__ = ["Timeline", "VersionView", "load_timeline"]


@dataclass
class VersionView:
    """One accepted version: its documents, and the routing facts recorded when it was accepted."""

    version: int
    documents: list[sync_pb2.DocumentSync] = field(default_factory=list)
    target: str = ""
    rule: str = ""
    # Lifecycle event (AUTHORIZED, RECEIVED, ...) as recorded in the submission's audit entry.
    event: str = ""
    accepted_at: str = ""
    audit: list[admin_pb2.AuditEntry] = field(default_factory=list)


@dataclass
class Timeline:
    status: sync_pb2.ReturnSyncStatus
    versions: list[VersionView]
    dead_letters: list[admin_pb2.DeadLetter] | None
    dead_letter_audit: dict[int, list[admin_pb2.AuditEntry]] | None
    reconciliation: list[admin_pb2.ReconciliationLine] | None
    audit_visible: bool


async def load_timeline(client: ReturnBridgeClient, return_id: str, permissions: frozenset[str]) -> Timeline:
    """Raises the API's error (NOT_FOUND for an unknown or another tenant's return)."""
    status = await client.status(return_id)
    by_version: dict[int, VersionView] = {}
    for doc in status.documents:
        view = by_version.setdefault(doc.version, VersionView(doc.version))
        view.documents.append(doc)
        view.target = view.target or doc.target
    versions = [by_version[v] for v in sorted(by_version)]

    dead_letters = None
    if "dlq.read" in permissions:
        dead_letters = await client.dead_letters(return_id=return_id, include_resolved=True)

    audit_visible = "audit.read" in permissions
    dead_letter_audit: dict[int, list[admin_pb2.AuditEntry]] | None = None
    if audit_visible:
        entries = await asyncio.gather(*(client.audit_entries(f"{return_id}:{v.version}") for v in versions))
        for view, found in zip(versions, entries, strict=True):
            view.audit = list(found)
            for entry in found:
                if entry.action == "return.submitted":
                    view.rule = entry.details.get("rule", "")
                    view.target = entry.details.get("target", view.target)
                    # The idempotency key ends with the lifecycle event: tenant:return:version:EVENT.
                    view.event = entry.details.get("idempotency_key", "").rpartition(":")[2]
        dead_letter_audit = defaultdict(list)
        for letter in dead_letters or ():
            dead_letter_audit[letter.id] = await client.audit_entries(str(letter.id))

    reconciliation = None
    if "reports.read" in permissions:
        try:
            report: admin_pb2.ReconciliationReport = await client.admin.GetReconciliationReport(
                admin_pb2.ReconciliationRequest()
            )
            reconciliation = [line for line in report.lines if line.return_id == return_id]
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            reconciliation = []
    return Timeline(status, versions, dead_letters, dead_letter_audit, reconciliation, audit_visible)
