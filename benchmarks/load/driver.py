"""The load: many gRPC channels holding a target number of SubmitReturn calls in flight, and a probe client.

The bulk client behaves like a careful RMS: every return has its own id (the idempotency key), a call that
fails with a status that may leave the outcome open (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
CANCELLED, UNKNOWN, INTERNAL) is retried with the same return on the next channel until a budget runs out,
on top of the shipped channel retry policy. Each return's final client outcome is what the checker
compares with the ERPs: an error at the end means "the client does not know", never "not posted".
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from returnbridge.api.v1 import common_pb2, returns_pb2, returns_pb2_grpc
from returnbridge.retry_policy import channel_options

# Per ERP: the region that routes to it (default routes) and master data its simulator knows.
ERPS = {
    "netsuite": {"region": "us", "customer": "101", "order": "9001"},
    "sap": {"region": "eu", "customer": "10100001", "order": "5000001"},
    "oracle_fusion": {"region": "apac", "customer": "1001", "order": "520001"},
}
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)


def build_order(prefix: str, index: int) -> returns_pb2.ReturnOrder:
    """Return ``index`` of a run: one line, AUTHORIZED, spread over the three ERPs round robin."""
    erp = list(ERPS)[index % len(ERPS)]
    facts = ERPS[erp]
    price = common_pb2.Money(amount="49.95", currency="USD")
    order = returns_pb2.ReturnOrder(
        return_id=f"{prefix}-{index}",
        rma_number=f"{prefix}{index:06d}",
        version=1,
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        reason_code="DEFECTIVE",
        currency="USD",
        customer=returns_pb2.Customer(customer_id="C-1", erp_customer_ref=facts["customer"], tier="gold"),
        original_order=returns_pb2.OriginalOrder(
            order_id="SO-1", erp_order_ref=facts["order"], order_date="2026-11-01"
        ),
        lines=[
            returns_pb2.ReturnLine(
                line_id="L1", sku="SKU-1001", product_type="apparel", quantity="1", unit_of_measure="EA",
                unit_price=price, cost_center="CC-100", vendor_code="V-200", reason_code="DEFECTIVE",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            )
        ],
        total_amount=price,
        custom_fields={"region": common_pb2.CustomValue(string_value=facts["region"])},
    )  # fmt: skip
    order.event_time.GetCurrentTime()
    return order


def erp_of(index: int) -> str:
    return list(ERPS)[index % len(ERPS)]


@dataclass(slots=True)
class Submission:
    """What the client saw for one return."""

    index: int
    return_id: str
    erp: str
    started: float = 0.0
    ended: float = 0.0
    # ACCEPTED / DUPLICATE, or the last error's status name when the budget ran out.
    outcome: str = ""
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    # When the first attempt of this return started (for writes-resumed-after-a-fault).
    first_ok_attempt_started: float = 0.0
    # The service's admission time of an ACCEPTED answer (epoch seconds, the gateway's clock): when the write
    # happened, however long the call waited in the client's transport before it reached a gateway.
    accepted_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("ACCEPTED", "DUPLICATE")


@dataclass(slots=True)
class ProbeSample:
    at: float
    latency: float
    code: str


@dataclass
class LoadResult:
    started: float
    ended: float
    submissions: list[Submission]
    probe: list[ProbeSample]


class LoadDriver:
    """Drives ``calls`` submissions at ``in_flight`` concurrency over ``channels`` channels (spread over the
    gateways), with a probe calling GetReturnStatus every ``probe_interval`` seconds."""

    def __init__(
        self,
        targets: list[str],
        api_key: str,
        *,
        prefix: str,
        calls: int,
        in_flight: int,
        channels: int = 20,
        retry_budget_seconds: float = 180.0,
        attempt_timeout: float = 30.0,
        probe_interval: float = 0.05,
    ) -> None:
        self.targets = targets
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.prefix = prefix
        self.calls = calls
        self.in_flight = in_flight
        self.channel_count = max(channels, len(targets))
        self.retry_budget = retry_budget_seconds
        self.attempt_timeout = attempt_timeout
        self.probe_interval = probe_interval
        self.completed = 0
        self._progress: list[tuple[float, asyncio.Event]] = []

    def when_done_fraction(self, fraction: float) -> asyncio.Event:
        """An event set once ``fraction`` of the calls have a final outcome (faults hook on progress, not time)."""
        event = asyncio.Event()
        self._progress.append((fraction, event))
        if self.completed >= fraction * self.calls:
            event.set()
        return event

    def _advance(self) -> None:
        self.completed += 1
        for fraction, event in self._progress:
            if self.completed >= fraction * self.calls:
                event.set()

    async def probe(self, stop: asyncio.Event, samples: list[ProbeSample]) -> None:
        """GetReturnStatus of a return that does not exist (NOT_FOUND is the answer), every interval."""
        targets = itertools.cycle(self.targets)
        channels = {t: grpc.aio.insecure_channel(t) for t in self.targets}
        try:
            while not stop.is_set():
                target = next(targets)
                stub = returns_pb2_grpc.ReturnsServiceStub(channels[target])
                start = time.monotonic()
                code = "OK"
                try:
                    await stub.GetReturnStatus(
                        returns_pb2.GetReturnStatusRequest(return_id="probe-none"),
                        metadata=self.metadata,
                        timeout=30,
                    )
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                samples.append(ProbeSample(start, time.monotonic() - start, code))
                try:
                    await asyncio.wait_for(stop.wait(), self.probe_interval)
                except TimeoutError:
                    pass
        finally:
            for channel in channels.values():
                await channel.close()

    async def run(self, on_progress: Callable[[int], None] | None = None) -> LoadResult:
        channels = [
            grpc.aio.insecure_channel(self.targets[i % len(self.targets)], options=channel_options())
            for i in range(self.channel_count)
        ]
        stubs = [returns_pb2_grpc.ReturnsServiceStub(ch) for ch in channels]
        picks = itertools.count()
        slots = asyncio.Semaphore(self.in_flight)
        submissions = [Submission(i, f"{self.prefix}-{i}", erp_of(i)) for i in range(self.calls)]
        probe: list[ProbeSample] = []
        stop_probe = asyncio.Event()
        probe_task = asyncio.create_task(self.probe(stop_probe, probe))

        async def one(sub: Submission) -> None:
            async with slots:
                request = returns_pb2.SubmitReturnRequest(return_order=build_order(self.prefix, sub.index))
                sub.started = time.monotonic()
                deadline = sub.started + self.retry_budget
                delay = 0.1
                while True:
                    sub.attempts += 1
                    attempt_started = time.monotonic()
                    try:
                        reply = await stubs[next(picks) % len(stubs)].SubmitReturn(
                            request, metadata=self.metadata, timeout=self.attempt_timeout
                        )
                        sub.outcome = returns_pb2.SubmitOutcome.Name(reply.outcome).removeprefix(
                            "SUBMIT_OUTCOME_"
                        )
                        sub.first_ok_attempt_started = attempt_started
                        if reply.HasField("accepted_at"):
                            sub.accepted_at = reply.accepted_at.seconds + reply.accepted_at.nanos / 1e9
                        break
                    except grpc.aio.AioRpcError as exc:
                        sub.errors.append(exc.code().name)
                        sub.outcome = exc.code().name
                        if exc.code() not in RETRYABLE or time.monotonic() + delay > deadline:
                            break
                    # Client backoff between attempts of one return (not a synchronisation wait).
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                sub.ended = time.monotonic()
            self._advance()
            if on_progress is not None:
                on_progress(self.completed)

        started = time.monotonic()
        try:
            await asyncio.gather(*(one(s) for s in submissions))
        finally:
            ended = time.monotonic()
            stop_probe.set()
            await probe_task
            for ch in channels:
                await ch.close()
        return LoadResult(started, ended, submissions, probe)


async def idle_probe(targets: list[str], api_key: str, seconds: float) -> list[ProbeSample]:
    """The probe alone, before the load: the idle latency the spike is compared with."""
    driver = LoadDriver(targets, api_key, prefix="idle", calls=0, in_flight=1)
    stop = asyncio.Event()
    samples: list[ProbeSample] = []
    task = asyncio.create_task(driver.probe(stop, samples))
    await asyncio.sleep(seconds)  # the measurement window itself, not a synchronisation
    stop.set()
    await task
    return samples
