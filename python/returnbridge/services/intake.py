"""The submit path: validate, route, idempotency record, publish with Nats-Msg-Id, answer after the PubAck."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import dumps, get_json
from returnbridge.bus.publisher import Publisher
from returnbridge.delivery.headers import (
    H_ACCEPTED_AT,
    H_ACTOR,
    H_AUTH_METHOD,
    H_ERP,
    H_IDEMPOTENCY,
    H_LANE,
    H_REQUEST_ID,
    H_RULE,
    H_STEPS,
)
from returnbridge.delivery.translate import dry_run
from returnbridge.domain import erp_constraints
from returnbridge.domain.context import current_principal, request_id
from returnbridge.domain.enums import enum_short
from returnbridge.domain.erp_constraints import FieldConstraint, RoutedConstraints
from returnbridge.domain.erps import erp_name
from returnbridge.domain.money import ISO_4217
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.domain.steps import PlannedStep, encode_steps
from returnbridge.domain.validation import Validator, default_validator
from returnbridge.errors import (
    ConflictError,
    FieldViolation,
    PreconditionError,
    ReturnBridgeError,
    RoutingError,
    TranslationError,
    ValidationError,
)
from returnbridge.mapping.ports import MapperSource
from returnbridge.observability.metrics import count_processing, count_rejection
from returnbridge.routing.router import Router
from returnbridge.services.admission import Admissions
from returnbridge.sync.status import SyncStateStore, is_acceptance


def idempotency_key(order: returns_pb2.ReturnOrder) -> str:
    event = enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)
    return f"{order.tenant_id}:{order.return_id}:{order.version}:{event}"


def idempotency_kv_key(order: returns_pb2.ReturnOrder) -> str:
    event = enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)
    return (
        f"{subjects.kv_token(order.tenant_id)}.{subjects.kv_token(order.return_id)}.{order.version}.{event}"
    )


def _header_text(value: str) -> str:
    """A NATS header value: no line breaks (they would end the header block)."""
    return value.replace("\r", " ").replace("\n", " ")


def rejection_rules(exc: ReturnBridgeError) -> list[str]:
    """The rules a refusal is counted under in ``rb_rejected_total``."""
    if isinstance(exc, ValidationError):
        return [v.rule or "validation" for v in exc.violations] or ["validation"]
    if isinstance(exc, PreconditionError):
        return [exc.rule or "precondition"]
    if isinstance(exc, RoutingError):
        return ["routing"]
    if isinstance(exc, ConflictError):
        return ["idempotency"]
    return [type(exc).__name__]


@dataclass(slots=True)
class Intake:
    """Accepts return events durably; shared by SubmitReturn and the bulk stream.

    Args:
        router: routing rules, built once at startup.
        publisher: JetStream publisher.
        idempotency: the ``rb_idempotency`` bucket.
        status: sync state store (registers accepted versions).
        validator: request validation (defaults to the gateway's).
        admissions: the lifecycle admission (default: the strict lifecycle and default money policy).
        constraints: the ERP constraints a mapping declares (``MappingRegistry.constraints``); when set, a return
            the routed ERP would refuse is refused here, and truncations are reported in the response.
        mappers: when set, the event is translated (and round-trip verified, with ``verify_round_trip``) through
            each mapping of its steps before it is accepted, exactly as the worker will.
        verify_round_trip: the worker's ``delivery.verify_round_trip`` setting.
    """

    router: Router
    publisher: Publisher
    idempotency: KeyValue
    status: SyncStateStore
    validator: Validator | None = None
    admissions: Admissions | None = None
    constraints: Callable[[str], Sequence[FieldConstraint]] | None = None
    mappers: MapperSource | None = None
    verify_round_trip: bool = True

    def __post_init__(self) -> None:
        if self.validator is None:
            self.validator = default_validator()
        if self.admissions is None:
            self.admissions = Admissions(self.status, ReturnPolicyConfig(), ISO_4217)

    async def submit(self, request: returns_pb2.SubmitReturnRequest) -> returns_pb2.SubmitReturnResponse:
        """Validate, route and durably accept one event.

        Raises:
            ValidationError: bad input, or an invariant broken against the return's history (nothing is written).
            PreconditionError: the event is not allowed in the return's state, or the version is stale.
            RoutingError: no route (nothing is written).
            ConflictError: same idempotency key seen with a different payload.
        """
        tenant = current_principal().tenant_id
        # The request is this call's own object: completing it in place saves a copy of every order.
        order = request.return_order
        try:
            if order.tenant_id and order.tenant_id != tenant:
                raise ValidationError(
                    "tenant mismatch",
                    [FieldViolation("return_order.tenant_id", "must be empty or the caller's tenant")],
                )
            order.tenant_id = tenant
            assert self.validator is not None
            self.validator(order)
            subjects.token(tenant, "tenant")
            decision, steps = self.router.plan(order)
            adjustments = self._check_erp_constraints(order, decision, steps)
            self._check_translation(order, decision, steps)
            # Bad input is still answered as such while NATS is down; the rest fails fast as UNAVAILABLE.
            self.publisher.require_link()
            payload = order.SerializeToString(deterministic=True)
            digest = hashlib.sha256(payload).hexdigest()
            assert self.admissions is not None
            admitted = await self.admissions.admit(order, digest)
        except ReturnBridgeError as exc:
            count_rejection(rejection_rules(exc))
            raise
        count_processing("validated")
        event = enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)
        key = idempotency_key(order)
        kv_key = idempotency_kv_key(order)
        record: dict[str, Any] = {
            "key": key,
            "digest": digest,
            "state": "pending",
            "accepted_at": time.time(),
            "route": base64.b64encode(decision.SerializeToString()).decode(),
            "stream_sequence": 0,
        }
        try:
            revision = await self.idempotency.create(kv_key, dumps(record))
        except KeyWrongLastSequenceError:
            existing, revision = await get_json(self.idempotency, kv_key)
            if existing is None:
                # Deleted (TTL) between our create and read: treat as new on the client's retry.
                raise ConflictError(f"idempotency key {key!r} is being changed concurrently; retry") from None
            if existing["digest"] != digest:
                raise ConflictError(
                    f"idempotency key {key!r} was already used with a different payload"
                ) from None
            if existing["state"] == "accepted":
                return self._response(
                    order, existing, returns_pb2.SUBMIT_OUTCOME_DUPLICATE, request, adjustments=adjustments
                )
            sequence = await self._registered_sequence(order, event, float(existing["accepted_at"]))
            if sequence:
                accepted = dict(existing, state="accepted", stream_sequence=sequence)
                return self._response(
                    order, accepted, returns_pb2.SUBMIT_OUTCOME_DUPLICATE, request, adjustments=adjustments
                )
            # Pending and never registered: an earlier attempt stopped before finishing; complete it now.
            record = existing
            decision.ParseFromString(base64.b64decode(existing["route"]))
        principal = current_principal()
        headers = {
            H_STEPS: encode_steps(steps),
            H_IDEMPOTENCY: key,
            H_RULE: decision.rule,
            H_LANE: decision.lane,
            H_ERP: str(int(decision.erp)),
            H_ACCEPTED_AT: repr(record["accepted_at"]),
            # The audit scribe records the submission under the caller, as if it were written here.
            H_ACTOR: _header_text(principal.name),
            H_AUTH_METHOD: principal.auth_method,
            H_REQUEST_ID: _header_text(request_id()),
        }
        ack = await self.publisher.publish_delivery(
            decision.target, tenant, payload, msg_id=key, headers=headers
        )
        record = dict(record, state="accepted", stream_sequence=ack.seq)
        # The idempotency record stays "pending": the sync state's version entry (same event and accepted_at)
        # is the proof of acceptance, which saves a KV write per submission. The audit entry is written from
        # the stored message by the audit scribe (delivery/submitted_audit.py), not here.
        registered = await self.status.register(
            order,
            decision,
            steps,
            stream_sequence=ack.seq,
            accepted_at=record["accepted_at"],
            known=None if admitted.duplicate else admitted.known,
        )
        if not registered:
            # Another event holds this version in the sync state, so it cannot vouch for this acceptance.
            await self._mark_accepted(kv_key, record, revision)
        return self._response(
            order, record, returns_pb2.SUBMIT_OUTCOME_ACCEPTED, request, decision, adjustments=adjustments
        )

    def _check_erp_constraints(
        self, order: returns_pb2.ReturnOrder, decision: returns_pb2.RouteDecision, steps: list[PlannedStep]
    ) -> list[returns_pb2.FieldAdjustment]:
        """Refuse what the routed ERP would refuse; the truncations its packs apply, for the response.

        Raises:
            ValidationError: one violation per field and ERP field.
        """
        if self.constraints is None:
            return []
        erp = erp_name(int(decision.erp), decision.target)
        now = [s.mapping for s in steps]
        routed = [RoutedConstraints(erp, m, self.constraints(m)) for m in now]
        routed += [
            RoutedConstraints(erp, m, self.constraints(m), presence=False)
            for m in self.router.flow_mappings(decision.target)
            if m not in now
        ]
        result = erp_constraints.check(order, routed)
        if result.violations:
            raise ValidationError(f"{erp} would refuse this return", result.violations)
        return [
            returns_pb2.FieldAdjustment(
                field=a.field,
                erp=a.erp,
                mapping=a.mapping,
                erp_field=a.erp_field,
                original_length=a.original_length,
                written_length=a.written_length,
                description=a.description,
            )
            for a in result.adjustments
        ]

    def _check_translation(
        self, order: returns_pb2.ReturnOrder, decision: returns_pb2.RouteDecision, steps: list[PlannedStep]
    ) -> None:
        """Refuse what the mapping of this event's documents would refuse at delivery.

        Raises:
            ValidationError: one violation per failing mapping, naming the field, the ERP and the rule.
        """
        if self.mappers is None:
            return
        erp = erp_name(int(decision.erp), decision.target)
        violations: list[FieldViolation] = []
        for step in steps:
            failure: TranslationError | None = dry_run(
                self.mappers, step.mapping, order, verify_round_trip=self.verify_round_trip
            )
            if failure is None:
                continue
            field = f"return_order.{failure.path}" if failure.path else "return_order"
            rule = f" (rule {failure.rule})" if failure.rule else ""
            violations.append(
                FieldViolation(field, f"{erp} ({step.mapping}){rule}: {failure}", rule="erp_mapping")
            )
        if violations:
            raise ValidationError(f"{erp} would refuse this return", violations)

    async def _registered_sequence(
        self, order: returns_pb2.ReturnOrder, event: str, accepted_at: float
    ) -> int:
        """The stream sequence of this acceptance when the sync state registered it, else 0."""
        stored = await self.status.get(order.tenant_id, order.return_id)
        if stored is None or not is_acceptance(stored, int(order.version), event, accepted_at):
            return 0
        return int(stored["versions"][str(order.version)]["stream_sequence"])

    async def _mark_accepted(self, kv_key: str, record: dict[str, Any], revision: int) -> None:
        try:
            await self.idempotency.update(kv_key, dumps(record), last=revision)
        except KeyWrongLastSequenceError:
            pass  # a concurrent resubmit of the same payload completed it first; both answers agree

    @staticmethod
    def _response(
        order: returns_pb2.ReturnOrder,
        record: dict[str, Any],
        outcome: int,
        request: returns_pb2.SubmitReturnRequest,
        route: returns_pb2.RouteDecision | None = None,
        *,
        adjustments: Sequence[returns_pb2.FieldAdjustment] = (),
    ) -> returns_pb2.SubmitReturnResponse:
        accepted_at = Timestamp()
        accepted_at.FromNanoseconds(int(float(record["accepted_at"]) * 1e9))
        if route is None:
            route = returns_pb2.RouteDecision.FromString(base64.b64decode(str(record["route"])))
        return returns_pb2.SubmitReturnResponse(
            tenant_id=order.tenant_id,
            return_id=order.return_id,
            version=order.version,
            outcome=outcome,  # type: ignore[arg-type]
            stream_sequence=int(record["stream_sequence"]),
            accepted_at=accepted_at,
            route=route,
            idempotency_key=str(record["key"]),
            client_reference=request.client_reference,
            adjustments=adjustments,
        )
