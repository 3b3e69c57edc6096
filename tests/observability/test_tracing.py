"""One trace per return event: gRPC call -> JetStream message -> delivery -> every ERP HTTP call -> status event.

Recorded with the SDK's in-memory exporter against the real service (NATS, simulators, gRPC over loopback).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from console.harness import sample_order
from helpers.app import running
from helpers.settings import served_settings
from returnbridge.api.v1 import returns_pb2
from returnbridge.app import App
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.client import ReturnBridgeClient
from returnbridge.errors import ConfigError
from returnbridge.gateway.auth import hash_api_key
from returnbridge.logs import JsonLinesFormatter, configure_logging
from returnbridge.observability.tracing import TracingSettings, setup_tracing

KEY = "rbk_trace_test_key_0123456789abcdef"
_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per process: install it once, stop recording when done.
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
async def app(tmp_path: Path, nats_server: EmbeddedNatsServer) -> AsyncIterator[App]:
    settings = served_settings(
        tmp_path,
        nats_server.url,
        console={"enabled": False},
        security={
            "api_keys": [
                {"name": "rms", "tenant_id": "acme", "roles": ["submitter"], "sha256": hash_api_key(KEY)}
            ]
        },
    )
    async with running(settings) as app:
        yield app


def by_trace(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def test_one_trace_from_the_call_to_the_status_event(
    app: App, spans: InMemorySpanExporter, nats_server: EmbeddedNatsServer
) -> None:
    nc = await nats.connect(nats_server.url)
    status_headers: list[dict[str, str]] = []

    async def on_status(msg: nats.aio.msg.Msg) -> None:
        status_headers.append(dict(msg.headers or {}))

    await nc.subscribe("rb.status.acme", cb=on_status)
    tracer = trace.get_tracer("rms")
    try:
        async with ReturnBridgeClient.connect(app.endpoints.grpc, token=KEY) as client:
            # The RMS's own span: the service must continue this trace, not start another.
            with tracer.start_as_current_span("rms submit") as root:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                request = returns_pb2.SubmitReturnRequest(return_order=sample_order("trace-1", "acme"))
                await client.returns.SubmitReturn(request, metadata=tuple(carrier.items()))
            trace_id = root.get_span_context().trace_id
            async for _event in client.watch(["trace-1"], from_beginning=True):
                if _event.state == 5:  # DELIVERED
                    break
        await nc.flush()
    finally:
        await nc.drain()

    mine = by_trace(list(spans.get_finished_spans()), trace_id)
    names = {(s.name, s.kind) for s in mine}
    assert ("returnbridge.api.v1.ReturnsService/SubmitReturn", SpanKind.SERVER) in names
    assert ("publish RB_DELIVER", SpanKind.PRODUCER) in names
    assert ("deliver netsuite", SpanKind.CONSUMER) in names
    assert ("publish rb.status", SpanKind.PRODUCER) in names
    erp_calls = [s for s in mine if s.kind == SpanKind.CLIENT]
    assert erp_calls, names
    assert all(s.attributes and s.attributes["returnbridge.erp"] == "netsuite" for s in erp_calls)
    assert any(s.attributes and s.attributes["http.request.method"] == "POST" for s in erp_calls)

    # Parent links: server -> publish -> deliver -> ERP calls (the consumer continues from the message header).
    by_id = {s.context.span_id: s for s in mine if s.context is not None}
    server = next(s for s in mine if s.kind == SpanKind.SERVER)
    assert server.parent is not None and server.parent.span_id == root.get_span_context().span_id
    publish = next(s for s in mine if s.name == "publish RB_DELIVER")
    deliver = next(s for s in mine if s.name == "deliver netsuite")
    assert publish.parent is not None and by_id[publish.parent.span_id] is server
    assert deliver.parent is not None and by_id[deliver.parent.span_id] is publish
    for call in erp_calls:
        assert call.parent is not None and by_id[call.parent.span_id] is deliver

    # The status events carry the same trace in their NATS headers (W3C traceparent).
    trace_hex = f"{trace_id:032x}"
    assert any(h.get("traceparent", "").split("-")[1] == trace_hex for h in status_headers)


async def test_an_untraced_call_starts_its_own_trace(app: App, spans: InMemorySpanExporter) -> None:
    spans.clear()
    async with ReturnBridgeClient.connect(app.endpoints.grpc, token=KEY) as client:
        await client.submit(sample_order("trace-2", "acme"))
    server = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER)
    assert server.parent is None
    assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == "OK"


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:
    stream = io.StringIO()
    configure_logging("INFO", json_lines=True)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    assert isinstance(handler.formatter, JsonLinesFormatter)
    log = logging.getLogger("returnbridge.test")
    log.info("outside")
    with trace.get_tracer("t").start_as_current_span("work") as span:
        log.info("inside")
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "trace_id" not in outside
    assert inside["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert inside["span_id"] == f"{span.get_span_context().span_id:016x}"
    configure_logging("INFO", json_lines=False)
    text_handler = logging.getLogger().handlers[0]
    assert isinstance(text_handler, logging.StreamHandler)
    text_handler.setStream(stream := io.StringIO())
    with trace.get_tracer("t").start_as_current_span("work") as span:
        log.info("inside")
    assert f"trace={span.get_span_context().trace_id:032x}]" in stream.getvalue()


def test_tracing_is_off_by_default_and_enabling_it_needs_an_endpoint() -> None:
    assert setup_tracing(TracingSettings()) is None
    with pytest.raises(ValueError, match="otlp_endpoint is required"):
        TracingSettings(enabled=True)


def test_enabling_without_the_exporter_package_says_what_to_install() -> None:
    pytest.importorskip("opentelemetry.sdk")
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"returnbridge\[otlp\]"):
            setup_tracing(TracingSettings(enabled=True, otlp_endpoint="http://127.0.0.1:4318/v1/traces"))
    else:
        pytest.skip("the OTLP exporter is installed")
