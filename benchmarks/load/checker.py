"""The independent checker: per return, what the client saw against what the ERPs hold and the sync state.

Sources, none of them the load driver's own bookkeeping of the service:
* the ERP simulators' ``/_sim/documents`` (their duplicate policy is ``accept``, so a second document for one
  external reference is stored and counted instead of refused);
* the service's sync state (KV ``rb_sync_state``) and the JetStream consumers of ``RB_DELIVER`` (backlog);
* the audit log: the chain check and the completeness check (``audit verify --completeness``: gaps and
  acceptances audited twice);
* the alerts the service sent to the tool's webhook (``alert_verdict``: one notification per incident).

Per return (client outcome x service state x ERP documents):
* ``lost``: the client was told ACCEPTED/DUPLICATE (or the service registered it), no ERP holds a document
  and it is not dead-lettered: accepted and never posted, never terminal;
* ``false_ok``: the client was told ACCEPTED/DUPLICATE but the service has no record of the return;
* ``duplicated``: more than one ERP document carries the return's external reference;
* ``unknown``: the client's final answer was an error, yet the return was registered or posted;
* ``dead_lettered``: terminal in the DLQ (with its alert), not posted: accounted for, not lost, yet not clean:
  no fault here is permanent and every return of the load is valid, so a dead letter is a return someone
  must replay by hand (a 60 s ERP outage that outlived the retry budget did that once);
* ``state_drift``: one ERP document exists but the sync state does not say DELIVERED (or the reverse).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_stream
from returnbridge.bus import subjects
from returnbridge.sync.audit_completeness import check_audit_completeness

from .driver import Submission

TERMINAL = frozenset({"DELIVERED", "DEAD_LETTERED", "DISCARDED"})

# Per routing target: simulator, the document type of the AUTHORIZED step, the field holding the external
# reference (``<rma>-<version>``) and the document id the sync state records.
ERP_DOCUMENTS = {
    "netsuite": ("netsuite", "returnAuthorization", "externalId", "id"),
    "sap": ("sap", "A_CustomerReturn", "PurchaseOrderByCustomer", "CustomerReturn"),
    "oracle_fusion": ("oracle", "salesOrdersForOrderHub", "SourceTransactionNumber", "HeaderId"),
}


@dataclass
class CheckReport:
    returns: int = 0
    client_ok: int = 0
    client_error: int = 0
    registered: int = 0
    posted: int = 0
    lost: int = 0
    false_ok: int = 0
    duplicated: int = 0
    unknown: int = 0
    dead_lettered: int = 0
    state_drift: int = 0
    not_terminal: int = 0
    # Retries of a return that first ended in an error and then got DUPLICATE: the first attempt had landed.
    resolved_by_retry: int = 0
    backlog_drained: bool = False
    backlog: dict[str, int] = field(default_factory=dict)
    drain_seconds: float = 0.0
    audit_gaps: int = 0
    # Accepted versions with two return.submitted entries (a scribe's write repeated after its death).
    audit_duplicates: int = 0
    audit_chain_ok: bool = False
    audit_chain_problems: int = 0
    audit_entries_checked: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    sync_states: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.false_ok
            or self.duplicated
            or self.unknown
            or self.audit_gaps
            or self.audit_duplicates
            or self.state_drift
            or self.dead_lettered
        ) and (self.backlog_drained and self.audit_chain_ok)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean}

    def note(self, kind: str, text: str) -> None:
        examples = self.examples.setdefault(kind, [])
        if len(examples) < 10:
            examples.append(text)


async def sync_records(kv: KeyValue, return_prefix: str) -> dict[str, dict[str, Any]]:
    """Every sync record whose return id starts with ``return_prefix``, by return id."""
    records: dict[str, dict[str, Any]] = {}
    watcher = await kv.watch(">", ignore_deletes=True)
    try:
        while True:
            entry = await watcher.updates(timeout=10.0)
            if entry is None:
                break
            if entry.value:
                record = json.loads(entry.value)
                if str(record.get("return_id", "")).startswith(return_prefix):
                    records[record["return_id"]] = record
            if not entry.delta:
                break
    finally:
        await watcher.stop()
    return records


def record_state(record: dict[str, Any] | None) -> str:
    """The state of version 1's AUTHORIZED document ("" when the return was never registered)."""
    if record is None:
        return ""
    docs = [d for d in record.get("documents", {}).values() if int(d.get("version", 0)) == 1]
    if not docs:
        return str(record.get("versions", {}).get("1", {}).get("state", "REGISTERED"))
    return str(docs[0]["state"])


