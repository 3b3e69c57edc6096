"""The lifecycle table, the policy exceptions and the version rule, as tables of state x event."""

from __future__ import annotations

from typing import Any

import pytest

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.lifecycle import (
    NEW,
    RULE_VERSION_GAP,
    STATES,
    TRANSITIONS,
    admit,
    allowed_events,
    next_state,
)
from returnbridge.domain.policy import LifecyclePolicy
from returnbridge.errors import PreconditionError

EVENTS = [
    n.removeprefix("LIFECYCLE_EVENT_")
    for n in returns_pb2.LifecycleEvent.keys()
    if not n.endswith("UNSPECIFIED")
]
STRICT = LifecyclePolicy()


def _history(
    state: str, *, tier: str = "standard", advance: bool = False, outstanding: bool = False
) -> dict[str, Any]:
    return {
        "state": state,
        "latest_version": 1,
        "versions": {"1": {"event": "AUTHORIZED", "digest": "d1"}},
        "tier": tier,
        "advance": advance,
        "lines": {"L1": {"authorized": "2", "received": "1" if outstanding else "2"}},
    }


def _order(event: str, version: int = 2, **fields: Any) -> returns_pb2.ReturnOrder:
    return returns_pb2.ReturnOrder(
        return_id="R1",
        version=version,
        event=returns_pb2.LifecycleEvent.Value(f"LIFECYCLE_EVENT_{event}"),
        **fields,
    )


def test_every_state_and_event_is_in_the_table() -> None:
    assert set(TRANSITIONS) == {NEW, *STATES}
    assert all(events <= set(EVENTS) for events in TRANSITIONS.values())


@pytest.mark.parametrize("state", [NEW, *STATES])
@pytest.mark.parametrize("event", EVENTS)
def test_strict_table(state: str, event: str) -> None:
    history = None if state == NEW else _history(state)
    allowed = event in TRANSITIONS[state] and not (state == "RECEIVED" and event == "RECEIVED")
    order = _order(event, version=1 if state == NEW else 2)
    if allowed:
        assert admit(history, order, "d2", STRICT).target == next_state(state, event, order)
    else:
        with pytest.raises(PreconditionError) as caught:
            admit(history, order, "d2", STRICT)
        (violation,) = caught.value.violations
        assert violation.type == "LIFECYCLE" and violation.subject == "returns/R1"
        assert f"current state {state}" in violation.description and f"event {event}" in violation.description


def test_refund_leads_to_credited_for_credit_types() -> None:
    assert next_state("RECEIVED", "REFUNDED", _order("REFUNDED")) == "REFUNDED"
    credit = _order("REFUNDED", return_type=returns_pb2.RETURN_TYPE_STORE_CREDIT)
    assert next_state("RECEIVED", "REFUNDED", credit) == "CREDITED"
    gift = _order("REFUNDED", refund=returns_pb2.RefundDetails(method=returns_pb2.REFUND_METHOD_GIFT_CARD))
    assert next_state("INSPECTED", "REFUNDED", gift) == "CREDITED"


def test_policy_exceptions_by_authorized_tier() -> None:
    policy = LifecyclePolicy(
        refund_before_receipt_tiers=frozenset({"gold"}),
        exchange_before_receipt_tiers=frozenset({"enterprise"}),
        cancel_after_receipt=True,
        partial_receipts=True,
    )
    assert "REFUNDED" in allowed_events(_history("AUTHORIZED", tier="gold"), policy)
    assert "REFUNDED" not in allowed_events(_history("AUTHORIZED", tier="standard"), policy)
    assert "EXCHANGED" in allowed_events(_history("AUTHORIZED", tier="enterprise"), policy)
    assert "CANCELLED" in allowed_events(_history("INSPECTED"), policy)
    assert "RECEIVED" in allowed_events(_history("RECEIVED"), policy)
    # After an advance refund the goods may still arrive, once every unit is in they may not.
    assert "RECEIVED" in allowed_events(_history("REFUNDED", advance=True, outstanding=True), policy)
    assert "RECEIVED" not in allowed_events(_history("REFUNDED", advance=True), policy)
    assert "RECEIVED" not in allowed_events(_history("REFUNDED", outstanding=True), policy)


@pytest.mark.parametrize(
    ("version", "event", "digest", "outcome"),
    [
        (1, "AUTHORIZED", "d1", "duplicate"),
        (1, "AUTHORIZED", "other", "reused"),
        (1, "RECEIVED", "d1", "reused"),
        (2, "RECEIVED", "d2", "admitted"),
        (3, "RECEIVED", "d2", "gap"),
        (5, "RECEIVED", "d2", "gap"),
    ],
)
def test_versions(version: int, event: str, digest: str, outcome: str) -> None:
    history = _history("AUTHORIZED")
    order = _order(event, version)
    if outcome == "reused":
        with pytest.raises(PreconditionError, match="already accepted") as caught:
            admit(history, order, digest, STRICT)
        assert caught.value.violations[0].type == "VERSION"
        return
    if outcome == "gap":  # version 2 was never accepted: the next one is 2, whatever comes after
        with pytest.raises(PreconditionError, match="expected version 2") as caught:
            admit(history, order, digest, STRICT)
        assert caught.value.rule == RULE_VERSION_GAP
        [violation] = caught.value.violations
        assert violation.type == "VERSION" and violation.subject == "returns/R1"
        assert violation.description.startswith("expected version 2 (AUTHORIZED)")
        return
    decision = admit(history, order, digest, STRICT)
    assert decision.duplicate is (outcome == "duplicate")


def test_a_return_starts_at_version_1() -> None:
    with pytest.raises(PreconditionError, match="expected version 1") as caught:
        admit(None, _order("AUTHORIZED", 2), "d", STRICT)
    assert caught.value.rule == RULE_VERSION_GAP
    assert admit(None, _order("AUTHORIZED", 1), "d", STRICT).target == "AUTHORIZED"


def test_lower_version_never_seen_is_refused() -> None:
    history = _history("RECEIVED")
    history["latest_version"] = 3
    with pytest.raises(PreconditionError, match="not after the latest accepted version 3"):
        admit(history, _order("INSPECTED", 2), "d", STRICT)
