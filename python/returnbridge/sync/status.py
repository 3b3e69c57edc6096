"""Sync state per return in KV ``rb_sync_state`` and the SyncEvents published on ``rb.status.<tenant>``.

One JSON record per return (key ``<tenant>.<return>``) holds every version and every ERP document
step; writers (gateway, workers, admin) update it with compare-and-set, so concurrent workers never
lose each other's transitions.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.api.v1 import common_pb2, inventory_pb2, returns_pb2, sync_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import JsonRecord, get_json, modify_json, modify_json_versioned
from returnbridge.bus.publisher import Publisher
from returnbridge.domain.context import request_id
from returnbridge.domain.enums import enum_short
from returnbridge.domain.money import line_amount, minor_units
from returnbridge.domain.steps import PlannedStep

# Worst first: the return's overall state is the worst of its documents.
_SEVERITY = {
    "DEAD_LETTERED": 7,
    "RETRYING": 6,
    "IN_PROGRESS": 5,
    "WAITING": 4,
    "ACCEPTED": 3,
    "DISCARDED": 2,
    "DELIVERED": 1,
}
RESOLVED = frozenset({"DELIVERED", "DISCARDED"})

log = logging.getLogger(__name__)


def state_value(name: str) -> int:
    return int(sync_pb2.SyncState.Value("SYNC_STATE_" + name))


def state_name(value: int) -> str:
    return enum_short(sync_pb2.SyncState, "SYNC_STATE_", value)


def _ts(seconds: float | None) -> Timestamp | None:
    if not seconds:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def net_amount(order: returns_pb2.ReturnOrder) -> str:
    """Line subtotal: sum of quantity x unit price, each rounded half-up to the currency's minor units.

    The same rule the gateway validates ``total_amount`` with; "" when a line has no usable price.
    """
    places = minor_units(order.currency)
    total = Decimal(0)
    try:
        for line in order.lines:
            total += line_amount(Decimal(line.quantity), Decimal(line.unit_price.amount), places)
    except InvalidOperation:
        return ""
    return str(total) if order.lines else ""


def new_record(order: returns_pb2.ReturnOrder) -> JsonRecord:
    """The empty sync state of a return (no versions yet)."""
    return {
        "tenant_id": order.tenant_id,
        "return_id": order.return_id,
        "rma_number": order.rma_number,
        "latest_version": 0,
        "versions": {},
        "documents": {},
        "dead_letters": {},
    }


def _expected(by_basis: dict[str, dict[str, str]], basis: str | bool) -> dict[str, str] | None:
    chosen = by_basis.get("gross" if basis is True else str(basis or ""))
    return chosen if chosen and chosen["amount"] else None


def event_short(order: returns_pb2.ReturnOrder) -> str:
    """``LIFECYCLE_EVENT_RECEIVED`` -> ``"RECEIVED"``."""
    return enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)


class VersionEntry:
    """One accepted version and its documents as the sync record holds them, built once per submission.

    ``add`` may run several times (a compare-and-set loop retries it on a fresh record), so what only depends
    on the order is computed here once. The entry keeps the route (base64 ``RouteDecision``): a retry with the
    same key is answered from it.
    """

    __slots__ = ("_docs", "_entry", "_rma", "accepted_at", "pending", "route", "steps", "version")

    def __init__(
        self,
        order: returns_pb2.ReturnOrder,
        decision: returns_pb2.RouteDecision,
        steps: list[PlannedStep],
        accepted_at: float,
        *,
        message: tuple[dict[str, str], bytes] | None = None,
    ) -> None:
        self.steps = steps
        # The message a reservation will be published as (headers, payload): kept in the reserved entry until the
        # message is named, so that a reservation whose gateway stopped before its publish is still published
        # (delivery/orphans.py).
        self.pending: dict[str, Any] | None = None
        if message is not None:
            headers, payload = message
            self.pending = {"headers": headers, "payload": base64.b64encode(payload).decode()}
        self.version = int(order.version)
        self._rma = order.rma_number
        self.accepted_at = accepted_at
        self.route = base64.b64encode(decision.SerializeToString()).decode()
        gross = {"amount": order.refund.amount.amount, "currency": order.refund.amount.currency}
        if not gross["amount"]:
            gross = {
                "amount": order.total_amount.amount,
                "currency": order.total_amount.currency or order.currency,
            }
        by_basis = {"gross": gross}
        if any(step.posts_amount == "net" for step in steps):
            by_basis["net"] = {"amount": net_amount(order), "currency": order.currency}
        erp, target = int(decision.erp), decision.target
        self._entry: dict[str, Any] = {
            "event": event_short(order),
            "state": "ACCEPTED",
            "target": target,
            "erp": erp,
            "steps": [s.step for s in steps],
            "stream_sequence": 0,
            "accepted_at": accepted_at,
            "route": self.route,
        }
        self._docs: list[dict[str, Any]] = [
            {
                "step": step.step,
                "version": self.version,
                "erp": erp,
                "target": target,
                "document_type": step.document_type,
                "state": "ACCEPTED",
                "erp_document_id": "",
                "attempts": 0,
                "last_error": None,
                "created_at": accepted_at,
                "updated_at": accepted_at,
                "delivered_at": 0,
                "expected_amount": _expected(by_basis, step.posts_amount),
                "posted_amount": None,
                "dead_letter_id": 0,
            }
            for step in steps
        ]

    def add(self, record: JsonRecord, *, stream_sequence: int = 0) -> list[PlannedStep]:
        """Write the version and its documents (ACCEPTED) into ``record``; the steps whose documents it wrote.

        ``stream_sequence`` 0 reserves the version before its message is published (see ``confirm``).
        """
        record["rma_number"] = self._rma or record["rma_number"]
        entry = dict(self._entry, stream_sequence=stream_sequence)
        if not stream_sequence and self.pending is not None:
            entry["pending"] = self.pending
        record["versions"][str(self.version)] = entry
        for step, doc in zip(self.steps, self._docs, strict=True):
            expected = doc["expected_amount"]
            record["documents"][doc_key(self.version, step.step)] = dict(
                doc, expected_amount=dict(expected) if expected else None
            )
        record["latest_version"] = max(int(record["latest_version"]), self.version)
        record["updated_at"] = self.accepted_at
        return list(self.steps)


def is_reserved(entry: JsonRecord) -> bool:
    """A version entry the admission reserved whose stream message is not named yet (``stream_sequence`` 0);
    entries from before reservations carry no sequence and were always published."""
    return not entry.get("stream_sequence", 1)


def doc_key(version: int, step: str) -> str:
    return f"{version}:{step}"


def version_state(record: JsonRecord, version: int) -> str:
    """A version's state: its own when it has no documents, else the worst of its documents."""
    entry = record["versions"][str(version)]
    docs = [record["documents"][doc_key(version, s)]["state"] for s in entry["steps"]]
    if not docs:
        return str(entry["state"])
    return str(max(docs, key=lambda s: _SEVERITY[s]))


