"""Load test: SubmitReturn throughput and submit -> ERP-confirmed latency, next to a no-op grpc.aio handler.

Both servers run in a child process with the same interceptor and the same client (this process), so the ratio
isolates what the pipeline costs: validation, routing, KV idempotency, JetStream publish, sync state, and for
"confirmed" the worker's fetch, mapping (the real Rust mapper when it loads), an instant ERP and the state writes.
Mode ``erp`` delivers through the real NetSuite connector to the strict NetSuite simulator (in the server
process) and reports the ERP requests per delivered document (rb_erp_requests_total / delivered; goal <= 1.1).

    .venv/bin/python benchmarks/e2e_load.py --calls 20000 --in-flight 1000 [--audit] [--sync-always]
    .venv/bin/python benchmarks/e2e_load.py --modes erp --calls 2000 --in-flight 200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import nats

from returnbridge.api.v1 import returns_pb2, returns_pb2_grpc, sync_pb2
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.connectors.base import ChangeBatch, DocumentRequest, DocumentResult
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import NotFoundError, TranslationError

TENANT = "bench"


@dataclass
class LoadResult:
    name: str
    calls: int
    in_flight: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    confirmed: int = 0
    confirm_p50_ms: float = 0.0
    confirm_p99_ms: float = 0.0
    confirm_seconds: float = 0.0
    # Mode "erp": HTTP requests the workers sent to the ERP, documents delivered, and their ratio.
    erp_requests: int = 0
    delivered: int = 0
    erp_requests_per_document: float = 0.0


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def make_order(index: int) -> returns_pb2.ReturnOrder:
    """A small realistic return the shipped NetSuite pack maps (demo master data)."""
    order = returns_pb2.ReturnOrder(
        return_id=f"bench-{index:07d}",
        rma_number=f"RMA-{index:07d}",
        version=1,
        event=returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        reason_code="DAMAGED",
        currency="USD",
    )
    order.customer.customer_id, order.customer.erp_customer_ref, order.customer.tier = (
        "CUST-0001",
        "101",
        "standard",
    )
    order.event_time.FromSeconds(1795700000)
    for n, sku in enumerate(("SKU-1001", "SKU-1002"), start=1):
        line = order.lines.add(
            line_id=f"L{n}",
            sku=sku,
            product_type="electronics",
            quantity="1",
            unit_of_measure="EA",
            reason_code="DAMAGED",
        )
        line.unit_price.amount, line.unit_price.currency = "19.99", "USD"
        line.location.site, line.location.sub_location = "DAL1", "RTN"
        line.condition = returns_pb2.ITEM_CONDITION_OPENED
        line.disposition = returns_pb2.DISPOSITION_RESTOCK
    order.refund.method = returns_pb2.REFUND_METHOD_ORIGINAL_PAYMENT
    order.refund.amount.amount, order.refund.amount.currency = "39.98", "USD"
    return order


class InstantErp:
    """An ERP that confirms at once: the benchmark measures the pipeline, not an ERP."""

    kind = "instant"
    erp = "netsuite"

    def __init__(self) -> None:
        self._next = 0

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        self._next += 1
        return DocumentResult(request.document_type, str(self._next), request.external_reference)

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        return None

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        return DocumentResult(document_type, document_id)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        return ChangeBatch([], cursor or "")

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        return ChangeBatch([], cursor or "")

    async def aclose(self) -> None:
        return None


class _EchoMapper:
    def translate(self, document: bytes) -> bytes:
        return document

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]:
        return list(documents)


class _EchoMappers:
    def get(self, mapping_id: str) -> _EchoMapper:
        if "/" not in mapping_id:
            raise NotFoundError(mapping_id)
        return _EchoMapper()


class FixedPrincipal(grpc.aio.ServerInterceptor):
    """Sets the caller like the gateway's auth interceptor would (without verifying a credential)."""

    def __init__(self, tenant: str) -> None:
        self._principal = Principal(name="bench", tenant_id=tenant, roles=frozenset({"submit"}))

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or not handler.unary_unary:
            return handler
        inner = handler.unary_unary
        principal = self._principal

        async def call(request: Any, context: Any) -> Any:
            set_principal(principal)
            return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            call, handler.request_deserializer, handler.response_serializer
        )


