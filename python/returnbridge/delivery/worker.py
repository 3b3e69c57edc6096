"""Delivery worker: pulls a target's work, translates in batches, delivers each return's steps in order, acks once.

The parts: ``work.py`` (a message in hand), ``translate.py`` (batch translation), ``ordering.py`` (per-return
order), ``step.py`` (delivering one document) and ``outcome.py`` (recording what happened). This module
fetches and schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import returns_pb2
from returnbridge.audit.log import AuditLog
from returnbridge.bus.consumer import ConsumerSettings, delivery_subscription
from returnbridge.bus.streams import StreamsConfig
from returnbridge.bus.trace_context import extract, tracer
from returnbridge.connectors.base import Connector
from returnbridge.delivery.breaker import Breaker, BreakerSettings
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.headers import H_ACCEPTED_AT, H_ERP, H_LANE, H_REPLAY_OF, H_RULE
from returnbridge.delivery.holding import Holding
from returnbridge.delivery.ordering import ReturnTurns, blockers, waiting_delay
from returnbridge.delivery.orphans import OrphanSettings
from returnbridge.delivery.outcome import OutcomeRecorder
from returnbridge.delivery.ports import AlerterLike
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.delivery.sessions import Sessions
from returnbridge.delivery.step import StepDeliverer
from returnbridge.delivery.translate import Translator, set_references
from returnbridge.delivery.work import ReturnKey, Work, read_messages
from returnbridge.mapping.ports import MapperSource
from returnbridge.observability.metrics import set_queue_depth
from returnbridge.sync.status import RESOLVED, SyncStateStore, doc_key

log = logging.getLogger(__name__)


class FailureCounts:
    """Unexpected failures per stream sequence, bounded (oldest forgotten first)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._counts: OrderedDict[int, int] = OrderedDict()
        self._limit = limit

    def bump(self, sequence: int) -> int:
        count = self._counts.pop(sequence, 0) + 1
        self._counts[sequence] = count
        while len(self._counts) > self._limit:
            self._counts.popitem(last=False)
        return count

    def forget(self, sequence: int) -> None:
        self._counts.pop(sequence, None)


KnownRecord = tuple[dict[str, Any] | None, int]