def is_acceptance(record: JsonRecord, version: int, event: str, accepted_at: float) -> bool:
    """Whether ``record`` registered ``version`` from the acceptance of ``event`` at ``accepted_at``."""
    entry = record["versions"].get(str(version))
    return entry is not None and entry["event"] == event and float(entry["accepted_at"]) == accepted_at


def blocking_versions(record: JsonRecord, version: int) -> list[tuple[int, str]]:
    """Lower versions of the return not yet delivered or discarded (they hold this version back)."""
    blocked = []
    for key in record["versions"]:
        lower = int(key)
        if lower < version:
            state = version_state(record, lower)
            if state not in RESOLVED:
                blocked.append((lower, state))
    return sorted(blocked)


def source_document(record: JsonRecord, step: str, before_version: int) -> dict[str, Any] | None:
    """The latest delivered document of ``step`` from this or an earlier version."""
    best = None
    for doc in record["documents"].values():
        if doc["step"] == step and doc["state"] == "DELIVERED" and doc["version"] <= before_version:
            if best is None or doc["version"] > best["version"]:
                best = doc
    return best


def error_dict(error: common_pb2.ErpError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "erp": int(error.erp),
        "code": error.code,
        "message": error.message,
        "http_status": error.http_status,
        "error_class": int(error.error_class),
    }


def _error_proto(data: dict[str, Any] | None) -> common_pb2.ErpError | None:
    if not data:
        return None
    return common_pb2.ErpError(
        erp=data["erp"],
        code=data["code"],
        message=data["message"],
        http_status=data["http_status"],
        error_class=data["error_class"],
    )


