"""OpenTelemetry tracing setup: off by default; when enabled, spans go to an OTLP/HTTP collector.

Spans are created where the work happens (gateway call, JetStream publish, delivery, each ERP HTTP call,
status event) through the OpenTelemetry API, which is a no-op until this module installs an SDK provider.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from pydantic import BaseModel, ConfigDict, Field, model_validator

from returnbridge.errors import ConfigError

__all__ = ["TracingSettings", "setup_tracing"]


class TracingSettings(BaseModel):
    """The ``tracing`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # OTLP over HTTP/protobuf, e.g. http://otel-collector:4318/v1/traces (needs `returnbridge[otlp]`).
    otlp_endpoint: str | None = None
    service_name: str = "returnbridge"
    # Share of new traces kept; a caller's sampled traceparent is always honoured (parent-based).
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    export_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> TracingSettings:
        if self.enabled and not self.otlp_endpoint:
            raise ValueError("tracing.otlp_endpoint is required when tracing.enabled is true")
        return self


def setup_tracing(settings: TracingSettings) -> Callable[[], None] | None:
    """Install the global tracer provider with an OTLP exporter; returns its shutdown (flushes), or None.

    Raises:
        ConfigError: tracing is enabled but the OTLP exporter package is not installed.
    """
    if not settings.enabled:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "tracing.enabled needs the OTLP exporter: pip install 'returnbridge[otlp]' "
            "(opentelemetry-exporter-otlp-proto-http)"
        ) from None
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint, timeout=settings.export_timeout_seconds)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider.shutdown
