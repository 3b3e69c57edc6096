"""Lifecycle admission at submit: the event checked against the return's history, reserved with compare-and-set.

The history lives in the return's sync state record (KV ``rb_sync_state``, key ``<tenant>.<return>``, field
``lifecycle``). The check and the write are one KV compare-and-set: of two concurrent submissions from the
same state, the second re-reads, sees the first, and is judged against it. A refused submission writes
nothing; an admitted one holds its version even if the publish then fails, so only a retry of the same
payload can complete it. The same write reserves the version in the sync record (its documents ACCEPTED, stream
sequence 0 until the message is named): admission, idempotency and registration are one round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import JsonRecord, get_json, modify_json_versioned
from returnbridge.domain.invariants import adopt, book, history_violations
from returnbridge.domain.lifecycle import admit, event_name
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.errors import PreconditionError, ValidationError
from returnbridge.services.serial_claims import Claim, SerialClaims, order_serials
from returnbridge.sync.status import SyncStateStore, VersionEntry, new_record

__all__ = ["Admissions", "Admitted"]

_SETTLING = frozenset({"REFUNDED", "EXCHANGED"})
_RELEASING = frozenset({"CLOSED", "CANCELLED"})


@dataclass(frozen=True, slots=True)
class Admitted:
    """The outcome: ``duplicate`` when this exact version was admitted before; ``known`` = (record, revision)."""

    duplicate: bool
    state: str
    known: tuple[JsonRecord | None, int]


class Admissions:
    """Checks and reserves lifecycle events.

    Args:
        status: the sync state store (its KV bucket holds the histories).
        policy: the ``returns`` policy (per tenant).
        minor_units: currency -> decimal places (ISO 4217 unless reference data says otherwise).
        serials: when set, a serial number is on one open return of a tenant at a time (claimed here).
    """

    def __init__(
        self,
        status: SyncStateStore,
        policy: ReturnPolicyConfig,
        minor_units: Mapping[str, int],
        serials: SerialClaims | None = None,
    ) -> None:
        self._status = status
        self._policy = policy
        self._minor = minor_units
        self._serials = serials

    async def admit(
        self, order: returns_pb2.ReturnOrder, digest: str, reserve: VersionEntry | None = None
    ) -> Admitted:
        """Admit ``order`` (already validated on its own) or raise.

        ``reserve``: the version entry and documents to write in the same compare-and-set (stream sequence 0
        until the message is published), so the submission needs no second write before its answer.

        Raises:
            PreconditionError: the version or the event does not fit the return's state (FAILED_PRECONDITION).
            ValidationError: the event breaks an invariant against the history, or carries a serial number that
                is on another open return of the tenant (INVALID_ARGUMENT).
        """
        policy = self._policy.for_tenant(order.tenant_id).lifecycle
        places = self._minor.get(order.currency, 2)
        event = event_name(order)
        outcome: list[Admitted] = []

        def change(record: JsonRecord | None) -> JsonRecord | None:
            outcome.clear()
            history = record.get("lifecycle") if record else None
            if history is None and record and record["versions"]:
                history = adopt(record, order)
            decision = admit(history, order, digest, policy)
            if decision.duplicate:
                outcome.append(Admitted(True, decision.current, (None, 0)))
                return None
            early = decision.current == "AUTHORIZED" and event in _SETTLING
            problems = history_violations(
                history, order, places, settle_before_receipt=early, partial_receipts=policy.partial_receipts
            )
            if problems:
                raise ValidationError(
                    f"return {order.return_id!r}: {len(problems)} problem(s) with its history", problems
                )
            record = record or new_record(order)
            record["lifecycle"] = book(history, order, digest, decision.target, places, advance=early)
            if claim.serials:
                held = set(record["lifecycle"].get("serials", ())) | claim.serials
                record["lifecycle"]["serials"] = sorted(held)
            if reserve is not None and str(order.version) not in record["versions"]:
                reserve.add(record)
            outcome.append(Admitted(False, decision.target, (None, 0)))
            return record

        key = subjects.sync_state_key(order.tenant_id, order.return_id)
        known: tuple[JsonRecord | None, int] | None = (None, 0) if order.version == 1 else None
        claim = Claim(frozenset())
        if self._serials is not None and order_serials(order):
            if known is None:
                known = await get_json(self._status.kv, key)  # the read the CAS loop would do, done first
            history = (known[0] or {}).get("lifecycle") or {}
            claim = await self._serials.claim(order, held=history.get("serials", ()))
        try:
            if order.version == 1:
                # Most admissions are a return's first version: try a plain create before the read-modify loop. A
                # refusal judged against "no record" is only a guess, so it is judged again on the record as read.
                try:
                    stored, revision = await modify_json_versioned(self._status.kv, key, change, known=known)
                except (PreconditionError, ValidationError):
                    stored, revision = await modify_json_versioned(self._status.kv, key, change)
            else:
                stored, revision = await modify_json_versioned(self._status.kv, key, change, known=known)
        except BaseException:
            if self._serials is not None and claim.created:
                await asyncio.shield(self._serials.undo(claim))
            raise
        (result,) = outcome
        if self._serials is not None and result.state in _RELEASING and stored is not None:
            # Also on a duplicate: a retry finishes a release an earlier attempt did not.
            held = (stored.get("lifecycle") or {}).get("serials", ())
            await self._serials.release(order.tenant_id, order.return_id, held)
        return Admitted(result.duplicate, result.state, (stored, revision))