class SyncStateStore:
    """Reads and transitions sync state and publishes one SyncEvent per transition.

    Args:
        kv: the ``rb_sync_state`` bucket.
        publisher: publishes SyncEvents to ``rb.status.<tenant>``.
        rma_index: the ``rb_rma_index`` bucket; when set, a return's first accepted version records its RMA
            number there, so ``find_by_rma`` can answer.
    """

    def __init__(self, kv: KeyValue, publisher: Publisher, rma_index: KeyValue | None = None) -> None:
        self.kv = kv
        self._publisher = publisher
        self._rma_index = rma_index

    async def find_by_rma(self, tenant: str, rma_number: str) -> str | None:
        """The id of the caller's return with this RMA number (the first return accepted under it), or None."""
        if self._rma_index is None:
            return None
        try:
            entry = await self._rma_index.get(subjects.rma_index_key(tenant, rma_number))
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def _index_rma(self, tenant: str, rma_number: str, return_id: str) -> None:
        if self._rma_index is None or not rma_number:
            return
        # create(): an RMA keeps pointing at the first return accepted under it; a later one never steals it.
        try:
            await self._rma_index.create(subjects.rma_index_key(tenant, rma_number), return_id.encode())
        except KeyWrongLastSequenceError:
            pass
        except NatsError as exc:  # the index is a convenience: never fail an acceptance over it
            log.warning("RMA index not updated for return %s: %s", return_id, exc)

    async def get(self, tenant: str, return_id: str) -> JsonRecord | None:
        record, _ = await get_json(self.kv, subjects.sync_state_key(tenant, return_id))
        return record

    async def get_versioned(self, tenant: str, return_id: str) -> tuple[JsonRecord | None, int]:
        """The record and its KV revision, to pass as ``known`` to the next transition."""
        return await get_json(self.kv, subjects.sync_state_key(tenant, return_id))

    async def register(
        self,
        order: returns_pb2.ReturnOrder,
        decision: returns_pb2.RouteDecision,
        steps: Iterable[PlannedStep],
        *,
        stream_sequence: int,
        accepted_at: float,
        known: tuple[JsonRecord | None, int] | None = None,
    ) -> bool:
        """Record an accepted version and its documents (ACCEPTED); never moves an existing entry back.

        Returns True when the stored version entry is this acceptance (same event and ``accepted_at``, which
        is unique per idempotency record), False when another event already holds the version. ``known`` is
        the record and revision the lifecycle admission just wrote (saves a read).
        """
        tenant, version = order.tenant_id, int(order.version)
        event = event_short(order)
        entry = VersionEntry(order, decision, list(steps), accepted_at)
        created: list[PlannedStep] = []

        def change(record: JsonRecord | None) -> JsonRecord | None:
            created.clear()
            record = record or new_record(order)
            if str(version) in record["versions"]:
                return None
            created.extend(entry.add(record, stream_sequence=stream_sequence))
            return record

        # Most registrations are a return's first version: try a plain create before the read-modify loop.
        write = modify_json(
            self.kv,
            subjects.sync_state_key(tenant, order.return_id),
            change,
            known=known if known is not None else ((None, 0) if version == 1 else None),
        )
        if version == 1:
            # Version 1 is always a return's first: index its RMA in the same round trip (create-only, so a
            # repeated registration changes nothing).
            stored, _ = await asyncio.gather(
                write, self._index_rma(tenant, order.rma_number, order.return_id)
            )
        else:
            stored = await write
            if stored is not None and created and min(stored["versions"], key=int) == str(version):
                await self._index_rma(tenant, order.rma_number, order.return_id)  # the return's first version
        if stored is not None and created:
            for step in created:
                await self._emit(stored, version, step.step, "ACCEPTED")
        return stored is not None and is_acceptance(stored, version, event, accepted_at)

    async def index_first_version(self, order: returns_pb2.ReturnOrder) -> None:
        """Index the RMA number of a return's first version (create-only: a repeat changes nothing)."""
        if int(order.version) == 1:
            await self._index_rma(order.tenant_id, order.rma_number, order.return_id)

    async def confirm(
        self,
        tenant: str,
        return_id: str,
        version: int,
        stream_sequence: int,
        *,
        known: tuple[JsonRecord | None, int] | None = None,
    ) -> tuple[JsonRecord | None, int, int]:
        """Name the stream message that carries a reserved version (first writer wins).

        The admission reserves a version (``stream_sequence`` 0) before its message is published; the gateway
        names the message after the PubAck, the worker before it delivers one whose gateway stopped first. A
        retry past JetStream's duplicate window can store a second message of the version: only the named one
        delivers. Naming drops the reservation's ``pending`` message (it is stored now). Returns the record as
        stored, its revision and the sequence it names (0: no such version).
        """

        def change(record: JsonRecord | None) -> JsonRecord | None:
            entry = (record or {}).get("versions", {}).get(str(version))
            if record is None or entry is None or entry["stream_sequence"]:
                return None
            entry["stream_sequence"] = stream_sequence
            entry.pop("pending", None)
            return record

        stored, revision = await modify_json_versioned(
            self.kv, subjects.sync_state_key(tenant, return_id), change, known=known
        )
        entry = (stored or {}).get("versions", {}).get(str(version))
        return stored, revision, int(entry["stream_sequence"]) if entry else 0

    async def announce_accepted(self, record: JsonRecord, version: int) -> None:
        """The ACCEPTED SyncEvent of each document of a version just accepted (fire and forget)."""
        for step in record["versions"][str(version)]["steps"]:
            await self._emit(record, version, step, "ACCEPTED")

    async def transition(
        self,
        tenant: str,
        return_id: str,
        version: int,
        step: str,
        state: str,
        *,
        erp_document_id: str = "",
        error: common_pb2.ErpError | None = None,
        attempt: bool = False,
        dead_letter_id: int = 0,
        only_from: frozenset[str] | None = None,
        known: tuple[JsonRecord | None, int] | None = None,
        ambiguous_at: float | None = None,
    ) -> tuple[JsonRecord | None, int]:
        """Move one document to ``state``; ``only_from`` skips the write unless the current state is in it.

        ``ambiguous_at``: when a create's answer was found lost (kept until a later one replaces it).

        ``known`` is a recently read ``(record, revision)`` that saves the read when nobody wrote since.
        Returns the record as stored (or unchanged) and its revision, a valid ``known`` for the next write.
        """
        now = time.time()
        changed = False

        def change(record: JsonRecord | None) -> JsonRecord | None:
            nonlocal changed
            changed = False
            if record is None:
                return None
            doc = record["documents"].get(doc_key(version, step))
            if doc is None or (only_from is not None and doc["state"] not in only_from):
                return None
            doc["state"] = state
            doc["updated_at"] = now
            if erp_document_id:
                doc["erp_document_id"] = erp_document_id
            if error is not None:
                doc["last_error"] = error_dict(error)
            if attempt:
                doc["attempts"] += 1
            if ambiguous_at is not None:
                doc["ambiguous_at"] = ambiguous_at
            if state == "DELIVERED":
                doc["delivered_at"] = now
            if dead_letter_id:
                doc["dead_letter_id"] = dead_letter_id
                record["dead_letters"][str(dead_letter_id)] = "PENDING"
            record["updated_at"] = now
            changed = True
            return record

        stored, revision = await modify_json_versioned(
            self.kv, subjects.sync_state_key(tenant, return_id), change, known=known
        )
        if stored is not None and changed:
            await self._emit(stored, version, step, state)
        return stored, revision

    async def announce(
        self, record: JsonRecord, version: int, step: str, state: str, *, attempt: int = 0
    ) -> None:
        """Publish a SyncEvent without storing the state (IN_PROGRESS: recovery relies on redelivery lookups)."""
        await self._emit(record, version, step, state, attempt=attempt)

    async def set_version_state(self, tenant: str, return_id: str, version: int, state: str) -> None:
        """For versions without documents (nothing to create) and WAITING marks on their documents."""
        now = time.time()
        emitted: list[str] = []

        def change(record: JsonRecord | None) -> JsonRecord | None:
            emitted.clear()
            if record is None or str(version) not in record["versions"]:
                return None
            entry = record["versions"][str(version)]
            if entry["state"] == state and not entry["steps"]:
                return None
            entry["state"] = state
            for step in entry["steps"]:
                doc = record["documents"][doc_key(version, step)]
                if state == "WAITING" and doc["state"] in ("ACCEPTED", "RETRYING"):
                    doc["state"], doc["updated_at"] = state, now
                    emitted.append(step)
            record["updated_at"] = now
            return record

        stored = await modify_json(self.kv, subjects.sync_state_key(tenant, return_id), change)
        if stored is not None:
            for step in emitted:
                await self._emit(stored, version, step, state)

    async def set_dead_letter_state(
        self, tenant: str, return_id: str, dead_letter_id: int, state: str
    ) -> None:
        def change(record: JsonRecord | None) -> JsonRecord | None:
            if record is None:
                return None
            record["dead_letters"][str(dead_letter_id)] = state
            return record

        await modify_json(self.kv, subjects.sync_state_key(tenant, return_id), change)

    async def note_erp_status(self, status: inventory_pb2.DocumentStatus) -> bool:
        """Record what the ERP reports about a document this return created; True when it changed.

        The document is found by the external reference every connector writes (``<rma or return>-<version>``)
        and its ERP id; a status repeated by a later poll or a duplicate push changes nothing and emits nothing.
        A document the RMS never created (a credit posted by hand in the ERP) is not in any return's state.
        """
        tenant, reference = status.tenant_id, status.external_reference
        prefix, _, version_text = reference.rpartition("-")
        if not (status.document_id and status.status and prefix and version_text.isdigit()):
            return False
        version = int(version_text)
        return_id = await self.find_by_rma(tenant, prefix) or prefix
        amount = (
            {"amount": status.amount.amount, "currency": status.amount.currency}
            if status.amount.amount
            else None
        )
        found: list[str] = []
        as_of = status.as_of.ToNanoseconds() / 1e9 if status.HasField("as_of") else 0.0

        def change(record: JsonRecord | None) -> JsonRecord | None:
            found.clear()
            if record is None:
                return None
            for doc in record["documents"].values():
                if (
                    doc["version"] == version
                    and doc["erp_document_id"] == status.document_id
                    and doc["document_type"] == status.document_type
                ):
                    if doc.get("erp_status") == status.status and doc.get("erp_amount") == amount:
                        return None
                    if as_of and as_of < float(doc.get("erp_status_as_of") or 0):
                        return None  # an older report arriving late (a delayed push) never undoes a newer one
                    doc["erp_status_as_of"] = as_of
                    doc["erp_status"] = status.status
                    doc["erp_amount"] = amount
                    doc["erp_status_at"] = time.time()
                    found.append(doc["step"])
                    return record
            return None

        stored = await modify_json(self.kv, subjects.sync_state_key(tenant, return_id), change)
        if stored is None or not found:
            return False
        doc = stored["documents"][doc_key(version, found[0])]
        await self._emit(stored, version, found[0], doc["state"], erp_status=status.status, erp_amount=amount)
        return True

    async def _emit(
        self,
        record: JsonRecord,
        version: int,
        step: str,
        state: str,
        *,
        attempt: int = 0,
        erp_status: str = "",
        erp_amount: dict[str, str] | None = None,
    ) -> None:
        doc = record["documents"][doc_key(version, step)]
        event = sync_pb2.SyncEvent(
            tenant_id=record["tenant_id"],
            return_id=record["return_id"],
            version=version,
            step=step,
            erp=doc["erp"],
            document_type=doc["document_type"],
            state=state_value(state),  # type: ignore[arg-type]
            erp_document_id=doc["erp_document_id"],
            attempt=attempt or doc["attempts"],
            occurred_at=_ts(time.time()),
            request_id=request_id(),
            erp_status=erp_status,
        )
        if erp_amount:
            event.erp_amount.CopyFrom(common_pb2.Money(**erp_amount))
        error = _error_proto(doc["last_error"]) if state in ("RETRYING", "DEAD_LETTERED") else None
        if error is not None:
            event.error.CopyFrom(error)
        await self._publisher.publish_event(subjects.status(record["tenant_id"]), event.SerializeToString())