async def backlog(nc: NatsClient) -> dict[str, int]:
    """Pending + unacknowledged messages per consumer of RB_DELIVER."""
    js = nc.jetstream()
    depth: dict[str, int] = {}
    for info in await js.consumers_info(subjects.DELIVER_STREAM):
        depth[info.name] = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    return depth


async def wait_drained(
    nc: NatsClient, return_prefix: str, expected: set[str], timeout: float
) -> tuple[bool, float, dict[str, dict[str, Any]]]:
    """Poll until every registered return of the run is terminal, none holds a version reserved and never
    published (the reservation sweeper publishes those, delivery/orphans.py) and RB_DELIVER has no backlog."""
    kv = await nc.jetstream().key_value(subjects.SYNC_STATE_BUCKET)
    started = time.monotonic()
    while True:
        records = await sync_records(kv, return_prefix)
        open_ = [r for r in records.values() if record_state(r) not in TERMINAL or _unnamed(r)]
        missing = expected - set(records)
        depth = await backlog(nc)
        if not open_ and not missing and not any(depth.values()):
            return True, time.monotonic() - started, records
        if time.monotonic() - started > timeout:
            return False, time.monotonic() - started, records
        await asyncio.sleep(1.0)


def _unnamed(record: dict[str, Any]) -> bool:
    return any(not entry.get("stream_sequence", 1) for entry in record.get("versions", {}).values())


