"""AdminService: dead letters, mapping validation, audit query/verify and reconciliation, all tenant-scoped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
import yaml

from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc
from returnbridge.audit.log import AuditLog
from returnbridge.audit.service import AuditQueries
from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.domain.context import current_principal
from returnbridge.errors import ConfigError, SpecError, ValidationError
from returnbridge.observability.metrics import set_dlq_size
from returnbridge.sync.reconciliation import reconciliation_report
from returnbridge.sync.status import SyncStateStore

SpecChecker = Callable[[str, str, str], Sequence[SpecError]]


def _mapping_checker() -> SpecChecker:
    from returnbridge.mapping import check_spec_text

    return check_spec_text


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Args:
    dead_letters: the DLQ store.
    status: sync state (reconciliation).
    audit: audit log; replays and discards are recorded there.
    check_spec: mapping validation (defaults to ``returnbridge.mapping.check_spec_text``).
    """

    def __init__(
        self,
        dead_letters: DeadLetterStore,
        status: SyncStateStore,
        audit: AuditLog | None = None,
        *,
        check_spec: SpecChecker | None = None,
    ) -> None:
        self._dlq = dead_letters
        self._status = status
        self._audit = audit
        self._audit_queries = AuditQueries(audit) if audit is not None else None
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

    async def _dlq_gauge(self) -> None:
        set_dlq_size(await self._dlq.count())

    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListDeadLettersResponse:
        letters, token = await self._dlq.list(
            current_principal().tenant_id,
            erp=request.erp,
            return_id=request.return_id,
            include_resolved=request.include_resolved,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        for letter in letters:
            letter.ClearField("payload")  # listing stays small; GetDeadLetter returns it
        return admin_pb2.ListDeadLettersResponse(dead_letters=letters, next_page_token=token)

    async def GetDeadLetter(
        self, request: admin_pb2.GetDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeadLetter:
        return await self._dlq.get(current_principal().tenant_id, request.id)

    async def ReplayDeadLetter(
        self, request: admin_pb2.ReplayDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReplayDeadLetterResponse:
        letter, sequence = await self._dlq.replay(current_principal().tenant_id, request.id)
        await self._record("dlq.replayed", letter, request.comment)
        await self._dlq_gauge()
        return admin_pb2.ReplayDeadLetterResponse(dead_letter=letter, stream_sequence=sequence)

    async def DiscardDeadLetter(
        self, request: admin_pb2.DiscardDeadLetterRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.DeadLetter:
        letter = await self._dlq.discard(current_principal().tenant_id, request.id)
        await self._record("dlq.discarded", letter, request.comment)
        await self._dlq_gauge()
        return letter

    async def ValidateMapping(
        self, request: admin_pb2.ValidateMappingRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ValidateMappingResponse:
        current_principal()
        if not request.spec_yaml:
            raise ValidationError("spec_yaml is required")
        checker = self._check_spec or _mapping_checker()
        file_name = request.file_name or "<request>"
        problems = list(checker(request.spec_yaml, file_name, request.base_mapping_id))
        rule_count = 0
        try:
            data: Any = yaml.safe_load(request.spec_yaml)
            rules = data.get("rules") if isinstance(data, dict) else None
            rule_count = len(rules) if isinstance(rules, list | dict) else 0
        except yaml.YAMLError:
            rule_count = 0
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