class FloorReturns(returns_pb2_grpc.ReturnsServiceServicer):
    """The floor of any durable submit (mode "publish"): one JetStream publish with ``Nats-Msg-Id`` (fsync'd when
    the server is), answered after its PubAck; with ``reserve`` (mode "reserve", the floor of an exactly-once one)
    a KV create first. No validation, no routing, no state: what a submission cannot do without."""

    def __init__(self, js: Any, reserve: Any = None) -> None:
        self._js = js
        self._reserve = reserve

    async def SubmitReturn(self, request: Any, context: Any) -> returns_pb2.SubmitReturnResponse:
        order = request.return_order
        payload = order.SerializeToString()
        if self._reserve is not None:
            await self._reserve.create(f"{TENANT}.{order.return_id}", payload)
        ack = await self._js.publish(
            subjects.deliver("netsuite", TENANT),
            payload,
            stream=subjects.DELIVER_STREAM,
            headers={"Nats-Msg-Id": f"{TENANT}:{order.return_id}:{order.version}"},
        )
        return returns_pb2.SubmitReturnResponse(
            tenant_id=TENANT,
            return_id=order.return_id,
            version=order.version,
            outcome=returns_pb2.SUBMIT_OUTCOME_ACCEPTED,
            stream_sequence=ack.seq,
        )


class NoopReturns(returns_pb2_grpc.ReturnsServiceServicer):
    """The baseline: parses the request and answers ACCEPTED without doing anything."""

    async def SubmitReturn(self, request: Any, context: Any) -> returns_pb2.SubmitReturnResponse:
        order = request.return_order
        return returns_pb2.SubmitReturnResponse(
            tenant_id=TENANT,
            return_id=order.return_id,
            version=order.version,
            outcome=returns_pb2.SUBMIT_OUTCOME_ACCEPTED,
        )


async def _serve(mode: str, nats_url: str, conn: Connection, workers: int, audit: bool = False) -> None:
    server = grpc.aio.server(interceptors=[FixedPrincipal(TENANT)])
    stop: list[Any] = []
    if mode == "noop":
        returns_pb2_grpc.add_ReturnsServiceServicer_to_server(NoopReturns(), server)
    elif mode in ("publish", "reserve"):
        from returnbridge.bus.streams import StreamsConfig, ensure_streams

        nc = await nats.connect(nats_url, max_reconnect_attempts=0, pending_size=64 * 1024 * 1024)
        js = nc.jetstream()
        buckets = await ensure_streams(js, StreamsConfig())
        reserve = buckets[subjects.SYNC_STATE_BUCKET] if mode == "reserve" else None
        returns_pb2_grpc.add_ReturnsServiceServicer_to_server(FloorReturns(js, reserve), server)
    else:
        from returnbridge.bus.publisher import Publisher
        from returnbridge.bus.streams import StreamsConfig, ensure_streams
        from returnbridge.delivery.dlq import DeadLetterStore
        from returnbridge.delivery.worker import DeliverySettings, DeliveryWorker
        from returnbridge.routing.router import Router
        from returnbridge.services.intake import Intake
        from returnbridge.services.returns import ReturnsServicer
        from returnbridge.sync.status import SyncStateStore

        mappers: Any
        try:
            from returnbridge.mapping import MappingRegistry

            mappers = MappingRegistry.load()
        except Exception as exc:  # noqa: BLE001 - the benchmark still runs with an echo mapper
            print(f"mapper unavailable ({exc}); using echo mapping", file=sys.stderr)
            mappers = _EchoMappers()
        nc = await nats.connect(nats_url, max_reconnect_attempts=0, pending_size=64 * 1024 * 1024)
        js = nc.jetstream()
        buckets = await ensure_streams(js, StreamsConfig())
        publisher = Publisher(nc, js)
        status = SyncStateStore(buckets[subjects.SYNC_STATE_BUCKET], publisher)
        audit_log = None
        intake_audit: dict[str, Any] = {}
        if audit:
            from returnbridge.audit.log import AuditLog

            audit_log = await AuditLog.open(js)
            if "audit" in {f.name for f in dataclasses.fields(Intake)}:
                intake_audit["audit"] = audit_log  # a tree before the audit scribe (PYTHONPATH=<tree>)
            else:
                from returnbridge.delivery.submitted_audit import SubmittedAuditor

                # return.submitted is written from the stored message by the scribe (a worker process when
                # served); here it shares the server process.
                scribe = SubmittedAuditor(js, audit_log)
                await scribe.start()
                stop.append(scribe)
        intake = Intake(Router(), publisher, buckets[subjects.IDEMPOTENCY_BUCKET], status, **intake_audit)
        returns_pb2_grpc.add_ReturnsServiceServicer_to_server(ReturnsServicer(intake, status, js), server)
        dlq = DeadLetterStore(js, publisher, status)
        connector: Any = InstantErp()
        closers: list[Any] = []
        if mode == "erp":
            connector = await _netsuite_simulator(closers)
        if mode in ("pipeline", "erp"):
            for _ in range(workers):
                worker = DeliveryWorker(
                    "netsuite",
                    connector,
                    mappers,
                    js,
                    status,
                    dlq,
                    DeliverySettings(batch_size=500, concurrency=256),
                    audit=audit_log,
                )
                await worker.start()
                stop.append(worker)
        # The simulator and connector stop after the workers.
        stop.extend(closers)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    conn.send(port)
    await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    for worker in stop:
        await worker.stop()
    await server.stop(1)
    conn.send(_erp_counts())


