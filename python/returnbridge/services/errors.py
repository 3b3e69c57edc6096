"""How one of our errors looks on the wire: the rich gRPC status, or the ItemError of one item in a stream.

The gateway's ErrorsInterceptor is the one place a call's error becomes its status; servicers raise and never
catch. Batch streams report each item's error inside its result instead, through ``item_result``, with the
same message (ERP text redacted) the status would carry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from returnbridge.api.v1 import common_pb2
from returnbridge.audit.redact import redact_text
from returnbridge.bus.link import as_bus_unavailable
from returnbridge.domain.context import request_id
from returnbridge.errors import (
    BusUnavailableError,
    ErpError,
    PreconditionError,
    RateLimitedError,
    ReturnBridgeError,
    TranslationError,
    ValidationError,
)

__all__ = [
    "RefusedItem",
    "as_status_error",
    "error_message",
    "internal_item_error",
    "item_error",
    "item_result",
    "status_for_error",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


def error_message(exc: ReturnBridgeError) -> str:
    """The message a client sees: ERP messages can echo document content (names, e-mails), so they are redacted."""
    return redact_text(str(exc)) if isinstance(exc, ErpError) else str(exc)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _duration(seconds: float) -> duration_pb2.Duration:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return delay


def status_for_error(exc: ReturnBridgeError, request_id: str = "") -> grpc.Status:
    """The rich gRPC status for one of our errors (BadRequest / PreconditionFailure / RetryInfo + QuotaFailure)."""
    code: grpc.StatusCode = exc.grpc_status
    message = error_message(exc)
    details: list[any_pb2.Any] = []
    if isinstance(exc, ValidationError) and exc.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in exc.violations
                    ]
                )
            )
        )
    elif isinstance(exc, PreconditionError):
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        )
    elif isinstance(exc, TranslationError):
        field = exc.path or exc.rule or "document"
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
                    ]
                )
            )
        )
    elif isinstance(exc, BusUnavailableError):
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=_duration(exc.retry_after))))
    elif isinstance(exc, RateLimitedError):
        seconds = max(exc.retry_after, 0.0)
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
        details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(subject=exc.quota, description=message)
                    ]
                )
            )
        )
    if request_id:
        details.append(_pack(error_details_pb2.RequestInfo(request_id=request_id)))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(status)


def as_status_error(exc: Exception) -> ReturnBridgeError | None:
    """The error of ours an unexpected exception amounts to (the bus unreachable), or None: INTERNAL."""
    return as_bus_unavailable(exc)


def item_error(error: ReturnBridgeError) -> common_pb2.ItemError:
    item = common_pb2.ItemError(code=error.grpc_status.value[0], message=error_message(error))
    if isinstance(error, ValidationError):
        for v in error.violations:
            item.field_violations.add(field=v.field, description=v.description)
    return item


@dataclass(frozen=True, slots=True)
class RefusedItem:
    """One item of a batch request stream the gateway refused (over a bound, or bytes that do not decode).

    It reaches the servicer in the item's place, so the servicer answers it with its ItemError and the stream goes
    on; ``request`` is the decoded message, or whatever stood in for bytes that did not decode.
    """

    request: object
    error: ValidationError


def internal_item_error(message: str) -> common_pb2.ItemError:
    return common_pb2.ItemError(code=code_pb2.INTERNAL, message=message)


async def item_result(work: Awaitable[T]) -> T | common_pb2.ItemError:
    """The outcome of one item of a batch stream: its value, or its error as an ItemError (the stream goes on)."""
    try:
        return await work
    except ReturnBridgeError as exc:
        return item_error(exc)
    except Exception as exc:
        if (unavailable := as_bus_unavailable(exc)) is not None:
            return item_error(unavailable)
        # The cause goes to the log only: replies never carry exception classes or internals.
        log.exception("batch item failed unexpectedly (request id %s)", request_id())
        return internal_item_error(f"internal error (request id {request_id()})")
