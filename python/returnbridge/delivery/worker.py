"""Delivery worker: pulls a target's work, translates in batches, calls the connector, acks exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus.consumer import ConsumerSettings, delivery_subscription
from returnbridge.bus.streams import StreamsConfig
from returnbridge.connectors.base import Connector, DocumentRequest, DocumentResult
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.headers import H_ACCEPTED_AT, H_ERP, H_LANE, H_REPLAY_OF, H_RULE, H_STEPS
from returnbridge.delivery.ports import AlerterLike, MapperSource
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.errors import (
    AmbiguousErpError,
    ErpAuthError,
    ErpError,
    NotFoundError,
    PermanentErpError,
    ReturnBridgeError,
    TransientErpError,
    TranslationError,
)
from returnbridge.mapping.roundtrip import round_trip_mismatches
from returnbridge.observability.metrics import (
    count_erp_call,
    count_processing,
    observe_sync_latency,
    set_dlq_size,
    set_queue_depth,
)
from returnbridge.routing.flows import ERP_NAMES, PlannedStep, decode_steps
from returnbridge.sync.status import (
    RESOLVED,
    SyncStateStore,
    blocking_versions,
    doc_key,
    source_document,
)

log = logging.getLogger(__name__)

MAX_EXTERNAL_REFERENCE = 35
_CLASSES = {
    "transient": common_pb2.ERROR_CLASS_TRANSIENT,
    "permanent": common_pb2.ERROR_CLASS_PERMANENT,
    "auth": common_pb2.ERROR_CLASS_AUTH,
}


class DeliverySettings(BaseModel):
    """The ``delivery`` config section (one worker process may run several targets)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=200, ge=1, le=5000)
    fetch_timeout_seconds: float = Field(default=1.0, gt=0)
    # Documents of different returns in flight at once per worker.
    concurrency: int = Field(default=64, ge=1)
    erp_timeout_seconds: float = Field(default=30.0, gt=0)
    retry: RetryPolicy = RetryPolicy()
    consumer: ConsumerSettings = ConsumerSettings()
    # Streams and buckets every process ensures at startup (``ensure_streams(js, settings.streams)``).
    streams: StreamsConfig = StreamsConfig()
    # Recheck delay while an earlier version is on its way (times the delivery count, capped by the next
    # value), and while it sits in the DLQ.
    waiting_delay_seconds: float = Field(default=0.5, gt=0)
    waiting_on_dead_letter_delay_seconds: float = Field(default=30.0, gt=0)
    # Versions are expected to be contiguous: version N waits this long for N-1 to arrive before going ahead.
    version_gap_wait_seconds: float = Field(default=300.0, ge=0)
    # Read every payload back through its echo spec before the ERP call; a lost or altered serial number,
    # cost center, vendor code, quantity or amount is dead-lettered instead of posted (rb_processing_total
    # {outcome="roundtrip_mismatch"}).
    verify_round_trip: bool = True
    # How often a worker reports its consumer's depth (gauge + backlog alert).
    depth_check_seconds: float = Field(default=10.0, gt=0)

    def model_post_init(self, __context: Any) -> None:
        if self.consumer.ack_wait_seconds <= self.erp_timeout_seconds:
            raise ValueError("consumer.ack_wait_seconds must exceed erp_timeout_seconds")


@dataclass(slots=True)
class _Work:
    msg: Msg
    order: returns_pb2.ReturnOrder
    steps: list[PlannedStep]
    headers: dict[str, str]
    translations: dict[str, bytes | ReturnBridgeError]
    refs_used: tuple[tuple[str, str], ...] = ()


def _error_proto(exc: Exception, erp: int, error_class: str) -> common_pb2.ErpError:
    if isinstance(exc, ErpError):
        return common_pb2.ErpError(
            erp=erp,  # type: ignore[arg-type]
            code=exc.code,
            message=exc.erp_message[:2000],
            http_status=exc.http_status,
            error_class=_CLASSES[error_class],
        )
    rule = getattr(exc, "rule", "")
    path = getattr(exc, "path", "")
    return common_pb2.ErpError(
        erp=erp,  # type: ignore[arg-type]
        code=type(exc).__name__ + (f":{rule}" if rule else ""),
        message=(f"{path}: " if path else "") + str(exc)[:2000],
        error_class=_CLASSES[error_class],
    )


