"""Turns a ReturnBridgeError into a gRPC status with google.rpc details (the gateway interceptor may do it first)."""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from returnbridge.api.v1 import common_pb2
from returnbridge.errors import PreconditionError, ReturnBridgeError, ValidationError


def status_of(error: ReturnBridgeError) -> status_pb2.Status:
    code = error.grpc_status.value[0]
    status = status_pb2.Status(code=code, message=str(error))
    if isinstance(error, ValidationError) and error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    if isinstance(error, PreconditionError):
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type, subject=v.subject, description=v.description
                )
                for v in error.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(failure)
        status.details.append(detail)
    return status


def item_error(error: ReturnBridgeError) -> common_pb2.ItemError:
    item = common_pb2.ItemError(code=error.grpc_status.value[0], message=str(error))
    if isinstance(error, ValidationError):
        for v in error.violations:
            item.field_violations.add(field=v.field, description=v.description)
    return item


def internal_item_error(message: str) -> common_pb2.ItemError:
    return common_pb2.ItemError(code=code_pb2.INTERNAL, message=message)


async def abort(context: grpc.aio.ServicerContext, error: ReturnBridgeError) -> NoReturn:
    status = status_of(error)
    await context.abort(
        error.grpc_status,
        str(error),
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )
    raise AssertionError("unreachable")  # context.abort raises
