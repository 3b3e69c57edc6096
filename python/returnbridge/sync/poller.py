"""ERP -> RMS: polls each connector for inventory and document status changes since a KV cursor.

Each target and kind polls on its own timer; a push notification (``wake``) polls it now instead. Several
wakes before the poll starts coalesce into one poll, and a wake during a poll makes one more poll after
it, so no change a notification announced is missed and none is read twice. Records equal to what is
stored already are skipped, so a re-read (duplicate notification, restart mid-page, a snapshot feed)
changes nothing a watcher would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Literal, cast

from google.protobuf.message import DecodeError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import dumps, get_json
from returnbridge.bus.publisher import Publisher
from returnbridge.connectors.base import ChangeBatch, Connector
from returnbridge.domain.erps import ERPS, erp_enum
from returnbridge.domain.validation import ReferenceData
from returnbridge.errors import (
    ErpAuthError,
    ErpError,
    NotFoundError,
    PermanentErpError,
    ReturnBridgeError,
    TranslationError,
)
from returnbridge.mapping.ports import MapperSource
from returnbridge.observability.inbound_metrics import count_inbound_dead_letter
from returnbridge.observability.metrics import count_erp_call, count_processing
from returnbridge.observability.push_metrics import observe_inbound_latency
from returnbridge.sync.inbound_checks import level_problems, record_problems, status_problems
from returnbridge.sync.inbound_dlq import AlerterLike, InboundDeadLetter, InboundDeadLetters
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.status import SyncStateStore

log = logging.getLogger(__name__)


Kind = Literal["inventory", "status"]
KINDS: tuple[Kind, ...] = ("inventory", "status")


class PollTargetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    tenant: str
    # Empty = the ERP family's contract mapping.
    inventory_mapping: str = ""
    status_mapping: str = ""
    inventory: bool = True
    status: bool = True


class PollerSettings(BaseModel):
    """The ``sync`` config section."""

    model_config = ConfigDict(extra="forbid")

    interval_seconds: float = Field(default=2.0, gt=0)
    page_size: int = Field(default=500, ge=1, le=5000)
    # Pages read per target and kind in one tick, so one busy ERP cannot starve the others.
    max_pages_per_tick: int = Field(default=20, ge=1)
    targets: list[PollTargetConfig] = []


@dataclass
class PollTarget:
    config: PollTargetConfig
    connector: Connector
    mappings: dict[str, str] = field(default_factory=dict)

    def mapping(self, kind: Kind) -> str:
        explicit = self.config.inventory_mapping if kind == "inventory" else self.config.status_mapping
        if explicit:
            return explicit
        erp = ERPS.get(self.connector.erp)
        defaults = erp.inbound if erp is not None else None
        if defaults is None:
            raise NotFoundError(f"no inbound mappings known for ERP {self.connector.erp!r}")
        return defaults[0] if kind == "inventory" else defaults[1]

    def polls(self, kind: Kind) -> bool:
        return self.config.inventory if kind == "inventory" else self.config.status


@dataclass
class _Feed:
    """One target and kind's loop state: the wake signal and the oldest change a pending push announced."""

    target: PollTarget
    kind: Kind
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    hinted_at: float | None = None

    def hint(self, occurred_at: float) -> None:
        self.hinted_at = occurred_at if self.hinted_at is None else min(self.hinted_at, occurred_at)
        self.woken.set()

    def take(self) -> float | None:
        """The pending hint's change time (None: a scheduled tick), cleared before the poll reads."""
        hinted, self.hinted_at = self.hinted_at, None
        self.woken.clear()
        return hinted


@dataclass(frozen=True, slots=True)
class _NamedErp:
    """Only the ERP name of a connector: a replay reads nothing from the ERP."""

    erp: str