async def erp_documents(sim_urls: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The AUTHORIZED-step documents of every target, from the simulators' inspection routes."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with httpx.AsyncClient(timeout=120) as http:
        for target, (sim, doc_type, _, _) in ERP_DOCUMENTS.items():
            response = await http.get(f"{sim_urls[sim]}/_sim/documents", params={"type": doc_type})
            response.raise_for_status()
            out[target] = list(response.json().get(doc_type, []))
    return out


async def check(
    nc: NatsClient,
    sim_urls: dict[str, str],
    submissions: list[Submission],
    *,
    return_prefix: str,
    rma_prefix: str,
    drain_timeout: float,
) -> CheckReport:
    report = CheckReport(returns=len(submissions))
    client_ok = {s.return_id for s in submissions if s.ok}
    drained, seconds, records = await wait_drained(nc, return_prefix, client_ok, drain_timeout)
    report.drain_seconds = round(seconds, 1)
    report.backlog = await backlog(nc)
    report.backlog_drained = drained
    report.sync_states = dict(Counter(record_state(r) for r in records.values()))

    by_ref: dict[str, list[str]] = {}
    erp_ids: list[str] = []
    for target, docs in (await erp_documents(sim_urls)).items():
        _, _, ref_field, id_field = ERP_DOCUMENTS[target]
        for doc in docs:
            ref = str(doc.get(ref_field) or "")
            if ref.startswith(rma_prefix):
                by_ref.setdefault(ref, []).append(str(doc.get(id_field)))
                erp_ids.append(str(doc.get(id_field)))

    classify(report, submissions, records, by_ref, rma_prefix)

    audit = AuditLog(nc.jetstream())
    completeness = await check_audit_completeness(
        audit, await nc.jetstream().key_value(subjects.SYNC_STATE_BUCKET), erp_document_ids=erp_ids
    )
    ours = [g for g in completeness.gaps if f"/{return_prefix}" in g or g.startswith("ERP document")]
    report.audit_gaps = len(ours)
    for gap in ours[:10]:
        report.note("audit_gap", gap)
    twice = [d for d in completeness.duplicates if f"/{return_prefix}" in d]
    report.audit_duplicates = len(twice)
    for line in twice[:10]:
        report.note("audit_duplicate", line)
    chain = await verify_stream(audit)
    report.audit_chain_ok = chain.ok
    report.audit_chain_problems = len(chain.problems)
    report.audit_entries_checked = chain.checked
    for problem in chain.problems[:10]:
        report.note("audit_chain", str(problem))
    return report


def classify(
    report: CheckReport,
    submissions: list[Submission],
    records: dict[str, dict[str, Any]],
    by_ref: dict[str, list[str]],
    rma_prefix: str,
) -> None:
    """Count each return's category from the client outcome, its sync record and its ERP documents."""
    for sub in submissions:
        # A record without version 1 is bookkeeping of a call refused before its admission. Version 1 reserved
        # counts as accepted, named or not: GetReturnStatus says ACCEPTED, so it must be posted (the reservation
        # sweeper publishes one whose gateway stopped before the publish); still unnamed here, it is lost.
        record = records.get(sub.return_id)
        if record is not None and "1" not in record.get("versions", {}):
            record = None
        state = record_state(record)
        ref = f"{rma_prefix}{sub.index:06d}-1"
        posted = len(by_ref.get(ref, []))
        report.client_ok += sub.ok
        report.client_error += not sub.ok
        report.registered += record is not None
        report.posted += posted > 0
        if sub.ok and sub.outcome == "DUPLICATE" and sub.errors:
            report.resolved_by_retry += 1
        if posted > 1:
            report.duplicated += 1
            report.note("duplicated", f"{sub.return_id}: {posted} documents {by_ref[ref]}")
        if sub.ok and record is None and not posted:
            report.false_ok += 1
            report.note("false_ok", f"{sub.return_id}: client {sub.outcome}, no sync record, not posted")
        if (sub.ok or record is not None) and not posted and state != "DEAD_LETTERED":
            report.lost += 1
            report.note("lost", f"{sub.return_id} ({sub.erp}): client {sub.outcome}, state {state or '-'}")
        if not sub.ok and (record is not None or posted):
            report.unknown += 1
            report.note(
                "unknown",
                f"{sub.return_id}: client {sub.outcome} {sub.errors}, state {state}, posted {posted}",
            )
        if state == "DEAD_LETTERED":
            report.dead_lettered += 1
        if record is not None and state not in TERMINAL:
            report.not_terminal += 1
        if (posted >= 1) != (state == "DELIVERED") and record is not None:
            report.state_drift += 1
            report.note("state_drift", f"{sub.return_id}: state {state}, {posted} ERP documents")


@dataclass(frozen=True)
class ExpectedAlert:
    """An alert a scenario's fault must raise: ``kind`` (and ``key``, when given), at most ``incidents`` times
    (one notification per incident of the fault; e.g. two separate nats-server restarts). ``incidents=0``: an
    alert the fault must not raise (a cluster node's loss is no NATS outage)."""

    kind: str
    key: str | None = None
    incidents: int = 1

    def matches(self, kind: str, key: str) -> bool:
        return kind == self.kind and (self.key is None or key == self.key)


def alert_verdict(alerts: list[dict[str, Any]], expected: tuple[ExpectedAlert, ...]) -> dict[str, Any]:
    """Notifications per incident ``(kind, key)`` and what is wrong with them.

    Problems: an expected alert that never fired; more firing notifications for one incident than the fault
    had incidents (1 for anything not expected: the de-duplication across processes failed); more
    resolutions of an incident than firings.
    """
    firing: Counter[tuple[str, str]] = Counter()
    resolved: Counter[tuple[str, str]] = Counter()
    for alert in alerts:
        incident = (str(alert.get("kind")), str(alert.get("key")))
        (resolved if alert.get("status") == "resolved" else firing)[incident] += 1
    problems: list[str] = []
    for want in expected:
        if want.incidents and not any(want.matches(kind, key) for kind, key in firing):
            problems.append(f"no {want.kind}{':' + want.key if want.key else ''} alert")
    for (kind, key), count in sorted(firing.items()):
        limit = max((w.incidents for w in expected if w.matches(kind, key)), default=1)
        if count > limit:
            problems.append(f"{count} notifications for incident {kind}:{key} (at most {limit})")
    for want in expected:
        # One fault, one page: a lost node must not page once per stream it led (keys the fault shares).
        keys = sorted(key for kind, key in firing if want.matches(kind, key))
        total = sum(firing[(want.kind, key)] for key in keys)
        if len(keys) > 1 and total > want.incidents:
            problems.append(
                f"{total} notifications for {want.kind} across {len(keys)} keys ({', '.join(keys)}; "
                f"at most {want.incidents})"
            )
    for (kind, key), count in sorted(resolved.items()):
        # One resolution alone may close an incident that fired before this run's window (a shared stack).
        if count > max(firing[(kind, key)], 1):
            problems.append(f"{count} resolutions of {kind}:{key} after {firing[(kind, key)]} firing")
    return {
        "per_incident": {f"{k}:{key}": n for (k, key), n in sorted(firing.items())},
        "resolutions": {f"{k}:{key}": n for (k, key), n in sorted(resolved.items())},
        "unexpected": sorted(
            {f"{k}:{key}" for k, key in firing if not any(w.matches(k, key) for w in expected)}
        ),
        "problems": problems,
    }
