"""The return lifecycle: states, the events allowed from each, and the return's accepted history.

::

    (new) ──AUTHORIZED──▶ authorized ──RECEIVED──▶ received ──INSPECTED──▶ inspected ──DISPOSITIONED──▶ dispositioned
                             │                      │   (DISPOSITIONED also straight from received)           │
                         CANCELLED                  └────────────────┬─────────────────────────────────────────┘
                             ▼                      REFUNDED / EXCHANGED from received, inspected or dispositioned
                         cancelled                                   ▼
                             │                         refunded | credited | exchanged
                             └─────────CLOSED────────▶ closed ◀────────CLOSED─────────┘

REFUNDED leads to *credited* when the return is a credit memo or store credit (or the refund goes to store
credit or a gift card), to *refunded* otherwise. Per-tenant policy (``domain.policy.LifecyclePolicy``) adds
the legitimate exceptions: refund or exchange before receipt for given customer tiers (then a later RECEIVED
is still allowed), and cancel after receipt.

The history is a JSON record kept with the return's sync state and written with compare-and-set, so two
concurrent submissions cannot both pass the same state.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.policy import LifecyclePolicy
from returnbridge.errors import PreconditionError, PreconditionViolation

__all__ = [
    "RULE_TRANSITION",
    "RULE_VERSION",
    "RULE_VERSION_GAP",
    "STATES",
    "TRANSITIONS",
    "Admission",
    "admit",
    "allowed_events",
    "event_name",
    "next_state",
]

RULE_TRANSITION: Final = "lifecycle.transition"
RULE_VERSION: Final = "lifecycle.version"
RULE_VERSION_GAP: Final = "lifecycle.version_gap"

NEW: Final = "NEW"
STATES: Final = (
    "AUTHORIZED",
    "RECEIVED",
    "INSPECTED",
    "DISPOSITIONED",
    "REFUNDED",
    "CREDITED",
    "EXCHANGED",
    "CANCELLED",
    "CLOSED",
)
_SETTLED: Final = frozenset({"REFUNDED", "CREDITED", "EXCHANGED"})
_AFTER_RECEIPT: Final = ("RECEIVED", "INSPECTED", "DISPOSITIONED")

# The strict lifecycle: state -> events allowed from it. REFUNDED resolves to REFUNDED or CREDITED.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    NEW: frozenset({"AUTHORIZED"}),
    "AUTHORIZED": frozenset({"RECEIVED", "CANCELLED"}),
    "RECEIVED": frozenset({"RECEIVED", "INSPECTED", "DISPOSITIONED", "REFUNDED", "EXCHANGED"}),
    "INSPECTED": frozenset({"DISPOSITIONED", "REFUNDED", "EXCHANGED"}),
    "DISPOSITIONED": frozenset({"REFUNDED", "EXCHANGED"}),
    "REFUNDED": frozenset({"CLOSED"}),
    "CREDITED": frozenset({"CLOSED"}),
    "EXCHANGED": frozenset({"CLOSED"}),
    "CANCELLED": frozenset({"CLOSED"}),
    "CLOSED": frozenset(),
}
_CREDIT_TYPES: Final = frozenset({returns_pb2.RETURN_TYPE_CREDIT_MEMO, returns_pb2.RETURN_TYPE_STORE_CREDIT})
_CREDIT_METHODS: Final = frozenset(
    {returns_pb2.REFUND_METHOD_STORE_CREDIT, returns_pb2.REFUND_METHOD_GIFT_CARD}
)


def event_name(order: returns_pb2.ReturnOrder) -> str:
    """``LIFECYCLE_EVENT_RECEIVED`` -> ``"RECEIVED"`` (the validation refuses unknown numbers first)."""
    return returns_pb2.LifecycleEvent.Name(order.event).removeprefix("LIFECYCLE_EVENT_")


def allowed_events(history: dict[str, Any] | None, policy: LifecyclePolicy) -> frozenset[str]:
    """The events the return may take next under ``policy``."""
    state = history["state"] if history else NEW
    allowed = set(TRANSITIONS[state])
    if state == "RECEIVED" and not policy.partial_receipts:
        allowed.discard("RECEIVED")
    tier = history.get("tier", "") if history else ""
    if state == "AUTHORIZED":
        if tier and tier in policy.refund_before_receipt_tiers:
            allowed.add("REFUNDED")
        if tier and tier in policy.exchange_before_receipt_tiers:
            allowed.add("EXCHANGED")
    if state in _AFTER_RECEIPT and policy.cancel_after_receipt:
        allowed.add("CANCELLED")
    if state in _SETTLED and history and history.get("advance") and _outstanding(history):
        allowed.add("RECEIVED")  # the goods of an advance refund or exchange arrive afterwards
    return frozenset(allowed)


def _outstanding(history: dict[str, Any]) -> bool:
    return any(Decimal(line["received"]) < Decimal(line["authorized"]) for line in history["lines"].values())


def next_state(current: str, event: str, order: returns_pb2.ReturnOrder) -> str:
    """The state ``event`` leads to from ``current`` (assumed allowed)."""
    if event == "REFUNDED":
        credit = order.return_type in _CREDIT_TYPES or order.refund.method in _CREDIT_METHODS
        return "CREDITED" if credit else "REFUNDED"
    if event == "RECEIVED" and current in _SETTLED:
        return current
    return event


@dataclass(frozen=True, slots=True)
class Admission:
    """What the history says about one submission: a retry of an accepted version, or a new version."""

    duplicate: bool
    current: str
    target: str


def admit(
    history: dict[str, Any] | None, order: returns_pb2.ReturnOrder, digest: str, policy: LifecyclePolicy
) -> Admission:
    """Check the version and the event against the return's history.

    Raises:
        PreconditionError: the version is not after the latest accepted one (or reuses one with another
            payload), skips a version (the first is 1, then each the latest + 1; the violation names the expected
            one), or the event is not allowed from the return's current state; the violation names both.
    """
    subject = f"returns/{order.return_id}"
    event = event_name(order)
    current = history["state"] if history else NEW
    version = int(order.version)
    if history is not None:
        seen = history["versions"].get(str(version))
        if seen is not None:
            # An empty digest: adopted from before histories were kept, so the idempotency record judges the payload.
            if seen["event"] == event and seen["digest"] in (digest, ""):
                return Admission(True, current, current)
            raise PreconditionError(
                f"version {version} of return {order.return_id!r} was already accepted "
                f"({seen['event']}) with a different payload",
                [
                    PreconditionViolation(
                        "VERSION",
                        subject,
                        f"version {version} already accepted as {seen['event']} with a different payload; "
                        f"send version {int(history['latest_version']) + 1} or later",
                    )
                ],
                rule=RULE_VERSION,
            )
        latest = int(history["latest_version"])
        if version <= latest:
            raise PreconditionError(
                f"version {version} of return {order.return_id!r} is not after the latest accepted version {latest}",
                [
                    PreconditionViolation(
                        "VERSION",
                        subject,
                        f"version {version} <= latest accepted version {latest} ({current})",
                    )
                ],
                rule=RULE_VERSION,
            )
    expected = int(history["latest_version"]) + 1 if history is not None else 1
    if version > expected:
        # Each event is the next version: accepting N+2 first would leave N+1, sent later, refused as stale (its
        # event lost), and judge N+2 against a state N+1 never set. The RMS sends N+1, then N+2 again.
        skipped = f"version {expected}" if version == expected + 1 else f"versions {expected}..{version - 1}"
        raise PreconditionError(
            f"version {version} of return {order.return_id!r} skips {skipped}; expected version {expected}",
            [
                PreconditionViolation(
                    "VERSION",
                    subject,
                    f"expected version {expected} ({current}); version {version} skips {skipped}, "
                    "which was never accepted",
                )
            ],
            rule=RULE_VERSION_GAP,
        )
    allowed = allowed_events(history, policy)
    if event not in allowed:
        listed = ", ".join(sorted(allowed)) or "none (the return is closed)"
        raise PreconditionError(
            f"event {event} is not allowed for return {order.return_id!r} in state {current}",
            [
                PreconditionViolation(
                    "LIFECYCLE",
                    subject,
                    f"current state {current}; event {event} is not allowed; allowed: {listed}",
                )
            ],
            rule=RULE_TRANSITION,
        )
    return Admission(False, current, next_state(current, event, order))
