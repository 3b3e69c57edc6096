"""W3C trace context across NATS: inject ``traceparent`` into message headers, extract it on the other side.

Uses the OpenTelemetry API only; without a configured SDK every span is a cheap no-op, so tracing costs
nothing until ``tracing.enabled`` installs a provider (``observability/tracing.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from opentelemetry import propagate, trace
from opentelemetry.context import Context

__all__ = ["TRACER_NAME", "extract", "inject", "tracer"]

TRACER_NAME: Final = "returnbridge"


def tracer() -> trace.Tracer:
    """The project's tracer from the current global provider (looked up per use: tests swap providers)."""
    return trace.get_tracer(TRACER_NAME)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add ``traceparent`` (and ``tracestate``/baggage when set) for the current span to ``headers``."""
    propagate.inject(headers)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    """The remote parent carried by ``headers`` (an empty context when there is none)."""
    return propagate.extract(dict(headers or {}))