class DeliveryWorker:
    """Stateless worker for one target; run several (in one or many processes) on the same durable consumer.

    Args:
        target: routing target name (e.g. ``netsuite``).
        connector: the target's ERP connector.
        mappers: mapping registry.
        js: JetStream context.
        status: sync state store.
        dead_letters: DLQ store.
        settings: delivery settings.
        alerter: dead-letter and ERP-auth alerts.
        audit: when set, each ERP document created and each dead letter is recorded.
    """

    def __init__(
        self,
        target: str,
        connector: Connector,
        mappers: MapperSource,
        js: JetStreamContext,
        status: SyncStateStore,
        dead_letters: DeadLetterStore,
        settings: DeliverySettings | None = None,
        alerter: AlerterLike | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.target = target
        self._audit = audit
        self.connector = connector
        self.mappers = mappers
        self.settings = settings or DeliverySettings()
        self._js = js
        self._status = status
        self._dlq = dead_letters
        self._alerter = alerter
        self._unreachable_alerted = False
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        # Per return: the turn of the latest batch that holds its messages (ordering across overlapping batches).
        self._turns: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        sub = await delivery_subscription(self._js, self.target, self.settings.consumer)
        self._task = asyncio.create_task(self._run(sub), name=f"delivery-{self.target}")

    async def stop(self) -> None:
        """Stop pulling, then finish the messages in hand."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, sub: JetStreamContext.PullSubscription) -> None:
        """Keep up to two batches in hand and fetch again as soon as one batch's worth is done.

        Batches overlap instead of running one after another, so one slow ERP call holds a single message
        (and later versions of its return) rather than the next fetch of the whole target.
        """
        batch_size = self.settings.batch_size
        room = asyncio.Semaphore(2 * batch_size)  # one permit per message in hand
        batches: set[asyncio.Task[None]] = set()
        next_depth_check = 0.0
        try:
            while not self._stopping.is_set():
                if time.monotonic() >= next_depth_check:
                    next_depth_check = time.monotonic() + self.settings.depth_check_seconds
                    await self._report_depth(sub)
                for _ in range(batch_size):
                    await room.acquire()
                if self._stopping.is_set():
                    break  # stop() came while we waited for room: fetch nothing more
                try:
                    msgs = await sub.fetch(batch_size, timeout=self.settings.fetch_timeout_seconds)
                except (NatsTimeoutError, TimeoutError):
                    msgs = []
                for _ in range(batch_size - len(msgs)):
                    room.release()
                if msgs:
                    task = asyncio.create_task(self.process_batch(msgs, done=room.release))
                    batches.add(task)
                    task.add_done_callback(batches.discard)
                    task.add_done_callback(self._batch_failed)
            if batches:
                await asyncio.gather(*batches, return_exceptions=True)  # failures are logged as they happen
        finally:
            # Cancelled (not stopped): the batches in hand die with us, unacked, and are redelivered.
            for task in batches:
                task.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _report_depth(self, sub: JetStreamContext.PullSubscription) -> None:
        """Queue depth gauge and the backlog alert (undelivered + unacknowledged messages of the consumer)."""
        try:
            info = await sub.consumer_info()
        except Exception as exc:  # noqa: BLE001 - a metrics probe must never stop delivery
            log.warning("consumer info for %s unavailable: %s", self.target, exc)
            return
        depth = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        set_queue_depth(info.stream_name, info.name, depth)
        check = getattr(self._alerter, "check_backlog", None)
        if check is not None:
            await check(key=f"{info.stream_name}/{info.name}", depth=depth)

    # ----------------------------------------------------------------- batch
    async def process_batch(self, msgs: list[Msg], *, done: Callable[[], None] | None = None) -> None:
        """Translate the batch per mapping id in one crossing each, then run returns in parallel.

        ``done`` is called once per message when it is finished with (acked, nak'ed, terminated or failed).
        Each return's messages run in version order, after those of the return from earlier batches still in
        hand in this worker (the queue is joined before the first await, so arrival order is kept).
        """
        finished = done or (lambda: None)
        works: list[_Work] = []
        malformed: list[tuple[Msg, Exception]] = []
        for msg in msgs:
            try:
                headers = dict(msg.headers or {})
                works.append(
                    _Work(
                        msg,
                        returns_pb2.ReturnOrder.FromString(msg.data),
                        decode_steps(headers[H_STEPS]),
                        headers,
                        {},
                    )
                )
            except (KeyError, ValueError) as exc:
                malformed.append((msg, exc))
        groups: dict[tuple[str, str], list[_Work]] = defaultdict(list)
        for work in works:
            groups[(work.order.tenant_id, work.order.return_id)].append(work)
        turns = {key: self._join_turn(key) for key in groups}
        try:
            for msg, problem in malformed:
                # Not ours to retry: a malformed message can never succeed.
                log.error(
                    "terminating malformed delivery message seq=%s: %s", msg.metadata.sequence.stream, problem
                )
                with contextlib.suppress(Exception):
                    await msg.term()  # if this fails, the redelivery is terminated instead
                finished()
            known = await self._prefill_references(works)
            self._translate(works)
        except BaseException:
            for key, (_before, mine) in turns.items():
                self._leave_turn(key, mine)
            for _ in works:
                finished()
            raise

        async def run_group(key: tuple[str, str], group: list[_Work]) -> None:
            before, mine = turns[key]
            pending = sorted(group, key=lambda w: w.order.version)
            try:
                if before is not None:
                    await asyncio.shield(before)
                async with self._slots:
                    # The batch read is fresh for the group's first message unless an earlier batch was still
                    # working on the return; later ones re-read what it wrote.
                    first: tuple[dict[str, Any] | None, int] | None = (
                        known.get(key) if before is None else None
                    )
                    while pending:
                        work = pending.pop(0)
                        try:
                            await self._handle(work, first)
                            first = None
                        except Exception:
                            # Unknown failure (KV down, bug): leave the message to be redelivered after AckWait.
                            log.exception("delivery of %s failed unexpectedly", work.order.return_id)
                            with contextlib.suppress(Exception):
                                await work.msg.nak(delay=self.settings.retry.base_delay)
                        finally:
                            finished()
            finally:
                for _ in pending:
                    finished()
                self._leave_turn(key, mine)

        await asyncio.gather(*(run_group(key, group) for key, group in groups.items()))

    @staticmethod
    def _batch_failed(task: asyncio.Task[None]) -> None:
        """A batch that failed before its messages were handled (KV read down): they are redelivered after
        AckWait; say why, instead of an unretrieved task exception."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("delivery batch failed; its messages are redelivered after AckWait", exc_info=exc)

    def _join_turn(self, key: tuple[str, str]) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """Queue behind the return's work still in hand; returns (what to wait for or None, our own turn)."""
        before = self._turns.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns[key] = mine
        return before, mine

    def _leave_turn(self, key: tuple[str, str], mine: asyncio.Future[None]) -> None:
        if not mine.done():
            mine.set_result(None)
        if self._turns.get(key) is mine:
            del self._turns[key]

    async def _prefill_references(
        self, works: list[_Work]
    ) -> dict[tuple[str, str], tuple[dict[str, Any] | None, int]]:
        """Give mappings the ERP documents delivered so far (``erp_references``), read once per return."""
        keys = list({(w.order.tenant_id, w.order.return_id) for w in works})
        reads = await asyncio.gather(*(self._status.get_versioned(t, r) for t, r in keys))
        records = dict(zip(keys, reads, strict=True))
        for work in works:
            self._set_references(work, records[(work.order.tenant_id, work.order.return_id)][0])
        return records

    @staticmethod
    def _set_references(work: _Work, record: dict[str, Any] | None) -> bool:
        """Fill ``erp_references``; True when they changed since the translation was made."""
        refs: list[tuple[str, str, str, int]] = []
        if record is not None:
            for doc in record["documents"].values():
                if doc["state"] == "DELIVERED" and doc["version"] < work.order.version:
                    refs.append((doc["document_type"], doc["erp_document_id"], doc["step"], doc["erp"]))
        refs.sort()
        used = tuple((r[0], r[1]) for r in refs)
        if used == work.refs_used:
            return False
        del work.order.erp_references[:]
        for document_type, document_id, _step, erp in refs:
            work.order.erp_references.add(erp=erp, document_type=document_type, document_id=document_id)  # type: ignore[arg-type]
        work.refs_used = used
        return True

    def _translate(self, works: list[_Work]) -> None:
        by_mapping: dict[str, list[_Work]] = defaultdict(list)
        for work in works:
            for step in work.steps:
                by_mapping[step.mapping].append(work)
        for mapping_id, group in by_mapping.items():
            try:
                mapper = self.mappers.get(mapping_id)
            except NotFoundError as exc:
                for work in group:
                    work.translations[mapping_id] = exc
                continue
            documents = [work.order.SerializeToString(deterministic=True) for work in group]
            for work, output in zip(group, mapper.translate_batch(documents), strict=True):
                work.translations[mapping_id] = self._verified(mapping_id, work.order, output)

    def _retranslate(self, work: _Work, mapping_id: str) -> None:
        try:
            output = self.mappers.get(mapping_id).translate(work.order.SerializeToString(deterministic=True))
        except (TranslationError, NotFoundError) as exc:
            work.translations[mapping_id] = exc
            return
        work.translations[mapping_id] = self._verified(mapping_id, work.order, output)

    def _verified(
        self, mapping_id: str, order: returns_pb2.ReturnOrder, output: bytes | TranslationError
    ) -> bytes | TranslationError:
        """The payload, or a TranslationError when it would not carry what the RMS sent (processing accuracy)."""
        if isinstance(output, TranslationError) or not self.settings.verify_round_trip:
            return output
        problems = round_trip_mismatches(self.mappers, mapping_id, order, output)
        if not problems:
            return output
        count_processing("roundtrip_mismatch")
        return TranslationError(
            f"round trip through {mapping_id}_in: " + "; ".join(problems[:10]), rule="roundtrip"
        )

    # ----------------------------------------------------------------- one message
    async def _handle(self, work: _Work, known: tuple[dict[str, Any] | None, int] | None = None) -> None:
        order, msg = work.order, work.msg
        tenant, return_id, version = order.tenant_id, order.return_id, int(order.version)
        record, revision = known if known is not None else await self._status.get_versioned(tenant, return_id)
        if record is None or str(version) not in record["versions"]:
            # The gateway stopped between the PubAck and registering the version: register it here.
            decision = returns_pb2.RouteDecision(
                erp=int(work.headers.get(H_ERP, "0")),  # type: ignore[arg-type]
                target=self.target,
                rule=work.headers.get(H_RULE, ""),
                lane=work.headers.get(H_LANE, ""),
            )
            await self._status.register(
                order,
                decision,
                work.steps,
                stream_sequence=msg.metadata.sequence.stream,
                accepted_at=float(work.headers.get(H_ACCEPTED_AT, time.time())),
            )
            record, revision = await self._status.get_versioned(tenant, return_id)
            assert record is not None
        blockers = blocking_versions(record, version)
        entry = record["versions"][str(version)]
        # The lifecycle admission refuses versions below the latest, so a gap it did not admit stays a gap.
        admitted = record.get("lifecycle", {}).get("versions")
        if (
            version > 1
            and str(version - 1) not in record["versions"]
            and (admitted is None or str(version - 1) in admitted)
            and time.time() - float(entry["accepted_at"]) < self.settings.version_gap_wait_seconds
        ):
            blockers.append((version - 1, "MISSING"))
        if blockers and work.steps and msg.metadata.num_delivered >= self.settings.consumer.max_deliver - 1:
            # JetStream stops redelivering after MaxDeliver: park the message in the DLQ rather than lose it.
            step = next(
                (
                    p
                    for p in work.steps
                    if record["documents"][doc_key(version, p.step)]["state"] not in RESOLVED
                ),
                work.steps[0],
            )
            waited_for = ", ".join(f"v{v} {state}" for v, state in blockers)
            await self._dead_letter(
                work,
                step,
                dict(record["documents"][doc_key(version, step.step)]),
                f"gave up waiting for earlier versions ({waited_for}) after {msg.metadata.num_delivered} deliveries",
                None,
            )
            return
        if blockers:
            docs = [record["documents"][doc_key(version, s.step)] for s in work.steps]
            if any(doc["state"] in ("ACCEPTED", "RETRYING") for doc in docs) or not docs:
                await self._status.set_version_state(tenant, return_id, version, "WAITING")
            dead = any(state == "DEAD_LETTERED" for _, state in blockers)
            cap = self.settings.waiting_on_dead_letter_delay_seconds
            # Growing with each redelivery, so MaxDeliver spans hours of waiting, not minutes.
            delay = (
                cap
                if dead
                else min(cap, self.settings.waiting_delay_seconds * max(1, msg.metadata.num_delivered))
            )
            await msg.nak(delay=delay)
            return
        if not work.steps:
            await self._status.set_version_state(tenant, return_id, version, "DELIVERED")
            await msg.ack()
            return
        if self._set_references(work, record):
            for step in work.steps:
                self._retranslate(work, step.mapping)
        for step in work.steps:
            doc = record["documents"][doc_key(version, step.step)]
            if doc["state"] in RESOLVED:
                continue
            if doc["state"] == "DEAD_LETTERED" and H_REPLAY_OF not in work.headers:
                # A stale redelivery of a message already dead-lettered: the DLQ copy is authoritative.
                await msg.term()
                return
            delivered = await self._deliver_step(work, step, record, revision)
            if delivered is None:
                return
            stored, revision = delivered
            if stored is None:
                stored, revision = await self._status.get_versioned(tenant, return_id)
            assert stored is not None
            record = stored
        await msg.ack()

    def _external_reference(self, order: returns_pb2.ReturnOrder) -> str:
        return f"{order.rma_number or order.return_id}-{order.version}"

    async def _deliver_step(
        self, work: _Work, step: PlannedStep, record: dict[str, Any], revision: int
    ) -> tuple[dict[str, Any] | None, int] | None:
        """Deliver one document; the stored record and revision when confirmed (None: nak'ed or dead-lettered).

        Only outcomes are stored (DELIVERED, RETRYING, DEAD_LETTERED) so the happy path costs one KV write;
        IN_PROGRESS is announced as an event. Any redelivery, earlier attempt or replay looks the document up
        by its external reference before creating, which covers a crash between the ERP call and the write.
        """
        order, msg = work.order, work.msg
        tenant, return_id, version = order.tenant_id, order.return_id, int(order.version)
        # A copy: local attempt counting must not leak into ``record``, the CAS base of the next write.
        doc = dict(record["documents"][doc_key(version, step.step)])
        erp_value = int(doc["erp"])
        erp = ERP_NAMES.get(erp_value, self.connector.erp)
        reference = self._external_reference(order)
        if len(reference) > MAX_EXTERNAL_REFERENCE:
            await self._dead_letter(
                work,
                step,
                doc,
                f"external reference {reference!r} exceeds {MAX_EXTERNAL_REFERENCE} characters",
                None,
            )
            return None
        source_id = ""
        if step.source:
            source = source_document(record, step.source, version)
            if source is None:
                await self._dead_letter(
                    work, step, doc, f"no delivered {step.source!r} document to follow from", None
                )
                return None
            source_id = source["erp_document_id"]
        attempted = False
        try:
            result: DocumentResult | None = None
            if (
                doc["attempts"] > 0
                or doc["state"] in ("IN_PROGRESS", "RETRYING")
                or msg.metadata.num_delivered > 1
                or H_REPLAY_OF in work.headers
            ):
                # An earlier attempt may have reached the ERP (ambiguous failure or a crash): look before creating.
                result = await self._call(
                    erp, "find_document", self.connector.find_document(step.document_type, reference)
                )
            if result is None:
                translation = work.translations.get(step.mapping)
                if isinstance(translation, ReturnBridgeError) or translation is None:
                    count_processing("translation_failed")
                    await self._dead_letter(
                        work, step, doc, f"translation failed: {translation}", translation
                    )
                    return None
                doc["attempts"] += 1
                attempted = True
                await self._status.announce(
                    record, version, step.step, "IN_PROGRESS", attempt=doc["attempts"]
                )
                request = DocumentRequest(
                    document_type=step.document_type,
                    external_reference=reference,
                    payload=translation,
                    source_document_type=next(
                        (
                            d["document_type"]
                            for d in record["documents"].values()
                            if d["erp_document_id"] == source_id
                        ),
                        "",
                    )
                    if source_id
                    else "",
                    source_document_id=source_id,
                    tenant_id=tenant,
                    return_id=return_id,
                    timeout=self.settings.erp_timeout_seconds,
                )
                async with self._heartbeat(msg):
                    result = await self._call(erp, "create_document", self.connector.create_document(request))
        except (PermanentErpError, ErpAuthError) as exc:
            if isinstance(exc, ErpAuthError) and self._alerter is not None:
                await self._alerter.alert(
                    kind="erp_auth",
                    key=f"{self.target}",
                    severity="critical",
                    summary=f"{erp} refused our credentials: {exc.erp_message}",
                )
            await self._dead_letter(work, step, doc, str(exc), exc, attempted=attempted)
            return None
        except TransientErpError as exc:
            attempts = max(int(doc["attempts"]), 1)
            error = _error_proto(exc, erp_value, "transient")
            if exc.http_status != 429:  # throttling is the ERP answering, not the ERP being unreachable
                await self._erp_unreachable(erp, exc)
            if self.settings.retry.exhausted(attempts):
                await self._dead_letter(
                    work,
                    step,
                    doc,
                    f"retries exhausted after {attempts} attempts: {exc}",
                    exc,
                    attempted=attempted,
                )
                return None
            await self._status.transition(
                tenant, return_id, version, step.step, "RETRYING", error=error, attempt=attempted
            )
            await msg.nak(delay=self.settings.retry.delay(attempts, exc.retry_after))
            return None
        stored = await self._status.transition(
            tenant,
            return_id,
            version,
            step.step,
            "DELIVERED",
            erp_document_id=result.document_id,
            attempt=attempted,
            known=(record, revision),
        )
        count_processing("delivered")
        if self._unreachable_alerted and self._alerter is not None:
            self._unreachable_alerted = False
            await self._alerter.resolve(kind="erp_unreachable", key=self.target)
        if self._audit is not None:
            await self._audit.record(
                action="erp.document_created" if result.created else "erp.document_found",
                object_type="return",
                object_id=f"{return_id}:{version}",
                tenant_id=tenant,
                actor="system",
                after=body if isinstance(body := work.translations.get(step.mapping), bytes) else None,
                details={
                    "target": self.target,
                    "step": step.step,
                    "document_type": step.document_type,
                    "erp_document_id": result.document_id,
                    "external_reference": reference,
                },
            )
        accepted_at = float(work.headers.get(H_ACCEPTED_AT, "0") or 0)
        if accepted_at:
            observe_sync_latency(erp, step.document_type, max(time.time() - accepted_at, 0.0))
        return stored

    async def _call(self, erp: str, operation: str, call: Any) -> Any:
        """Await one connector call under the ERP deadline, counting it; a deadline overrun is ambiguous."""
        try:
            result = await asyncio.wait_for(call, timeout=self.settings.erp_timeout_seconds + 1.0)
        except TimeoutError as exc:
            count_erp_call(erp, operation, "error", "transient")
            raise AmbiguousErpError(f"{operation} exceeded the ERP deadline", erp=erp) from exc
        except ErpAuthError:
            count_erp_call(erp, operation, "error", "auth")
            raise
        except PermanentErpError:
            count_erp_call(erp, operation, "error", "permanent")
            raise
        except TransientErpError:
            count_erp_call(erp, operation, "error", "transient")
            raise
        count_erp_call(erp, operation, "ok")
        return result

    async def _erp_unreachable(self, erp: str, exc: ErpError) -> None:
        """Report a failed ERP call; the alerter fires only once the target stayed unreachable long enough."""
        if self._alerter is None:
            return
        self._unreachable_alerted = True
        await self._alerter.alert(
            kind="erp_unreachable",
            key=self.target,
            severity="critical",
            summary=f"{erp} target {self.target} failing: {exc.erp_message[:200]}",
            details={"code": exc.code, "http_status": str(exc.http_status)},
        )

    @contextlib.asynccontextmanager
    async def _heartbeat(self, msg: Msg) -> AsyncIterator[None]:
        """Tell JetStream we are still working so a slow ERP call does not trigger a redelivery.

        A timer, not a task: nearly every call ends before the first beat, and a task per call costs three
        event-loop turns (start, cancel, finish) on the hot path.
        """
        interval = self.settings.consumer.ack_wait_seconds / 3
        loop = asyncio.get_running_loop()
        beats: set[asyncio.Task[None]] = set()

        def settle(task: asyncio.Task[None]) -> None:
            beats.discard(task)
            if not task.cancelled():
                task.exception()  # best effort: a lost beat only risks a redelivery, which looks up first

        timers: list[asyncio.TimerHandle] = []

        def beat() -> None:
            task = loop.create_task(msg.in_progress())
            beats.add(task)
            task.add_done_callback(settle)
            timers[0] = loop.call_later(interval, beat)

        timers.append(loop.call_later(interval, beat))
        try:
            yield
        finally:
            timers[0].cancel()

    async def _dead_letter(
        self,
        work: _Work,
        step: PlannedStep,
        doc: dict[str, Any],
        reason: str,
        exc: Exception | None,
        *,
        attempted: bool = False,
    ) -> None:
        """DLQ copy first, then term: a crash in between leaves a duplicate DLQ entry, never a lost message."""
        order = work.order
        error_class = "auth" if isinstance(exc, ErpAuthError) else "permanent"
        error = _error_proto(exc, int(doc["erp"]), error_class) if exc is not None else None
        dead_letter_id = await self._dlq.put(
            target=self.target,
            tenant=order.tenant_id,
            payload=work.msg.data,
            headers=work.headers,
            step=step.step,
            document_type=step.document_type,
            reason=reason,
            error=error,
            attempts=int(doc["attempts"]),
            source_sequence=work.msg.metadata.sequence.stream,
        )
        await work.msg.term()
        await self._status.transition(
            order.tenant_id,
            order.return_id,
            int(order.version),
            step.step,
            "DEAD_LETTERED",
            error=error,
            dead_letter_id=dead_letter_id,
            attempt=attempted,
        )
        count_processing("dead_lettered")
        if self._audit is not None:
            await self._audit.record(
                action="dlq.dead_lettered",
                object_type="dead_letter",
                object_id=str(dead_letter_id),
                tenant_id=order.tenant_id,
                actor="system",
                details={
                    "return_id": order.return_id,
                    "version": str(order.version),
                    "step": step.step,
                    "reason": reason[:500],
                },
            )
        with contextlib.suppress(Exception):
            set_dlq_size(await self._dlq.count())
        if self._alerter is not None:
            await self._alerter.alert(
                kind="dead_letter",
                key=f"{order.tenant_id}:{order.return_id}:{order.version}:{step.step}",
                severity="warning",
                summary=f"{step.document_type} for return {order.return_id} v{order.version} dead-lettered: {reason}",
                details={"dead_letter_id": str(dead_letter_id), "target": self.target, "step": step.step},
            )
