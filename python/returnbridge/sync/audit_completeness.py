"""Audit completeness: every accepted version and every delivered ERP document has its audit entry, and no
accepted version has two ``return.submitted`` entries (a second one would count one acceptance twice).

The chain check (``audit.verify``) proves no entry was altered or removed; this proves none was never written.
It compares the audit log with the sync state (accepted versions, DELIVERED documents) and, when given, with
the ERP documents themselves (an ERP document id that no ``erp.document_*`` entry names is a gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.consumer import SUBMITTED_AUDIT_CONSUMER
from returnbridge.bus.kv import values_matching
from returnbridge.sync.status import is_reserved

__all__ = ["CompletenessReport", "check_audit_completeness", "completeness_lines", "scribe_backlog"]

# delivery/headers.py's H_IDEMPOTENCY and H_REPLAY_OF (delivery is above sync; tests/sync pins them equal).
H_IDEMPOTENCY = "Rb-Idempotency-Key"
H_REPLAY_OF = "Rb-Replay-Of"
_ERP_ACTIONS = frozenset({"erp.document_created", "erp.document_found"})


@dataclass(slots=True)
class CompletenessReport:
    versions: int = 0
    documents: int = 0
    erp_documents: int = 0
    gaps: list[str] = field(default_factory=list)
    # Accepted versions with more than one return.submitted entry (a scribe's second write that JetStream's
    # duplicate window did not drop).
    duplicates: list[str] = field(default_factory=list)
    # Accepted submissions whose entry the audit scribe had not written yet when the check gave up waiting.
    unaudited: int = 0
    # Versions admitted and reserved whose message was never named (the submission stopped before or at its
    # publish and was not retried): nothing was accepted, so no entry is owed.
    reserved: int = 0

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.duplicates

    def summary(self) -> str:
        problems = [f"{len(self.gaps)} gaps"] if self.gaps else []
        problems += [f"{len(self.duplicates)} duplicated entries"] if self.duplicates else []
        status = "OK" if self.ok else f"FAILED ({', '.join(problems)})"
        lag = (
            f"; {self.unaudited} stored submissions still wait for their return.submitted entry (the audit "
            "scribe runs in the worker processes: is one running?)"
            if self.unaudited
            else ""
        )
        reserved = f", {self.reserved} reserved versions never published" if self.reserved else ""
        return (
            f"audit completeness {status}: {self.versions} accepted versions, {self.documents} delivered documents"
            f", {self.erp_documents} ERP documents checked{reserved}{lag}"
        )


async def _sync_records(kv: KeyValue) -> list[dict[str, object]]:
    # Not a KV watcher: its end marker can come before the records under load, and the check passed on none.
    records = [json.loads(value) for value in (await values_matching(kv, ">")).values() if value]
    # The bucket also holds the poller's posted-document records (``posted.*``): only returns count.
    return [r for r in records if isinstance(r, dict) and "versions" in r]


async def scribe_backlog(js: JetStreamContext, *, wait_seconds: float = 0.0) -> int:
    """Stored submissions the audit scribe has not written yet, waiting up to ``wait_seconds`` for none."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            info = await js.consumer_info(subjects.DELIVER_STREAM, SUBMITTED_AUDIT_CONSUMER)
        except NotFoundError:
            return 0  # no scribe consumer: nothing was accepted through it
        backlog = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        if not backlog or time.monotonic() >= deadline:
            return backlog
        await asyncio.sleep(0.2)


async def _stored_keys(js: JetStreamContext, keys: set[str]) -> set[str]:
    """Which of these idempotency keys a submission message in ``RB_DELIVER`` carries (headers only, one pass)."""
    name = uuid.uuid4().hex
    info = await js.add_consumer(
        subjects.DELIVER_STREAM,
        ConsumerConfig(
            name=name,
            filter_subject=subjects.DELIVER_ALL,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            headers_only=True,
            mem_storage=True,
            inactive_threshold=60.0,
        ),
    )
    remaining = int(info.num_pending or 0)
    found: set[str] = set()
    sub = await js.pull_subscribe_bind(stream=subjects.DELIVER_STREAM, name=name)
    try:
        while remaining > 0:
            try:
                messages = await sub.fetch(min(remaining, 512), timeout=5.0)
            except NatsTimeoutError:
                break  # aged out since the count: nothing more to read
            for message in messages:
                headers = message.headers or {}
                if headers.get(H_IDEMPOTENCY) in keys and H_REPLAY_OF not in headers:
                    found.add(headers[H_IDEMPOTENCY])
            remaining -= len(messages)
    finally:
        await sub.unsubscribe()
        with contextlib.suppress(NatsError):
            await js.delete_consumer(subjects.DELIVER_STREAM, name)
    return found


