"""AdminService: dead letters, mapping validation, audit query/verify and reconciliation, all tenant-scoped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import yaml

from returnbridge import safe_yaml
from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc
from returnbridge.audit.log import AuditLog
from returnbridge.audit.service import AuditQueries
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.domain.context import current_principal
from returnbridge.domain.tenant_ids import TenantIds, default_ids
from returnbridge.errors import ConfigError, FieldViolation, NotFoundError, SpecError, ValidationError
from returnbridge.observability.metrics import set_dlq_size
from returnbridge.services.serial_claims import SerialClaims, authorization_discarded
from returnbridge.sync.reconciliation import reconciliation_report
from returnbridge.sync.status import SyncStateStore

SpecChecker = Callable[[str, str, str], Sequence[SpecError]]

# Kinds of opaque ids (tenant_ids): dead letters and the delivery messages a replay creates.
DEAD_LETTER_ID = "dead_letter"
DELIVERY_SEQUENCE = "delivery_sequence"

#: Wall-clock budget of one ValidateMapping (parse + validate + compile, off the event loop).
VALIDATE_BUDGET_SECONDS = 10.0


def _mapping_checker() -> SpecChecker:
    from returnbridge.mapping import check_spec_text

    return check_spec_text


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Args:
    dead_letters: the DLQ store.
    status: sync state (reconciliation).
    audit: audit log; replays and discards are recorded there.
    check_spec: mapping validation (defaults to ``returnbridge.mapping.check_spec_text``).
    ids: per-tenant opaque ids; dead-letter ids and sequences a caller sees are never raw stream positions.
    serials: serial claims; discarding a dead letter of a return's authorization releases its serials.
    """

    def __init__(
        self,
        dead_letters: DeadLetterStore,
        status: SyncStateStore,
        audit: AuditLog | None = None,
        *,
        check_spec: SpecChecker | None = None,
        ids: TenantIds | None = None,
        serials: SerialClaims | None = None,
    ) -> None:
        self._ids = ids or default_ids()
        self._serials = serials
        self._dlq = dead_letters
        self._status = status
        self._audit = audit
        self._audit_queries = AuditQueries(audit, ids=self._ids) if audit is not None else None
        self._check_spec = check_spec

    async def _record(self, action: str, letter: admin_pb2.DeadLetter, comment: str) -> None:
        if self._audit is not None:
            await self._audit.record(
                action=action,
                object_type="dead_letter",
                object_id=str(letter.id),
                tenant_id=letter.tenant_id,
                details={"return_id": letter.return_id, "version": str(letter.version), "comment": comment},
            )

    def _hide_id(self, tenant: str, letter: admin_pb2.DeadLetter) -> admin_pb2.DeadLetter:
        letter.id = self._ids.encode(tenant, DEAD_LETTER_ID, letter.id)
        return letter

    def _position(self, tenant: str, letter_id: int) -> int:
        position = self._ids.decode(tenant, DEAD_LETTER_ID, letter_id)
        if not position:
            raise NotFoundError(f"dead letter {letter_id} not found")
        return position

    def _position_token(self, tenant: str, token: str) -> str:
        """The store's page token behind ours (request limits already made it ASCII digits)."""
        if not token:
            return ""
        position = self._ids.decode(tenant, DEAD_LETTER_ID, int(token))
        if position is None:
            raise ValidationError(
                "malformed page_token", [FieldViolation("page_token", "pass back next_page_token unchanged")]
            )
        return str(position)

    async def _dlq_gauge(self) -> None:
        set_dlq_size(await self._dlq.count())

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListDeadLettersResponse:
        tenant = current_principal().tenant_id
        letters, token = await self._dlq.list(
            tenant,
            erp=request.erp,
            return_id=request.return_id,
            include_resolved=request.include_resolved,
            page_size=request.page_size,
            page_token=self._position_token(tenant, request.page_token),
        )
        for letter in letters:
            letter.ClearField("payload")  # listing stays small; GetDeadLetter returns it
            self._hide_id(tenant, letter)
        next_token = str(self._ids.encode(tenant, DEAD_LETTER_ID, int(token))) if token else ""
        return admin_pb2.ListDeadLettersResponse(dead_letters=letters, next_page_token=next_token)

    async def GetDeadLetter(
        self, request: admin_pb2.GetDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeadLetter:
        tenant = current_principal().tenant_id
        return self._hide_id(tenant, await self._dlq.get(tenant, self._position(tenant, request.id)))

    async def ReplayDeadLetter(
        self, request: admin_pb2.ReplayDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReplayDeadLetterResponse:
        tenant = current_principal().tenant_id
        letter, sequence = await self._dlq.replay(tenant, self._position(tenant, request.id))
        self._hide_id(tenant, letter)
        await self._record("dlq.replayed", letter, request.comment)
        await self._dlq_gauge()
        return admin_pb2.ReplayDeadLetterResponse(
            dead_letter=letter, stream_sequence=self._ids.encode(tenant, DELIVERY_SEQUENCE, sequence)
        )

    async def DiscardDeadLetter(
        self, request: admin_pb2.DiscardDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeadLetter:
        tenant = current_principal().tenant_id
        letter = self._hide_id(tenant, await self._dlq.discard(tenant, self._position(tenant, request.id)))
        if self._serials is not None:
            record = await self._status.get(tenant, letter.return_id)
            if record is not None and authorization_discarded(record):
                held = (record.get("lifecycle") or {}).get("serials", ())
                await self._serials.release(tenant, letter.return_id, held)
        await self._record("dlq.discarded", letter, request.comment)
        await self._dlq_gauge()
        return letter

    async def ValidateMapping(
        self, request: admin_pb2.ValidateMappingRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ValidateMappingResponse:
        current_principal()
        if not request.spec_yaml:
            raise ValidationError("spec_yaml is required", [FieldViolation("spec_yaml", "required")])
        checker = self._check_spec or _mapping_checker()
        file_name = request.file_name or "<request>"

        def check() -> tuple[Any, list[SpecError]]:
            # Parsed with the bounded loader first, so a refused limit is INVALID_ARGUMENT, not a "problem".
            try:
                data: Any = safe_yaml.load(request.spec_yaml)
            except safe_yaml.YamlLimitError as exc:
                raise exc.for_field("spec_yaml") from None
            except yaml.YAMLError:
                data = None
            return data, list(checker(request.spec_yaml, file_name, request.base_mapping_id))

        data, problems = await safe_yaml.run_bounded(
            check, budget_seconds=VALIDATE_BUDGET_SECONDS, what="mapping validation", field="spec_yaml"
        )
        rules = data.get("rules") if isinstance(data, dict) else None
        rule_count = len(rules) if isinstance(rules, list | dict) else 0
        return admin_pb2.ValidateMappingResponse(
            valid=not problems,
            problems=[
                admin_pb2.MappingProblem(
                    file=p.file or file_name,
                    line=p.line,
                    rule=p.rule,
                    message=str(p.args[0] if p.args else p),
                )
                for p in problems
            ],
            rule_count=rule_count,
        )

    async def QueryAudit(
        self, request: admin_pb2.QueryAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.QueryAuditResponse:
        if self._audit_queries is None:
            raise ConfigError("audit log is not configured")
        return await self._audit_queries.query(request)

    async def VerifyAudit(
        self, request: admin_pb2.VerifyAuditRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.VerifyAuditResponse:
        if self._audit_queries is None:
            raise ConfigError("audit log is not configured")
        return await self._audit_queries.verify(request)

    async def GetReconciliationReport(
        self, request: admin_pb2.ReconciliationRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReconciliationReport:
        since = request.since.ToNanoseconds() / 1e9 if request.HasField("since") else 0.0
        return await reconciliation_report(
            self._status, current_principal().tenant_id, erp=request.erp, since=since
        )
