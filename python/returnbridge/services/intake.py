"""The submit path: validate, route, admit and reserve (one KV write), publish with Nats-Msg-Id, answer.

Two round trips in a row for a new version: the admission's compare-and-set on the return's sync record
(lifecycle, payload digest, the version and its documents reserved with stream sequence 0) and the publish. The
answer follows the PubAck; naming the stored message in the sync record (``SyncStateStore.confirm``) is not
awaited. A retry with the same key is judged by the record: a named message answers DUPLICATE with its
sequence; a reserved one is republished (deduplicated by ``Nats-Msg-Id`` within the window) and named.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.api import PubAck
from nats.js.kv import KeyValue

from returnbridge.api.v1 import returns_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import JsonRecord, get_json, modify_json
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
from returnbridge.services.admission import Admissions, Admitted
from returnbridge.sync.status import SyncStateStore, VersionEntry

log = logging.getLogger(__name__)


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
        idempotency: the ``rb_idempotency`` bucket of earlier releases (read only, to complete a version
            admitted before admissions reserved versions); None when there is none.
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
    idempotency: KeyValue | None
    status: SyncStateStore
    validator: Validator | None = None
    admissions: Admissions | None = None
    constraints: Callable[[str], Sequence[FieldConstraint]] | None = None
    mappers: MapperSource | None = None
    verify_round_trip: bool = True
    _pending: set[asyncio.Task[object]] = field(default_factory=set, init=False, repr=False)
    _routed: dict[tuple[int, str, tuple[str, ...]], list[RoutedConstraints]] = field(
        default_factory=dict, init=False, repr=False
    )

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
            # The bytes published are the bytes the dry run translates (the order is complete from here on).
            payload = order.SerializeToString(deterministic=True)
            self._check_translation(order, decision, steps, payload)
            # Bad input is still answered as such while NATS is down; the rest fails fast as UNAVAILABLE.
            self.publisher.require_link()
            digest = hashlib.sha256(payload).hexdigest()
            accepted_at = time.time()
            headers = self._headers(order, decision, steps, accepted_at)
            # Reserved with its message: if this process stops before the publish, the reservation is still
            # published (delivery/orphans.py), so an admitted version is never left ACCEPTED and undelivered.
            entry = VersionEntry(order, decision, steps, accepted_at, message=(headers, payload))
            assert self.admissions is not None
            admitted = await self.admissions.admit(order, digest, entry)
        except ReturnBridgeError as exc:
            count_rejection(rejection_rules(exc))
            raise
        count_processing("validated")
        if admitted.duplicate:
            return await self._resubmitted(request, payload, digest, decision, steps, admitted, adjustments)
        # One round trip wrote lifecycle, idempotency and the version (reserved); the publish is the second.
        ack, _ = await asyncio.gather(
            self._publish(order, decision, payload, headers),
            self.status.index_first_version(order),
        )
        stored, _ = admitted.known
        assert stored is not None
        # Naming the message in the sync record is not awaited: until it lands, a retry republishes within
        # the duplicate window (deduplicated) and a worker names the message itself before delivering it.
        self._later(
            self.status.confirm(
                order.tenant_id, order.return_id, int(order.version), ack.seq, known=admitted.known
            )
        )
        await self.status.announce_accepted(stored, int(order.version))
        return self._response(
            order,
            ack.seq,
            entry.accepted_at,
            returns_pb2.SUBMIT_OUTCOME_ACCEPTED,
            request,
            decision,
            adjustments=adjustments,
        )

    async def _resubmitted(
        self,
        request: returns_pb2.SubmitReturnRequest,
        payload: bytes,
        digest: str,
        decision: returns_pb2.RouteDecision,
        steps: list[PlannedStep],
        admitted: Admitted,
        adjustments: Sequence[returns_pb2.FieldAdjustment],
    ) -> returns_pb2.SubmitReturnResponse:
        """The same version, event and payload again: answer the stored acceptance, or complete it."""
        order = request.return_order
        version = int(order.version)
        record, _ = admitted.known
        entry = (record or {}).get("versions", {}).get(str(version))
        judged = ((record or {}).get("lifecycle") or {}).get("versions", {}).get(str(version), {})
        if entry is not None and not judged.get("digest") and self.idempotency is not None:
            # Adopted from before histories kept digests: that time's idempotency record judges the payload.
            existing, _ = await get_json(self.idempotency, idempotency_kv_key(order))
            if existing is not None and existing["digest"] != digest:
                raise ConflictError(
                    f"idempotency key {idempotency_key(order)!r} was already used with a different payload"
                )
        if entry is None:
            entry = await self._reserve_legacy(order, digest, decision, steps)
            if entry is None:
                raise ConflictError(
                    f"idempotency key {idempotency_key(order)!r} was already used with a different payload"
                )
        route = (
            returns_pb2.RouteDecision.FromString(base64.b64decode(entry["route"]))
            if "route" in entry
            else decision
        )
        accepted_at = float(entry["accepted_at"])
        if entry["stream_sequence"]:
            return self._response(
                order,
                int(entry["stream_sequence"]),
                accepted_at,
                returns_pb2.SUBMIT_OUTCOME_DUPLICATE,
                request,
                route,
                adjustments=adjustments,
            )
        # Reserved, the message not named yet: an earlier attempt stopped before or just after its publish. The
        # republish is deduplicated by Nats-Msg-Id within the window; past it, the named message is the one delivered.
        ack, _ = await asyncio.gather(
            self._publish(order, route, payload, self._headers(order, route, steps, accepted_at)),
            self.status.index_first_version(order),
        )
        stored, _, named = await self.status.confirm(order.tenant_id, order.return_id, version, ack.seq)
        fresh = named == ack.seq and not ack.duplicate
        if fresh and stored is not None:
            await self.status.announce_accepted(stored, version)
        outcome = returns_pb2.SUBMIT_OUTCOME_ACCEPTED if fresh else returns_pb2.SUBMIT_OUTCOME_DUPLICATE
        return self._response(
            order, named or ack.seq, accepted_at, outcome, request, route, adjustments=adjustments
        )

    async def _reserve_legacy(
        self,
        order: returns_pb2.ReturnOrder,
        digest: str,
        decision: returns_pb2.RouteDecision,
        steps: list[PlannedStep],
    ) -> dict[str, Any] | None:
        """A version admitted before admissions reserved it: reserve it now (None: the payload differs).

        An ``rb_idempotency`` record of that time, when given and still there, judges the payload and keeps the
        first attempt's ``accepted_at`` and route.
        """
        accepted_at, route, sequence = time.time(), decision, 0
        if self.idempotency is not None:
            existing, _ = await get_json(self.idempotency, idempotency_kv_key(order))
            if existing is not None:
                if existing["digest"] != digest:
                    return None
                accepted_at = float(existing["accepted_at"])
                route = returns_pb2.RouteDecision.FromString(base64.b64decode(existing["route"]))
                sequence = int(existing.get("stream_sequence") or 0) if existing["state"] == "accepted" else 0
        entry = VersionEntry(order, route, steps, accepted_at)
        version = str(order.version)

        def change(record: JsonRecord | None) -> JsonRecord | None:
            if record is None or version in record["versions"]:
                return None
            entry.add(record, stream_sequence=sequence)
            return record

        stored = await modify_json(
            self.status.kv, subjects.sync_state_key(order.tenant_id, order.return_id), change
        )
        assert stored is not None
        return dict(stored["versions"][version])

    @staticmethod
    def _headers(
        order: returns_pb2.ReturnOrder,
        decision: returns_pb2.RouteDecision,
        steps: list[PlannedStep],
        accepted_at: float,
    ) -> dict[str, str]:
        """The delivery message's headers (the caller from the call's context)."""
        principal = current_principal()
        return {
            H_STEPS: encode_steps(steps),
            H_IDEMPOTENCY: idempotency_key(order),
            H_RULE: decision.rule,
            H_LANE: decision.lane,
            H_ERP: str(int(decision.erp)),
            H_ACCEPTED_AT: repr(accepted_at),
            # The audit scribe records the submission under the caller, as if it were written here.
            H_ACTOR: _header_text(principal.name),
            H_AUTH_METHOD: principal.auth_method,
            H_REQUEST_ID: _header_text(request_id()),
        }

    async def _publish(
        self,
        order: returns_pb2.ReturnOrder,
        decision: returns_pb2.RouteDecision,
        payload: bytes,
        headers: dict[str, str],
    ) -> PubAck:
        return await self.publisher.publish_delivery(
            decision.target, order.tenant_id, payload, msg_id=headers[H_IDEMPOTENCY], headers=headers
        )

    def _later(self, write: Coroutine[Any, Any, object]) -> None:
        """Run a write the answer does not wait for; a failure is logged (a worker names the message then)."""
        task = asyncio.get_running_loop().create_task(write)
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("stream sequence not recorded after the PubAck (a worker records it): %r", exc)

    async def drain(self) -> None:
        """Wait for the writes the answers did not wait for (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _check_erp_constraints(
        self, order: returns_pb2.ReturnOrder, decision: returns_pb2.RouteDecision, steps: list[PlannedStep]
    ) -> list[returns_pb2.FieldAdjustment]:
        """Refuse what the routed ERP would refuse; the truncations its packs apply, for the response.

        Raises:
            ValidationError: one violation per field and ERP field.
        """
        if self.constraints is None:
            return []
        now = tuple(s.mapping for s in steps)
        # Only configuration decides which constraints apply: built once per route and event's mappings.
        cache_key = (int(decision.erp), decision.target, now)
        routed = self._routed.get(cache_key)
        if routed is None:
            erp = erp_name(int(decision.erp), decision.target)
            routed = [RoutedConstraints(erp, m, self.constraints(m)) for m in now]
            routed += [
                RoutedConstraints(erp, m, self.constraints(m), presence=False)
                for m in self.router.flow_mappings(decision.target)
                if m not in now
            ]
            self._routed[cache_key] = routed
        result = erp_constraints.check(order, routed)
        if result.violations:
            erp = erp_name(int(decision.erp), decision.target)
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
        self,
        order: returns_pb2.ReturnOrder,
        decision: returns_pb2.RouteDecision,
        steps: list[PlannedStep],
        payload: bytes,
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
                self.mappers, step.mapping, order, verify_round_trip=self.verify_round_trip, payload=payload
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

    @staticmethod
    def _response(
        order: returns_pb2.ReturnOrder,
        stream_sequence: int,
        accepted_at: float,
        outcome: int,
        request: returns_pb2.SubmitReturnRequest,
        route: returns_pb2.RouteDecision,
        *,
        adjustments: Sequence[returns_pb2.FieldAdjustment] = (),
    ) -> returns_pb2.SubmitReturnResponse:
        stamp = Timestamp()
        stamp.FromNanoseconds(int(accepted_at * 1e9))
        return returns_pb2.SubmitReturnResponse(
            tenant_id=order.tenant_id,
            return_id=order.return_id,
            version=order.version,
            outcome=outcome,  # type: ignore[arg-type]
            stream_sequence=stream_sequence,
            accepted_at=stamp,
            route=route,
            idempotency_key=idempotency_key(order),
            client_reference=request.client_reference,
            adjustments=adjustments,
        )