def to_proto(record: JsonRecord) -> sync_pb2.ReturnSyncStatus:
    """The GetReturnStatus answer for one stored record."""
    status = sync_pb2.ReturnSyncStatus(
        tenant_id=record["tenant_id"],
        return_id=record["return_id"],
        rma_number=record["rma_number"],
        latest_version=int(record["latest_version"]),
        updated_at=_ts(record.get("updated_at")),
        lifecycle_state=(record.get("lifecycle") or {}).get("state", ""),
    )
    states = []
    for key in sorted(record["versions"], key=int):
        states.append(version_state(record, int(key)))
        for step in record["versions"][key]["steps"]:
            doc = record["documents"][doc_key(int(key), step)]
            status.documents.append(
                sync_pb2.DocumentSync(
                    step=doc["step"],
                    erp=doc["erp"],
                    target=doc["target"],
                    document_type=doc["document_type"],
                    state=state_value(doc["state"]),  # type: ignore[arg-type]
                    erp_document_id=doc["erp_document_id"],
                    attempts=doc["attempts"],
                    last_error=_error_proto(doc["last_error"]),
                    version=doc["version"],
                    created_at=_ts(doc["created_at"]),
                    updated_at=_ts(doc["updated_at"]),
                    delivered_at=_ts(doc["delivered_at"]),
                    erp_status=doc.get("erp_status", ""),
                    erp_amount=common_pb2.Money(**doc["erp_amount"]) if doc.get("erp_amount") else None,
                    erp_status_at=_ts(doc.get("erp_status_at")),
                )
            )
    if states:
        status.state = state_value(max(states, key=lambda s: _SEVERITY[s]))  # type: ignore[assignment]
    return status


__all__ = [
    "RESOLVED",
    "SyncStateStore",
    "blocking_versions",
    "doc_key",
    "is_acceptance",
    "new_record",
    "source_document",
    "state_name",
    "state_value",
    "to_proto",
    "version_state",
]