async def _netsuite_simulator(stop: list[Any]) -> Any:
    """The strict NetSuite simulator on loopback and the real connector pointed at it (TBA, embedded config)."""
    from returnbridge.connectors.registry import build_connector, parse_connector_config
    from returnbridge.simulators.kit import RunningSimulator
    from returnbridge.simulators.netsuite import create_app, embedded_connector_config

    app, _ = create_app()
    running = await RunningSimulator(app).start()
    connector = build_connector(
        parse_connector_config(embedded_connector_config(running.url), source="bench")
    )

    class _Closer:
        async def stop(self) -> None:
            await connector.aclose()
            await running.stop()

    stop.append(_Closer())
    return connector


def _erp_counts() -> dict[str, float]:
    """ERP requests and delivered documents from this process's Prometheus registry."""
    from returnbridge.observability.metrics import REGISTRY

    total = sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "rb_erp_requests"
        for sample in metric.samples
        if sample.name == "rb_erp_requests_total"
    )
    delivered = REGISTRY.get_sample_value("rb_processing_total", {"outcome": "delivered"}) or 0.0
    return {"erp_requests": total, "delivered": delivered}


def _child(
    mode: str, nats_url: str, conn: Connection, workers: int, audit: bool, profile: str | None
) -> None:
    if profile is None:
        asyncio.run(_serve(mode, nats_url, conn, workers, audit))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, _serve(mode, nats_url, conn, workers, audit))
    profiler.dump_stats(f"{profile}.{mode}.prof")


async def _drive(
    name: str, address: str, orders: list[returns_pb2.ReturnOrder], in_flight: int, nats_url: str | None
) -> LoadResult:
    requests = [returns_pb2.SubmitReturnRequest(return_order=order) for order in orders]
    started: dict[str, float] = {}
    confirmed: dict[str, float] = {}
    expected = {order.return_id for order in orders}
    all_confirmed = asyncio.Event()
    nc = None
    if nats_url is not None:
        nc = await nats.connect(nats_url, max_reconnect_attempts=0, pending_size=64 * 1024 * 1024)

        async def on_event(msg: Any) -> None:
            event = sync_pb2.SyncEvent.FromString(msg.data)
            if event.state == sync_pb2.SYNC_STATE_DELIVERED and event.return_id in expected:
                confirmed.setdefault(event.return_id, time.perf_counter())
                if len(confirmed) == len(expected):
                    all_confirmed.set()

        await nc.subscribe(subjects.status(TENANT), cb=on_event, pending_msgs_limit=1_000_000)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = returns_pb2_grpc.ReturnsServiceStub(channel)
        await stub.SubmitReturn(
            returns_pb2.SubmitReturnRequest(return_order=make_order(10_000_000))
        )  # warm up
        queue = iter(requests)

        async def client() -> None:
            nonlocal errors
            for request in queue:
                begin = time.perf_counter()
                started[request.return_order.return_id] = begin
                try:
                    await stub.SubmitReturn(request, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - begin)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(in_flight)))
        seconds = time.perf_counter() - t0
    result = LoadResult(
        name=name,
        calls=len(orders),
        in_flight=in_flight,
        seconds=round(seconds, 3),
        throughput=round(len(latencies) / seconds, 1),
        p50_ms=round(_percentile(latencies, 0.50), 1),
        p99_ms=round(_percentile(latencies, 0.99), 1),
        errors=errors,
    )
    if nc is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_confirmed.wait(), timeout=120)
        confirm = [confirmed[rid] - started[rid] for rid in confirmed]
        result.confirmed = len(confirm)
        result.confirm_p50_ms = round(_percentile(confirm, 0.50), 1)
        result.confirm_p99_ms = round(_percentile(confirm, 0.99), 1)
        result.confirm_seconds = round(max(confirmed.values(), default=t0) - t0, 3)
        await nc.drain()
    return result


