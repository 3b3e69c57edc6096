"""TranslationService: the compiled mapping packs behind gRPC (Translate, TranslateBatch)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.api.v1 import translation_pb2, translation_pb2_grpc
from returnbridge.errors import NotFoundError, TranslationError

from . import Mapper, MappingRegistry

_DOMAIN = "returnbridge.io"


class TranslationServiceConfig(BaseModel):
    """Limits for the translation service section of the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Caps one call's memory and latency; bigger jobs are split by the caller.
    max_batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    # Batches at least this large run in a worker thread (the Rust batch releases the GIL).
    offload_threshold: int = Field(default=64, ge=1)


def _bad_request(
    message: str, violations: Sequence[tuple[str, str]], reason: str, **meta: str
) -> grpc.Status:
    detail = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    info = error_details_pb2.ErrorInfo(reason=reason, domain=_DOMAIN, metadata=meta)
    packed: list[any_pb2.Any] = []
    for message_detail in (detail, info):
        holder = any_pb2.Any()
        holder.Pack(message_detail)
        packed.append(holder)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=packed)
    return rpc_status.to_status(status)


def _translation_status(mapping_id: str, exc: TranslationError) -> grpc.Status:
    where = exc.path or "(document)"
    rule = exc.rule or "(unknown rule)"
    message = f"mapping {mapping_id!r}: rule {rule!r} at {where}: {exc.args[0] if exc.args else exc}"
    return _bad_request(
        message,
        [(where, f"rule {rule}: {exc.args[0] if exc.args else exc}")],
        "TRANSLATION_FAILED",
        mapping_id=mapping_id,
        rule=exc.rule,
        path=exc.path,
    )


def _problem(exc: TranslationError) -> translation_pb2.TranslationProblem:
    return translation_pb2.TranslationProblem(
        rule=exc.rule, path=exc.path, message=str(exc.args[0]) if exc.args else str(exc)
    )


class TranslationServicer(translation_pb2_grpc.TranslationServiceServicer):
    """Translates documents with the registry's compiled mappers.

    Args:
        registry: the loaded mapping registry (shipped packs plus tenant overrides).
        config: service limits; defaults when omitted.
    """

    def __init__(self, registry: MappingRegistry, config: TranslationServiceConfig | None = None) -> None:
        self._registry = registry
        self._config = config or TranslationServiceConfig()

    async def _mapper(self, mapping_id: str, context: grpc.aio.ServicerContext) -> Mapper:
        if not mapping_id:
            await self._abort(
                context, _bad_request("mapping_id is required", [("mapping_id", "required")], "MISSING_FIELD")
            )
        try:
            return self._registry.get(mapping_id)
        except NotFoundError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc) or f"unknown mapping id {mapping_id!r}")
            raise AssertionError("unreachable") from exc

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, status: grpc.Status) -> NoReturn:
        await context.abort_with_status(status)
        raise AssertionError("unreachable")

    async def Translate(
        self, request: translation_pb2.TranslateRequest, context: grpc.aio.ServicerContext
    ) -> translation_pb2.TranslateResponse:
        mapper = await self._mapper(request.mapping_id, context)
        which = request.WhichOneof("input")
        if mapper.direction == "outbound":
            if which != "return_order":
                await self._abort(context, self._wrong_input(mapper, "return_order", which))
            document = request.return_order.SerializeToString(deterministic=True)
        else:
            if which != "erp_payload":
                await self._abort(context, self._wrong_input(mapper, "erp_payload", which))
            document = request.erp_payload
        try:
            if request.explain:
                output, entries = mapper.explain(document)
            else:
                output, entries = mapper.translate(document), []
        except TranslationError as exc:
            await self._abort(context, _translation_status(mapper.id, exc))
        return translation_pb2.TranslateResponse(
            output=output,
            content_type=mapper.output_content_type,
            explain=[
                translation_pb2.ExplainEntry(output_path=e.output_path, rule=e.rule, input_path=e.input_path)
                for e in entries
            ],
        )

    async def TranslateBatch(
        self, request: translation_pb2.TranslateBatchRequest, context: grpc.aio.ServicerContext
    ) -> translation_pb2.TranslateBatchResponse:
        mapper = await self._mapper(request.mapping_id, context)
        documents: list[bytes]
        if mapper.direction == "outbound":
            if request.erp_payloads:
                await self._abort(context, self._wrong_input(mapper, "return_orders", "erp_payloads"))
            documents = [order.SerializeToString(deterministic=True) for order in request.return_orders]
        else:
            if request.return_orders:
                await self._abort(context, self._wrong_input(mapper, "erp_payloads", "return_orders"))
            documents = list(request.erp_payloads)
        limit = self._config.max_batch_size
        if len(documents) > limit:
            field = "return_orders" if mapper.direction == "outbound" else "erp_payloads"
            await self._abort(
                context,
                _bad_request(
                    f"batch of {len(documents)} documents exceeds the limit of {limit}",
                    [(field, f"at most {limit} documents per call")],
                    "BATCH_TOO_LARGE",
                ),
            )
        if len(documents) >= self._config.offload_threshold:
            outcomes = await asyncio.to_thread(mapper.translate_batch, documents)
        else:
            outcomes = mapper.translate_batch(documents)
        response = translation_pb2.TranslateBatchResponse(content_type=mapper.output_content_type)
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, TranslationError):
                response.results.append(
                    translation_pb2.TranslateResult(index=index, problems=[_problem(outcome)])
                )
                response.failed += 1
            else:
                response.results.append(translation_pb2.TranslateResult(index=index, output=outcome))
        return response

    @staticmethod
    def _wrong_input(mapper: Mapper, expected: str, got: str | None) -> grpc.Status:
        return _bad_request(
            f"mapping {mapper.id!r} is {mapper.direction}: it takes {expected}, got {got or 'nothing'}",
            [(expected, f"required by the {mapper.direction} mapping {mapper.id}")],
            "WRONG_INPUT_KIND",
            mapping_id=mapper.id,
        )