class DeliverySettings(BaseModel):
    """The ``delivery`` config section (one worker process may run several targets)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=200, ge=1, le=5000)
    fetch_timeout_seconds: float = Field(default=1.0, gt=0)
    # Documents of different returns in flight at once per worker.
    concurrency: int = Field(default=64, ge=1)
    erp_timeout_seconds: float = Field(default=30.0, gt=0)
    # After a create whose answer was lost (a timeout, a dropped connection), the ERP may still commit it: an ERP
    # keeps working on a request its client gave up on. Until this long after the loss, a look-up that finds
    # nothing waits instead of creating again (a second document where duplicates are accepted, as S/4HANA's
    # default customizing does). None: twice erp_timeout_seconds.
    ambiguous_settle_seconds: float | None = Field(default=None, gt=0)
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
    # Reservations whose gateway never published them are published by the sweeper (delivery/orphans.py).
    orphans: OrphanSettings = OrphanSettings()
    # While the target's ERP is down, nothing is attempted and its probe decides when to resume (breaker.py).
    breaker: BreakerSettings = BreakerSettings()

    @property
    def settle_seconds(self) -> float:
        """``ambiguous_settle_seconds``, or its default."""
        return self.ambiguous_settle_seconds or 2 * self.erp_timeout_seconds

    def model_post_init(self, __context: Any) -> None:
        if self.consumer.ack_wait_seconds <= self.erp_timeout_seconds:
            raise ValueError("consumer.ack_wait_seconds must exceed erp_timeout_seconds")
        # A message may carry a few documents, each with its own attempt budget: keep every budget well
        # inside JetStream's MaxDeliver so the worker, not the server, decides when to give up.
        if 2 * self.retry.max_attempts > self.consumer.max_deliver:
            raise ValueError(
                f"consumer.max_deliver ({self.consumer.max_deliver}) must be at least 2 x retry.max_attempts "
                f"({self.retry.max_attempts})"
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
        self.connector = connector
        self.mappers = mappers
        self.settings = settings or DeliverySettings()
        self._js = js
        self._status = status
        self._alerter = alerter
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        # How often every message in hand (waiting, or in its ERP call) tells JetStream it is still worked on.
        self._heartbeat_seconds = self.settings.consumer.ack_wait_seconds / 3
        self._turns = ReturnTurns()
        self._translator = Translator(mappers, verify_round_trip=self.settings.verify_round_trip)
        self._outcomes = OutcomeRecorder(
            target,
            status,
            dead_letters,
            self.settings.retry,
            alerter=alerter,
            audit=audit,
            erp_answering=lambda: self._breaker.answering,  # the breaker is built below
        )
        # An ERP call of an earlier session ends within the deadline handed to the connector plus its margin.
        self._sessions = Sessions(js, settle_seconds=self.settings.erp_timeout_seconds + 1.0, target=target)
        # The probe is the steps' look-up; they are built next, with this breaker.
        self._breaker = Breaker(target, self.settings.breaker, probe=lambda: self._steps.probe())
        self._steps = StepDeliverer(
            connector,
            status,
            self._outcomes,
            erp_timeout_seconds=self.settings.erp_timeout_seconds,
            settle_seconds=self.settings.settle_seconds,
            breaker=self._breaker,
            sessions=self._sessions,
        )
        self._failures = FailureCounts()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self._sessions.open()
        sub = await delivery_subscription(self._js, self.target, self.settings.consumer)
        self._task = asyncio.create_task(self._run(sub), name=f"delivery-{self.target}")

    async def stop(self) -> None:
        """Stop pulling, then finish the messages in hand."""
        self._stopping.set()
        await self._breaker.close()
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
                if self._breaker.is_open:
                    # The ERP is down: fetch nothing (no attempt spent) until the probe gets an answer.
                    await self._breaker.wait_closed(self.settings.fetch_timeout_seconds)
                    continue
                for _ in range(batch_size):
                    await room.acquire()
                if self._stopping.is_set():
                    break  # stop() came while we waited for room: fetch nothing more
                await self._sessions.refresh()
                session = self._sessions.current()  # before the fetch: a reconnect during it makes them stale
                try:
                    msgs = await sub.fetch(batch_size, timeout=self.settings.fetch_timeout_seconds)
                except (NatsTimeoutError, TimeoutError):
                    msgs = []
                except NatsError as exc:
                    # A stream leader election or a reconnect (no responders, 503, connection closed) must not
                    # end this loop: it did once, and the target silently stopped pulling for good while its
                    # process stayed SERVING (the leader-loss scenario in tests/chaos). Pause, then fetch again.
                    log.warning("fetch for %s failed, retrying: %r", self.target, exc)
                    msgs = []
                    await asyncio.sleep(self.settings.fetch_timeout_seconds)
                if msgs and not await self._sessions.mark_fetched(msgs):
                    msgs = []  # not safe to work on (sessions.py): JetStream redelivers them after the ack wait
                for _ in range(batch_size - len(msgs)):
                    room.release()
                if msgs:
                    task = asyncio.create_task(self.process_batch(msgs, done=room.release, session=session))
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
    async def process_batch(
        self, msgs: list[Msg], *, done: Callable[[], None] | None = None, session: int | None = None
    ) -> None:
        """Translate the batch per mapping id in one crossing each, then run returns in parallel.

        ``done`` is called once per message when it is finished with (acked, nak'ed, terminated or failed).
        ``session``: the NATS session the batch was fetched in (``delivery/sessions.py``).
        Each return's messages run in version order, after those of the return from earlier batches still in
        hand in this worker (the queue is joined before the first await, so arrival order is kept).
        """
        done = done or (lambda: None)
        works, malformed = read_messages(msgs)
        if session is not None:
            stale = self._sessions.staleness(session)
            for work in works:
                work.stale = stale
        holding = Holding(works, self._heartbeat_seconds)
        holding.start()

        def finished(work: Work) -> None:
            holding.release(work)
            done()

        groups: dict[ReturnKey, list[Work]] = defaultdict(list)
        for work in works:
            groups[work.key].append(work)
        turns = {key: self._turns.join(key) for key in groups}
        try:
            for msg, problem in malformed:
                # Not ours to retry: a malformed message can never succeed.
                log.error(
                    "terminating malformed delivery message seq=%s: %s", msg.metadata.sequence.stream, problem
                )
                with contextlib.suppress(Exception):
                    await msg.term()  # if this fails, the redelivery is terminated instead
                done()
            known = await self._prefill_references(works)
            self._translator.translate(works)
        except Exception as exc:
            log.error("delivery batch failed before its messages were handled", exc_info=exc)
            for key, (_before, mine) in turns.items():
                self._turns.leave(key, mine)
            for work in works:
                try:
                    await self._unexpected(work, exc)
                finally:
                    finished(work)
            return
        except BaseException:
            for key, (_before, mine) in turns.items():
                self._turns.leave(key, mine)
            for work in works:
                finished(work)
            raise

        async def run_group(key: ReturnKey, group: list[Work]) -> None:
            before, mine = turns[key]
            pending = sorted(group, key=lambda w: w.order.version)
            try:
                if before is not None:
                    await asyncio.shield(before)
                async with self._slots:
                    # The batch read is fresh for the group's first message unless an earlier batch was still
                    # working on the return; later ones re-read what it wrote.
                    first: KnownRecord | None = known.get(key) if before is None else None
                    while pending:
                        work = pending.pop(0)
                        try:
                            # Continue the submission's trace from the message's traceparent header.
                            with tracer().start_as_current_span(
                                f"deliver {self.target}",
                                context=extract(work.headers),
                                kind=SpanKind.CONSUMER,
                            ) as span:
                                span.set_attribute("messaging.system", "nats")
                                span.set_attribute("returnbridge.return_id", work.order.return_id)
                                span.set_attribute("returnbridge.version", int(work.order.version))
                                await self._handle(work, first)
                            first = None
                        except Exception as exc:
                            log.exception("delivery of %s failed unexpectedly", work.order.return_id)
                            await self._unexpected(work, exc)
                        finally:
                            finished(work)
            finally:
                for work in pending:
                    finished(work)
                self._turns.leave(key, mine)

        try:
            await asyncio.gather(*(run_group(key, group) for key, group in groups.items()))
        finally:
            holding.stop()

    @staticmethod
    def _batch_failed(task: asyncio.Task[None]) -> None:
        """A batch that failed before its messages were handled (KV read down): they are redelivered after
        AckWait; say why, instead of an unretrieved task exception."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("delivery batch failed; its messages are redelivered after AckWait", exc_info=exc)

    async def _unexpected(self, work: Work, exc: Exception) -> None:
        """Back off on an unexpected failure and dead-letter once it repeats ``retry.max_attempts`` times.

        Counted here (per stream sequence, in this process) rather than by JetStream's delivery count, which
        also counts WAITING naks; the delivery count only forces the dead letter just before MaxDeliver, when
        several processes shared the failures.
        """
        msg = work.msg
        failures = self._failures.bump(msg.metadata.sequence.stream)
        near_limit = msg.metadata.num_delivered >= self.settings.consumer.max_deliver - 2
        if self.settings.retry.exhausted(failures) or near_limit:
            reason = f"failed unexpectedly {failures} times (delivery {msg.metadata.num_delivered}): {exc!r}"
            try:
                await self._outcomes.give_up(work, reason[:2000], failures=failures)
                self._failures.forget(msg.metadata.sequence.stream)
                return
            except Exception:
                log.exception("could not dead-letter %s; retrying later", work.order.return_id)
        with contextlib.suppress(Exception):
            await work.nak(delay=self.settings.retry.delay(failures))

    async def _prefill_references(self, works: list[Work]) -> dict[ReturnKey, KnownRecord]:
        """Give mappings the ERP documents delivered so far (``erp_references``), read once per return."""
        keys = list({w.key for w in works})
        reads = await asyncio.gather(*(self._status.get_versioned(t, r) for t, r in keys))
        records = dict(zip(keys, reads, strict=True))
        for work in works:
            set_references(work, records[work.key][0])
        return records

    # ----------------------------------------------------------------- one message
    async def _handle(self, work: Work, known: KnownRecord | None = None) -> None:
        order, msg = work.order, work.msg
        tenant, return_id, version = order.tenant_id, order.return_id, int(order.version)
        record, revision = known if known is not None else await self._status.get_versioned(tenant, return_id)
        if record is None or str(version) not in record["versions"]:
            record, revision = await self._register(work)
        elif H_REPLAY_OF not in work.headers:
            named = int(record["versions"][str(version)]["stream_sequence"])
            sequence = msg.metadata.sequence.stream
            if not named:
                # Reserved, and the gateway stopped before naming its message: name this one before delivering.
                stored, revision, named = await self._status.confirm(
                    tenant, return_id, version, sequence, known=(record, revision)
                )
                assert stored is not None
                record = stored
            if named != sequence:
                # A retry past the duplicate window stored the version twice: only the named message delivers.
                log.warning(
                    "return %s v%s: message %s is a second copy of %s; acked",
                    return_id,
                    version,
                    sequence,
                    named,
                )
                await msg.ack()
                return
        waiting = blockers(record, version, gap_wait_seconds=self.settings.version_gap_wait_seconds)
        if waiting and work.steps and msg.metadata.num_delivered >= self.settings.consumer.max_deliver - 1:
            # JetStream stops redelivering after MaxDeliver: park the message in the DLQ rather than lose it.
            step = next(
                (
                    p
                    for p in work.steps
                    if record["documents"][doc_key(version, p.step)]["state"] not in RESOLVED
                ),
                work.steps[0],
            )
            waited_for = ", ".join(f"v{v} {state}" for v, state in waiting)
            await self._outcomes.dead_letter(
                work,
                step,
                dict(record["documents"][doc_key(version, step.step)]),
                f"gave up waiting for earlier versions ({waited_for}) after {msg.metadata.num_delivered} deliveries",
                None,
            )
            return
        if waiting:
            docs = [record["documents"][doc_key(version, s.step)] for s in work.steps]
            if any(doc["state"] in ("ACCEPTED", "RETRYING") for doc in docs) or not docs:
                await self._status.set_version_state(tenant, return_id, version, "WAITING")
            delay = waiting_delay(
                waiting,
                msg.metadata.num_delivered,
                base=self.settings.waiting_delay_seconds,
                on_dead_letter=self.settings.waiting_on_dead_letter_delay_seconds,
            )
            await work.nak(delay=delay)
            return
        if not work.steps:
            await self._status.set_version_state(tenant, return_id, version, "DELIVERED")
            await msg.ack()
            return
        if set_references(work, record):
            for step in work.steps:
                self._translator.retranslate(work, step.mapping)
        for step in work.steps:
            doc = record["documents"][doc_key(version, step.step)]
            if doc["state"] in RESOLVED:
                continue
            if doc["state"] == "DEAD_LETTERED" and H_REPLAY_OF not in work.headers:
                # A stale redelivery of a message already dead-lettered: the DLQ copy is authoritative.
                await msg.term()
                return
            delivered = await self._steps.deliver(work, step, record, revision)
            if delivered is None:
                return
            stored, revision = delivered
            if stored is None:
                stored, revision = await self._status.get_versioned(tenant, return_id)
            assert stored is not None
            record = stored
        await msg.ack()

    async def _register(self, work: Work) -> tuple[dict[str, Any], int]:
        """The gateway stopped between the PubAck and registering the version: register it here."""
        order = work.order
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
            stream_sequence=work.msg.metadata.sequence.stream,
            accepted_at=float(work.headers.get(H_ACCEPTED_AT, time.time())),
        )
        record, revision = await self._status.get_versioned(order.tenant_id, order.return_id)
        assert record is not None
        return record, revision