def run_mode(
    mode: str,
    calls: int,
    in_flight: int,
    nats_url: str,
    workers: int = 1,
    offset: int = 0,
    profile: str | None = None,
    audit: bool = False,
) -> LoadResult:
    """Start the ``mode`` server ("noop", "publish", "reserve", "submit", "pipeline" or "erp") in a child process and drive it.

    ``profile``: a path prefix; the server process runs under cProfile and writes ``<prefix>.<mode>.prof``.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_child, args=(mode, nats_url, child, workers, audit, profile), daemon=True)
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError(f"{mode} server did not start")
        port = parent.recv()
        orders = [make_order(offset + i) for i in range(calls)]
        watch = nats_url if mode in ("pipeline", "erp") else None
        result = asyncio.run(_drive(mode, f"127.0.0.1:{port}", orders, in_flight, watch))
        parent.send("stop")
        if parent.poll(60):
            counts = parent.recv()
            result.erp_requests, result.delivered = int(counts["erp_requests"]), int(counts["delivered"])
            if result.delivered:
                result.erp_requests_per_document = round(result.erp_requests / result.delivered, 3)
        return result
    finally:
        if process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                parent.send("stop")
        process.join(30)
        if process.is_alive():
            process.kill()


def run(
    calls: int,
    in_flight: int,
    *,
    sync_always: bool = False,
    workers: int = 1,
    modes: Sequence[str] = ("noop", "submit", "pipeline"),
    profile: str | None = None,
    audit: bool = False,
) -> list[LoadResult]:
    """noop, submit only, and submit + delivery; each against a fresh nats-server so no backlog carries over."""
    results = []
    for mode in modes:
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedNatsServer(Path(tmp) / "nats", sync_always=sync_always)
            server.start()
            try:
                results.append(
                    run_mode(
                        mode, calls, in_flight, server.url, workers=workers, profile=profile, audit=audit
                    )
                )
            finally:
                server.stop()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="delivery workers in the server process")
    parser.add_argument("--sync-always", action="store_true", help="fsync every JetStream write")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--audit", action="store_true", help="record audit entries as the served app does (submit + delivery)"
    )
    parser.add_argument(
        "--modes",
        default="noop,submit,pipeline",
        help="comma-separated subset of noop,publish,reserve,submit,pipeline,erp (publish: one JetStream publish "
        "per call, the floor of a durable submit; reserve: a KV create, then the publish, the floor of an "
        "exactly-once one; erp: real NetSuite connector + simulator)",
    )
    parser.add_argument(
        "--profile", metavar="PREFIX", help="run each server under cProfile, stats to PREFIX.<mode>.prof"
    )
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - {"noop", "publish", "reserve", "submit", "pipeline", "erp"}
    if unknown:
        parser.error(f"unknown modes: {sorted(unknown)}")
    results = run(
        args.calls,
        args.in_flight,
        sync_always=args.sync_always,
        workers=args.workers,
        modes=modes,
        profile=args.profile,
        audit=args.audit,
    )
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    noop = next((r.throughput for r in results if r.name == "noop"), 0.0)
    print(
        f"{'mode':<9} {'calls/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  confirmed p50/p99 ms"
    )
    for r in results:
        confirm = f"{r.confirmed} {r.confirm_p50_ms}/{r.confirm_p99_ms}" if r.confirmed else "-"
        calls = (
            f"  ERP calls/document {r.erp_requests_per_document} ({r.erp_requests}/{r.delivered})"
            if r.name == "erp"
            else ""
        )
        print(
            f"{r.name:<9} {r.throughput:>9} {(f'{r.throughput / noop:.2f}' if noop else '-'):>6} {r.p50_ms:>8} {r.p99_ms:>8} {r.errors:>6}  {confirm}{calls}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