class Poller:
    """Runs every ``interval_seconds``; the cursor only advances after the records were stored and published.

    Args:
        targets: connectors to poll with their tenant.
        mappers: mapping registry (inbound specs).
        cursors: the ``rb_cursors`` bucket.
        inventory: inventory store.
        sync_state: the ``rb_sync_state`` bucket (posted document statuses for reconciliation).
        publisher: publishes ``rb.inventory.<tenant>`` / ``rb.docstatus.<tenant>``.
        status_store: the returns' sync state (finds returns by RMA number: pass the one with the RMA index).
        inbound_dlq: where refused inbound records go (without it they are only logged and counted).
        reference: known SKUs and locations inbound levels are checked against (None: not checked).
        alerter: alerted once per target and kind when a record is dead-lettered.
    """

    def __init__(
        self,
        targets: list[PollTarget],
        mappers: MapperSource,
        cursors: KeyValue,
        inventory: InventoryStore,
        sync_state: KeyValue,
        publisher: Publisher,
        settings: PollerSettings | None = None,
        status_store: SyncStateStore | None = None,
        inbound_dlq: InboundDeadLetters | None = None,
        reference: ReferenceData | None = None,
        alerter: AlerterLike | None = None,
    ) -> None:
        self.targets = targets
        self.settings = settings or PollerSettings()
        self._mappers = mappers
        self._cursors = cursors
        self._inventory = inventory
        self._sync_state = sync_state
        self._publisher = publisher
        self._status_store = status_store or SyncStateStore(sync_state, publisher)
        self._inbound_dlq = inbound_dlq
        self._reference = reference
        self._alerter = alerter
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._started_at = time.time()
        # Last bytes stored per key, so an unchanged record costs no KV read on the next pass.
        self._stored: dict[str, bytes] = {}
        self._feeds = {
            (t.config.target, kind): _Feed(t, kind) for t in targets for kind in KINDS if t.polls(kind)
        }

    async def start(self) -> None:
        self._started_at = time.time()
        self._tasks = [
            asyncio.create_task(self._run(feed), name=f"sync-poller-{name}.{kind}")
            for (name, kind), feed in self._feeds.items()
        ]

    async def stop(self) -> None:
        self._stopping = True
        for feed in self._feeds.values():
            feed.woken.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def wake(self, target: str, kind: str, occurred_at: float | None = None) -> bool:
        """A push said ``target``'s ``kind`` feed changed (at ``occurred_at``): poll it now.

        Returns False when no polled target has that name; True otherwise (also when the kind is not polled:
        the notification is valid, there is just nothing to read).
        """
        feed = self._feeds.get((target, kind))  # type: ignore[arg-type]
        if feed is None:
            return any(t.config.target == target for t in self.targets)
        now = time.time()
        # The sender's clock says when: a change before this poller started is backlog (as on the poll path), and
        # one in the future is a clock off; either would skew the push-latency KPI, so the arrival counts instead.
        feed.hint(occurred_at if occurred_at is not None and self._started_at <= occurred_at <= now else now)
        return True

    async def _run(self, feed: _Feed) -> None:
        while not self._stopping:
            hinted_at = feed.take()
            await self._poll(feed.target, feed.kind, hinted_at)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.woken.wait(), timeout=self.settings.interval_seconds)

    async def poll_once(self) -> dict[str, int]:
        """One tick over all targets; returns records stored per ``<target>.<kind>``."""
        counts: dict[str, int] = {}
        results = await asyncio.gather(
            *(self._poll(target, kind) for target in self.targets for kind in ("inventory", "status")),
            return_exceptions=False,
        )
        index = 0
        for target in self.targets:
            for kind in ("inventory", "status"):
                counts[f"{target.config.target}.{kind}"] = results[index]
                index += 1
        return counts

    async def _poll(self, target: PollTarget, kind: Kind, hinted_at: float | None = None) -> int:
        if not target.polls(kind):
            return 0
        key = subjects.cursor_key(target.config.target, kind)
        stored = 0
        try:
            mapper = self._mappers.get(target.mapping(kind))
            for _ in range(self.settings.max_pages_per_tick):
                cursor = await self._cursor(key)
                batch = await self._read(target, kind, cursor)
                outputs = mapper.translate_batch(batch.records)
                stored += await self._apply(target, kind, batch.records, outputs, cursor or "", hinted_at)
                if batch.cursor != (cursor or ""):
                    await self._cursors.put(key, dumps({"cursor": batch.cursor}))
                if not batch.has_more:
                    break
        except ErpError as exc:
            log.warning("polling %s %s failed: %s", target.config.target, kind, exc)
        except ReturnBridgeError as exc:
            log.error("polling %s %s cannot run: %s", target.config.target, kind, exc)
        return stored

    async def _cursor(self, key: str) -> str | None:
        record, _ = await get_json(self._cursors, key)
        return None if record is None else str(record["cursor"])

    async def _read(self, target: PollTarget, kind: Kind, cursor: str | None) -> ChangeBatch:
        operation = "read_inventory" if kind == "inventory" else "read_status_changes"
        call = (
            target.connector.read_inventory if kind == "inventory" else target.connector.read_status_changes
        )
        try:
            batch = await call(cursor, self.settings.page_size)
        except ErpError as exc:
            error_class = (
                "auth"
                if isinstance(exc, ErpAuthError)
                else "permanent"
                if isinstance(exc, PermanentErpError)
                else "transient"
            )
            count_erp_call(target.connector.erp, operation, "error", error_class)
            raise
        count_erp_call(target.connector.erp, operation, "ok")
        return batch

    async def _apply(
        self,
        target: PollTarget,
        kind: Kind,
        records: list[bytes],
        outputs: list[bytes | TranslationError],
        cursor: str,
        hinted_at: float | None = None,
    ) -> int:
        """Store and publish each record that passes the inbound checks; dead-letter the others and go on."""
        tenant = target.config.tenant
        erp = target.connector.erp
        stored = 0
        for index, (record, output) in enumerate(zip(records, outputs, strict=True)):
            problems = record_problems(record)
            if not problems and isinstance(output, TranslationError):
                # A record we cannot map must not stall the cursor for every other record.
                count_processing("translation_failed")
                reason, problems = "translation_failed", [str(output)]
            elif not problems:
                assert not isinstance(output, TranslationError)
                reason, problems = "invalid", self._problems(target, kind, output)
            else:
                reason = "oversized"
            if problems:
                await self._dead_letter(target, kind, record, reason, problems, cursor, index)
                continue
            assert not isinstance(output, TranslationError)
            if kind == "inventory":
                level = inventory_pb2.InventoryLevel.FromString(output)
                level.tenant_id = tenant
                level.target = target.config.target
                level.source_erp = erp_enum(target.connector.erp)  # type: ignore[assignment]
                key, value = InventoryStore.key_of(level), level.SerializeToString()
                if await self._unchanged(self._inventory.kv, key, value):
                    continue
                await self._inventory.put(level)
                self._stored[key] = value
                await self._publisher.publish_event(subjects.inventory(tenant), value)
                changed_at = level.as_of.ToNanoseconds() / 1e9 if level.HasField("as_of") else None
            else:
                status = inventory_pb2.DocumentStatus.FromString(output)
                status.tenant_id = tenant
                status.erp = erp_enum(target.connector.erp)  # type: ignore[assignment]
                if status.document_id:
                    key = subjects.posted_key(tenant, status.document_type, status.document_id)
                    posted = dumps(
                        {
                            "status": status.status,
                            "erp_status": status.erp_status,
                            "amount": status.amount.amount,
                            "currency": status.amount.currency,
                            "external_reference": status.external_reference,
                        }
                    )
                    if await self._unchanged(self._sync_state, key, posted):
                        continue
                    await self._sync_state.put(key, posted)
                    self._stored[key] = posted
                await self._publisher.publish_event(subjects.docstatus(tenant), status.SerializeToString())
                # The return's own state hears it too (a voided credit reaches WatchSyncEvents/GetReturnStatus).
                await self._status_store.note_erp_status(status)
                changed_at = status.as_of.ToNanoseconds() / 1e9 if status.HasField("as_of") else None
            self._observe(erp, kind, hinted_at, changed_at)
            stored += 1
        return stored

    async def _unchanged(self, kv: KeyValue, key: str, value: bytes) -> bool:
        """Whether ``key`` already holds ``value`` (then storing and announcing it again would be a duplicate)."""
        known = self._stored.get(key)
        if known is None:
            try:
                entry = await kv.get(key)
            except KeyNotFoundError:
                return False
            known = entry.value or b""
            self._stored[key] = known
        return known == value

    def _observe(self, erp: str, kind: Kind, hinted_at: float | None, changed_at: float | None) -> None:
        now = time.time()
        if hinted_at is not None:
            observe_inbound_latency(erp, kind, "push", now - hinted_at)
        elif changed_at is not None and changed_at >= self._started_at:
            # Records changed before this poller started are backlog, not latency.
            observe_inbound_latency(erp, kind, "poll", now - changed_at)

    async def replay(self, letter: InboundDeadLetter) -> bool:
        """Translate and check an inbound dead letter again (after a mapping or reference data fix).

        True when it was stored and published now; a record still refused is dead-lettered again (a new id).
        """
        kind: Kind = "inventory" if letter.kind == "inventory" else "status"
        config = PollTargetConfig(target=letter.target, tenant=letter.tenant)
        if kind == "inventory":
            config.inventory_mapping = letter.mapping
        else:
            config.status_mapping = letter.mapping
        target = PollTarget(config, cast(Connector, _NamedErp(letter.erp)))
        outputs = self._mappers.get(letter.mapping).translate_batch([letter.record])
        return await self._apply(target, kind, [letter.record], outputs, f"replay:{letter.id}") == 1

    def _problems(self, target: PollTarget, kind: Kind, output: bytes) -> list[str]:
        try:
            if kind == "inventory":
                level = inventory_pb2.InventoryLevel.FromString(output)
                level.tenant_id = target.config.tenant
                return level_problems(level, self._reference)
            return status_problems(inventory_pb2.DocumentStatus.FromString(output))
        except DecodeError as exc:
            return [f"translation output is not a {kind} message: {exc}"]

    async def _dead_letter(
        self,
        target: PollTarget,
        kind: Kind,
        record: bytes,
        reason: str,
        problems: list[str],
        cursor: str,
        index: int,
    ) -> None:
        name = target.config.target
        log.error("inbound %s record of %s refused (%s): %s", kind, name, reason, "; ".join(problems)[:500])
        count_inbound_dead_letter(name, kind, reason)
        if self._inbound_dlq is None:
            return
        dead_letter_id = await self._inbound_dlq.put(
            target=name,
            tenant=target.config.tenant,
            erp=target.connector.erp,
            kind=kind,
            mapping=target.mapping(kind),
            reason=reason,
            problems=problems,
            record=record,
            cursor=cursor,
            index=index,
        )
        if self._alerter is not None:
            await self._alerter.alert(
                kind="dead_letter",
                key=f"inbound:{name}:{kind}",
                severity="warning",
                summary=f"inbound {kind} record from {name} refused ({reason}): {problems[0][:200]}",
                details={
                    "target": name,
                    "tenant": target.config.tenant,
                    "inbound_dead_letter": str(dead_letter_id),
                },
            )
