"""A whole pipeline over a real nats-server and grpc.aio on port 0, with an in-test ERP connector double."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck

from helpers.eventually import assert_eventually
from returnbridge.api.v1 import admin_pb2_grpc, inventory_pb2_grpc, returns_pb2, returns_pb2_grpc
from returnbridge.audit.log import AuditLog
from returnbridge.bus import subjects
from returnbridge.bus.consumer import ConsumerSettings
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import StreamsConfig, ensure_streams
from returnbridge.connectors.base import ChangeBatch, Connector, DocumentRequest, DocumentResult
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.delivery.submitted_audit import SubmittedAuditor
from returnbridge.delivery.worker import DeliverySettings, DeliveryWorker
from returnbridge.errors import AmbiguousErpError, NotFoundError, PermanentErpError, TranslationError
from returnbridge.gateway.auth import hash_api_key
from returnbridge.gateway.interceptors import build_interceptors
from returnbridge.gateway.security_config import SecurityConfig
from returnbridge.mapping.ports import MapperSource
from returnbridge.routing import load_routing_file
from returnbridge.routing.router import Router
from returnbridge.services.intake import Intake
from returnbridge.services.returns import ReturnsServicer
from returnbridge.sync.status import SyncStateStore


class FakeErp:
    """Connector double that accepts duplicate references; faults are queued per document type.

    A queued fault is an exception raised instead of creating, or the string ``"ambiguous"``: the document
    is created and then AmbiguousErpError raised (the answer was lost).
    """

    kind = "fake"
    erp = "netsuite"

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], DocumentResult] = {}
        self.requests: list[DocumentRequest] = []
        self.faults: dict[str, list[Any]] = defaultdict(list)
        self.fault_fn: Callable[[DocumentRequest], Any] | None = None
        self.creates: Counter[tuple[str, str]] = Counter()
        self._ids = itertools.count(1000)
        self.inventory: list[bytes] = []
        self.statuses: list[bytes] = []

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        self.requests.append(request)
        await asyncio.sleep(0)
        fault = self.faults[request.document_type].pop(0) if self.faults[request.document_type] else None
        if fault is None and self.fault_fn is not None:
            fault = self.fault_fn(request)
        if isinstance(fault, Exception):
            raise fault
        key = (request.document_type, request.external_reference)
        # Duplicates are accepted (as S/4HANA does by default): a second create makes a second document,
        # so ``creates[key] == 1`` proves the worker's lookup, not a refusal by the ERP double.
        result = DocumentResult(
            request.document_type,
            str(next(self._ids)),
            external_reference=request.external_reference,
            raw={"payload": request.payload.decode(), "source": request.source_document_id},
        )
        self.documents.setdefault(key, result)
        self.creates[key] += 1
        if fault == "ambiguous":
            raise AmbiguousErpError("connection dropped after the request was sent", erp=self.erp)
        return result

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        found = self.documents.get((document_type, external_reference))
        return None if found is None else DocumentResult(document_type, found.document_id, created=False)

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        for doc in self.documents.values():
            if doc.document_id == document_id:
                return doc
        raise PermanentErpError("no such document", erp=self.erp, code="NOT_FOUND")

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        start = int(cursor or 0)
        records = self.inventory[start : start + limit]
        return ChangeBatch(
            records, str(start + len(records)), has_more=start + len(records) < len(self.inventory)
        )

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        start = int(cursor or 0)
        records = self.statuses[start : start + limit]
        return ChangeBatch(
            records, str(start + len(records)), has_more=start + len(records) < len(self.statuses)
        )

    async def aclose(self) -> None:
        return None


class EchoMapper:
    """Mapping double: the JSON body names the return and version; ids in ``broken`` fail translation."""

    def __init__(self, mapping_id: str, broken: set[str]) -> None:
        self.id = mapping_id
        self._broken = broken

    def translate(self, document: bytes) -> bytes:
        order = returns_pb2.ReturnOrder.FromString(document)
        if order.return_id in self._broken:
            raise TranslationError("unit price missing", rule="lines.rate", path="lines[0].unit_price")
        refs = [ref.document_id for ref in order.erp_references]
        return json.dumps(
            {"mapping": self.id, "return": order.return_id, "v": order.version, "refs": refs}
        ).encode()

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]:
        out: list[bytes | TranslationError] = []
        for document in documents:
            try:
                out.append(self.translate(document))
            except TranslationError as exc:
                out.append(exc)
        return out


class EchoMappers:
    def __init__(self) -> None:
        self.broken: set[str] = set()

    def get(self, mapping_id: str) -> EchoMapper:
        if "/" not in mapping_id:
            raise NotFoundError(f"unknown mapping {mapping_id!r}")
        return EchoMapper(mapping_id, self.broken)


#: Tenants the harness serves; each gets the API key ``harness_key(tenant)`` with every caller role.
HARNESS_TENANTS = ("acme", "globex", "a", "scoped", "beta")
_ALL_ROLES = ["submitter", "reader", "integration_admin", "auditor"]


def harness_key(tenant: str) -> str:
    """The raw API key of ``tenant`` in the harness (bearer tokens are at least 16 characters)."""
    return f"rb-harness-key-{tenant}"


def harness_security() -> SecurityConfig:
    """Real API keys for the harness tenants, so servicers run behind the real interceptor chain."""
    return SecurityConfig.model_validate(
        {
            "api_keys": [
                {
                    "name": f"rms@{t}",
                    "tenant_id": t,
                    "roles": _ALL_ROLES,
                    "sha256": hash_api_key(harness_key(t)),
                }
                for t in HARNESS_TENANTS
            ]
        }
    )


def fast_settings(**overrides: Any) -> DeliverySettings:
    values: dict[str, Any] = {
        "batch_size": 100,
        "fetch_timeout_seconds": 0.2,
        "erp_timeout_seconds": 5.0,
        "retry": RetryPolicy(base_delay=0.05, max_delay=0.2, max_attempts=5),
        "consumer": ConsumerSettings(ack_wait_seconds=10.0),
        "waiting_delay_seconds": 0.05,
        "waiting_on_dead_letter_delay_seconds": 0.2,
    }
    values.update(overrides)
    return DeliverySettings(**values)


class RecordingAlerter:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.resolved: list[tuple[str, str]] = []

    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool:
        self.alerts.append(
            {"kind": kind, "key": key, "severity": severity, "summary": summary, "details": details}
        )
        return True

    async def resolve(self, *, kind: str, key: str) -> None:
        self.resolved.append((kind, key))


@dataclass
class Pipeline:
    nc: NatsClient
    router: Router
    status: SyncStateStore
    intake: Intake
    dead_letters: DeadLetterStore
    publisher: Publisher
    buckets: dict[str, Any]
    erps: dict[str, FakeErp] = field(default_factory=dict)
    mappers: EchoMappers = field(default_factory=EchoMappers)
    alerter: RecordingAlerter = field(default_factory=RecordingAlerter)
    workers: list[DeliveryWorker] = field(default_factory=list)
    scribes: list[SubmittedAuditor] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    channel: grpc.aio.Channel | None = None
    address: str = ""

    @classmethod
    async def create(cls, nc: NatsClient, router: Router | None = None) -> Pipeline:
        js = nc.jetstream()
        buckets = await ensure_streams(js, StreamsConfig())
        publisher = Publisher(nc, js)
        status = SyncStateStore(
            buckets[subjects.SYNC_STATE_BUCKET], publisher, rma_index=buckets[subjects.RMA_INDEX_BUCKET]
        )
        router = router or Router()
        intake = Intake(router, publisher, buckets[subjects.IDEMPOTENCY_BUCKET], status)
        return cls(nc, router, status, intake, DeadLetterStore(js, publisher, status), publisher, buckets)

    def routed_intake(self, target: str) -> Intake:
        """An intake whose routing (the shipped routing file, its rules dropped) sends every return to ``target``."""
        config = load_routing_file()
        default = config.default.model_copy(update={"target": target})
        router = Router(config.model_copy(update={"rules": (), "default": default}))
        return Intake(router, self.publisher, self.buckets[subjects.IDEMPOTENCY_BUCKET], self.status)

    async def start_worker(
        self,
        target: str = "netsuite",
        settings: DeliverySettings | None = None,
        *,
        erp: FakeErp | None = None,
        audit: AuditLog | None = None,
    ) -> FakeErp:
        """A worker delivering ``target`` to ``erp`` (the target's shared FakeErp by default)."""
        if erp is not None:
            self.erps[target] = erp
        erp = self.erps.setdefault(target, FakeErp())
        worker = DeliveryWorker(
            target,
            erp,
            self.mappers,
            self.nc.jetstream(),
            self.status,
            self.dead_letters,
            settings or fast_settings(),
            alerter=self.alerter,
            audit=audit,
        )
        await worker.start()
        self.workers.append(worker)
        return erp

    async def start_connector_worker(
        self, target: str, connector: Connector, mappers: MapperSource, settings: DeliverySettings
    ) -> DeliveryWorker:
        """A worker delivering ``target`` through a real connector (a simulator harness's) and real mappings."""
        worker = DeliveryWorker(
            target,
            connector,
            mappers,
            self.nc.jetstream(),
            self.status,
            self.dead_letters,
            settings,
            alerter=self.alerter,
        )
        await worker.start()
        self.workers.append(worker)
        return worker

    async def only_document(self, tenant: str, return_id: str) -> dict[str, Any]:
        """The one document of a single-step return, as stored."""
        record = await self.status.get(tenant, return_id)
        assert record is not None, return_id
        docs: list[dict[str, Any]] = list(record["documents"].values())
        assert len(docs) == 1, docs
        return docs[0]

    async def wait_documents(
        self, tenant: str, orders: Sequence[returns_pb2.ReturnOrder], state: str, *, timeout: float
    ) -> None:
        """Until the one document of each of ``orders`` is in ``state``."""

        async def check() -> None:
            for order in orders:
                doc = await self.only_document(tenant, order.return_id)
                assert doc["state"] == state, doc

        await assert_eventually(check, timeout=timeout)

    async def start_audit_scribe(
        self, audit: AuditLog, js: JetStreamContext | None = None
    ) -> SubmittedAuditor:
        """The scribe that writes ``return.submitted`` from the stored submissions, as worker processes run it."""
        scribe = SubmittedAuditor(js or self.nc.jetstream(), audit)
        await scribe.start()
        self.scribes.append(scribe)
        return scribe

    async def start_grpc(self, *servicers: Any) -> grpc.aio.Channel:
        server = grpc.aio.server(interceptors=build_interceptors(harness_security()))
        for servicer in servicers:
            if isinstance(servicer, ReturnsServicer):
                returns_pb2_grpc.add_ReturnsServiceServicer_to_server(servicer, server)
            elif isinstance(servicer, admin_pb2_grpc.AdminServiceServicer):
                admin_pb2_grpc.add_AdminServiceServicer_to_server(servicer, server)
            elif isinstance(servicer, inventory_pb2_grpc.InventoryServiceServicer):
                inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self.server = server
        self.address = f"127.0.0.1:{port}"
        self.channel = grpc.aio.insecure_channel(self.address)
        return self.channel

    def returns_servicer(self) -> ReturnsServicer:
        return ReturnsServicer(self.intake, self.status, self.nc.jetstream())

    async def close(self) -> None:
        for worker in self.workers:
            await worker.stop()
        for scribe in self.scribes:
            await scribe.stop()
        if self.channel is not None:
            await self.channel.close()
        if self.server is not None:
            await self.server.stop(None)
        await self.intake.drain()


def md(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata authenticating as ``tenant``'s harness API key."""
    return (("authorization", f"Bearer {harness_key(tenant)}"),)


def make_order(
    return_id: str,
    version: int = 1,
    event: int = returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    *,
    site: str = "DAL1",
    amount: str = "19.99",
    refund_method: int = returns_pb2.REFUND_METHOD_STORE_CREDIT,
    notes: str = "",
) -> returns_pb2.ReturnOrder:
    order = returns_pb2.ReturnOrder(
        return_id=return_id,
        rma_number=f"RMA-{return_id}",
        version=version,
        event=event,  # type: ignore[arg-type]
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        currency="USD",
        notes=notes,
    )
    order.customer.customer_id = "C1"
    order.customer.tier = "standard"
    line = order.lines.add(
        line_id="1", sku="SKU-1", product_type="electronics", quantity="1", unit_of_measure="EA"
    )
    line.unit_price.amount, line.unit_price.currency = amount, "USD"
    line.location.site = site
    order.refund.method = refund_method  # type: ignore[assignment]
    order.refund.amount.amount, order.refund.amount.currency = amount, "USD"
    return order


LIFECYCLE = [
    returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
    returns_pb2.LIFECYCLE_EVENT_RECEIVED,
    returns_pb2.LIFECYCLE_EVENT_REFUNDED,
]


async def reconnecting(server: EmbeddedNatsServer) -> NatsClient:
    """A worker process's connection: it lives through the server's restarts."""
    return await nats.connect(
        server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=5
    )


class StoppingPublisher(Publisher):
    """A gateway that stops at its publish: before it (``after_publish`` False) or after the PubAck, before naming."""

    def __init__(self, base: Publisher, *, after_publish: bool) -> None:
        super().__init__(base._nc, base._js)
        self.after_publish = after_publish
        self.stops = 1

    async def publish_delivery(
        self,
        target: str,
        tenant: str,
        payload: bytes,
        *,
        msg_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> PubAck:
        if self.stops:
            self.stops -= 1
            if self.after_publish:
                await super().publish_delivery(target, tenant, payload, msg_id=msg_id, headers=headers)
            raise NatsTimeoutError  # the caller never learns what happened: as good as a killed process
        return await super().publish_delivery(target, tenant, payload, msg_id=msg_id, headers=headers)


async def stopped_submission(
    pipeline: Pipeline, order: returns_pb2.ReturnOrder, *, after_publish: bool
) -> Intake:
    """Submit ``order`` through a gateway that stops at its publish; the intake (working from now on)."""
    publisher = StoppingPublisher(pipeline.publisher, after_publish=after_publish)
    intake = Intake(pipeline.router, publisher, None, pipeline.status)
    # The caller never learns what happened (the error interceptor answers UNAVAILABLE).
    with pytest.raises(NatsTimeoutError):
        await intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))
    return intake