async def check_audit_completeness(
    audit: AuditLog,
    sync_state: KeyValue,
    *,
    erp_document_ids: Iterable[str] = (),
    scribe: JetStreamContext | None = None,
    scribe_wait_seconds: float = 30.0,
) -> CompletenessReport:
    """Every accepted version needs ``return.submitted``; every DELIVERED document and every ERP document id
    given needs an ``erp.document_created`` or ``erp.document_found`` entry naming it.

    With ``scribe`` (the JetStream holding the delivery stream), first waits up to ``scribe_wait_seconds`` for
    the audit scribe to write the entries of what was already accepted; what it still owes is reported.
    """
    unaudited = await scribe_backlog(scribe, wait_seconds=scribe_wait_seconds) if scribe is not None else 0
    submitted: Counter[tuple[str, str]] = Counter()
    posted: set[tuple[str, str, str]] = set()
    posted_ids: set[str] = set()
    async for stored in audit.raw_entries():
        if not stored.data:
            continue
        try:
            entry = AuditEntry.from_json(stored.data)
        except ValueError:
            continue  # the chain check reports malformed entries
        if entry.action == "return.submitted":
            submitted[(entry.tenant_id, entry.object_id)] += 1
        elif entry.action in _ERP_ACTIONS:
            posted.add((entry.tenant_id, entry.object_id, entry.details.get("step", "")))
            posted_ids.add(entry.details.get("erp_document_id", ""))
    report = CompletenessReport(unaudited=unaudited)
    for (tenant, object_id), count in sorted(submitted.items()):
        if count > 1:
            return_id, _, version = object_id.rpartition(":")
            report.duplicates.append(f"{tenant}/{return_id} v{version}: {count} return.submitted entries")
    records = await _sync_records(sync_state)
    # A version reserved by the admission whose message no one named yet: accepted only if a message of it
    # was stored (the gateway may have stopped between the PubAck and the naming). Asked of the stream, and
    # only for those without an entry.
    unnamed = {
        f"{r['tenant_id']}:{r['return_id']}:{version}:{entry['event']}"
        for r in records
        for version, entry in r["versions"].items()  # type: ignore[attr-defined]
        if is_reserved(entry) and (r["tenant_id"], f"{r['return_id']}:{version}") not in submitted
    }
    published = await _stored_keys(scribe, unnamed) if unnamed and scribe is not None else unnamed
    for record in records:
        tenant, return_id = str(record["tenant_id"]), str(record["return_id"])
        for version, entry in record["versions"].items():  # type: ignore[attr-defined]
            audited = (tenant, f"{return_id}:{version}") in submitted
            key = f"{tenant}:{return_id}:{version}:{entry['event']}"
            if not audited and is_reserved(entry) and key not in published:
                report.reserved += 1
                continue
            report.versions += 1
            if not audited:
                report.gaps.append(
                    f"{tenant}/{return_id} v{version}: accepted without a return.submitted entry"
                )
        for doc in record["documents"].values():  # type: ignore[attr-defined]
            if doc["state"] != "DELIVERED":
                continue
            report.documents += 1
            if (tenant, f"{return_id}:{doc['version']}", doc["step"]) not in posted:
                report.gaps.append(
                    f"{tenant}/{return_id} v{doc['version']} {doc['step']}: ERP document "
                    f"{doc['erp_document_id']} delivered without an erp.document_* entry"
                )
    for document_id in erp_document_ids:
        report.erp_documents += 1
        if document_id not in posted_ids:
            report.gaps.append(f"ERP document {document_id} has no erp.document_* audit entry")
    return report


async def completeness_lines(nc: NatsClient, audit: AuditLog) -> tuple[bool, list[str]]:
    """``audit verify --completeness``: the check against this NATS's sync state, as printable lines."""
    sync_state = await nc.jetstream().key_value(subjects.SYNC_STATE_BUCKET)
    report = await check_audit_completeness(audit, sync_state, scribe=nc.jetstream())
    return report.ok, [*report.gaps, *report.duplicates, report.summary()]
