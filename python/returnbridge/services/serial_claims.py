"""Serial claims: a serial number is on at most one open return of a tenant at a time.

KV bucket ``rb_serials``, key ``<tenant>.<serial>`` -> ``{"return_id", "rma_number", "version", "claimed_at"}``.
A claim is a KV create, so of two returns claiming one serial at once exactly one holds it. Serials are claimed at
admission, before the lifecycle write, and a refused admission undoes the claims it made; the serials a return
holds are kept in its lifecycle history (``serials``). They are released when the return is closed or cancelled,
and when a dead letter of its authorization is discarded (the return then never exists in the ERP).

A claim is taken over (compare-and-set on its revision) when its holder is no longer open, or never got admitted
with it: the holder's process stopped between the claim and the lifecycle write, so after ``stale_after`` seconds
without a history that lists the serial the claim is void. A refusal names the other return of the same tenant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import ContendedKeyError, JsonRecord, dumps, get_json, purge_revision
from returnbridge.domain.lifecycle import event_name
from returnbridge.errors import FieldViolation, ValidationError
from returnbridge.sync.status import SyncStateStore

__all__ = ["RULE_SERIAL_IN_USE", "Claim", "SerialClaims", "authorization_discarded", "order_serials"]

log = logging.getLogger(__name__)

RULE_SERIAL_IN_USE: Final = "invariant.serial_in_use"
# Events that end a return: they claim nothing (their serials are being let go).
_ENDING: Final = frozenset({"CLOSED", "CANCELLED"})
_CLOSED_STATES: Final = frozenset({"CLOSED", "CANCELLED"})
_ATTEMPTS: Final = 10


@dataclass(frozen=True, slots=True)
class Claim:
    """What one admission claimed: ``serials`` it holds now, ``created`` = (key, revision) it wrote itself."""

    serials: frozenset[str]
    created: tuple[tuple[str, int], ...] = ()


def order_serials(order: returns_pb2.ReturnOrder) -> dict[str, str]:
    """serial -> the field it first appears in (``return_order.lines[i].serial_numbers[j]``)."""
    found: dict[str, str] = {}
    for i, line in enumerate(order.lines):
        for j, serial in enumerate(line.serial_numbers):
            found.setdefault(serial, f"return_order.lines[{i}].serial_numbers[{j}]")
    return found


@dataclass(frozen=True, slots=True)
class _Held:
    serial: str
    field: str
    holder: JsonRecord


class SerialClaims:
    """Claims and releases serial numbers per tenant.

    Args:
        kv: the ``rb_serials`` bucket.
        status: the sync state store (a holder's lifecycle says whether it is still open).
        stale_after: seconds after which a claim its holder's history does not list is void.
        clock: wall clock (seconds); claims record when they were made.
        marker_ttl: seconds a released claim's purge marker stays (then the key leaves nothing behind).
    """

    def __init__(
        self,
        kv: KeyValue,
        status: SyncStateStore,
        *,
        stale_after: float = 300.0,
        clock: Callable[[], float] = time.time,
        marker_ttl: float = 60.0,
    ) -> None:
        self.kv = kv
        self._status = status
        self._stale_after = stale_after
        self._clock = clock
        self._marker_ttl = marker_ttl

    async def claim(self, order: returns_pb2.ReturnOrder, held: Collection[str] = ()) -> Claim:
        """Claim every serial of ``order`` for its return; ``held`` are serials its history already lists.

        Raises:
            ValidationError: serials on another open return of the tenant, one violation each (nothing claimed).
        """
        wanted = order_serials(order)
        if not wanted or event_name(order) in _ENDING:
            return Claim(frozenset())
        todo = sorted(serial for serial in wanted if serial not in held)
        # All at once (one round trip): two returns racing for the same serials may then both be refused,
        # never both admitted; the RMS's retry settles it.
        outcomes = await asyncio.gather(
            *(self._claim_one(order, serial) for serial in todo), return_exceptions=True
        )
        created: list[tuple[str, int]] = []
        taken: list[_Held] = []
        failure: BaseException | None = None
        for serial, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            elif isinstance(outcome, int):
                if outcome:
                    created.append((self._key(order.tenant_id, serial), outcome))
            else:
                taken.append(_Held(serial, wanted[serial], outcome))
        if failure is not None or taken:
            await self.undo(Claim(frozenset(), tuple(created)))
        if failure is not None:
            raise failure
        if taken:
            raise ValidationError(
                f"return {order.return_id!r}: {len(taken)} serial number(s) on another open return",
                [
                    FieldViolation(
                        h.field,
                        f"serial {h.serial!r} is on open return {h.holder['return_id']!r} "
                        f"(RMA {h.holder.get('rma_number', '')!r}); a serial can be on one open return at a time",
                        rule=RULE_SERIAL_IN_USE,
                    )
                    for h in taken
                ],
            )
        return Claim(frozenset(wanted), tuple(created))

    async def undo(self, claim: Claim) -> None:
        """Delete the claims ``claim`` created, each only if nobody changed it since (a refused admission).

        Never raises: the caller is already failing for its own reason, and a claim left behind (NATS gone
        meanwhile) has a holder that was never admitted with it, so it is void after ``stale_after``.
        """
        results = await asyncio.gather(
            *(self._delete(key, revision) for key, revision in claim.created), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            log.warning(
                "could not undo %d serial claim(s): %s; void after %gs",
                len(failed),
                failed[0],
                self._stale_after,
            )

    async def release(self, tenant: str, return_id: str, serials: Collection[str]) -> None:
        """Let go of ``serials`` where ``return_id`` holds them (idempotent)."""

        async def one(serial: str) -> None:
            key = self._key(tenant, serial)
            record, revision = await get_json(self.kv, key)
            if record is not None and record["return_id"] == return_id:
                await self._delete(key, revision)

        await asyncio.gather(*(one(serial) for serial in serials))

    async def holder(self, tenant: str, serial: str) -> JsonRecord | None:
        """The claim on ``serial`` (None when it is free)."""
        record, _ = await get_json(self.kv, self._key(tenant, serial))
        return record

    async def _claim_one(self, order: returns_pb2.ReturnOrder, serial: str) -> int | JsonRecord:
        """The revision written (0: this return held it already), or the claim of the open return holding it."""
        key = self._key(order.tenant_id, serial)
        mine = dumps(
            {
                "return_id": order.return_id,
                "rma_number": order.rma_number,
                "version": int(order.version),
                "claimed_at": self._clock(),
            }
        )
        for _ in range(_ATTEMPTS):
            try:
                return int(await self.kv.create(key, mine))
            except KeyWrongLastSequenceError:
                pass
            current, revision = await get_json(self.kv, key)
            if current is None:
                continue  # released in between: create again
            if current["return_id"] == order.return_id:
                return 0
            if await self._holds(order.tenant_id, serial, current):
                return current
            try:
                return int(await self.kv.update(key, mine, last=revision))
            except KeyWrongLastSequenceError:
                continue
        raise ContendedKeyError(f"serial claim {key!r} changed concurrently {_ATTEMPTS} times in a row")

    async def _holds(self, tenant: str, serial: str, claim: JsonRecord) -> bool:
        """Is ``claim`` still good: its return open and (admitted with the serial, or claimed moments ago)?"""
        record = await self._status.get(tenant, str(claim["return_id"]))
        history: dict[str, Any] = (record or {}).get("lifecycle") or {}
        if history.get("state") in _CLOSED_STATES or (record is not None and authorization_discarded(record)):
            return False
        if serial in history.get("serials", ()):
            return True
        return self._clock() - float(claim.get("claimed_at", 0)) < self._stale_after

    async def _delete(self, key: str, revision: int) -> None:
        # That revision only: a claim taken over or re-made since is another revision and stays.
        await purge_revision(self.kv, key, revision, marker_ttl=self._marker_ttl)

    @staticmethod
    def _key(tenant: str, serial: str) -> str:
        return f"{subjects.kv_token(tenant)}.{subjects.kv_token(serial)}"


def authorization_discarded(record: JsonRecord) -> bool:
    """A dead letter of the return's AUTHORIZED event was discarded: the return never exists in the ERP."""
    versions = {v for v, entry in record.get("versions", {}).items() if entry.get("event") == "AUTHORIZED"}
    return any(
        str(doc.get("version")) in versions and doc.get("state") == "DISCARDED"
        for doc in record.get("documents", {}).values()
    )
