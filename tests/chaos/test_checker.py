"""The checker's verdicts on hand-made cases: each category it must catch, and a clean return."""

from __future__ import annotations

from typing import Any

from load.checker import CheckReport, ExpectedAlert, alert_verdict, classify, record_state
from load.driver import Submission

PREFIX = "tst000"


def _sub(index: int, outcome: str = "ACCEPTED", errors: list[str] | None = None) -> Submission:
    return Submission(index, f"{PREFIX}-{index}", "sap", outcome=outcome, errors=errors or [])


def _record(index: int, state: str) -> dict[str, Any]:
    return {
        "return_id": f"{PREFIX}-{index}",
        "versions": {"1": {"state": "ACCEPTED", "steps": ["customer_return"]}},
        "documents": {"1:customer_return": {"version": 1, "step": "customer_return", "state": state}},
    }


def _ref(index: int) -> str:
    return f"{PREFIX}{index:06d}-1"


def _classify(
    subs: list[Submission], records: dict[int, dict[str, Any]], docs: dict[int, int]
) -> CheckReport:
    report = CheckReport(returns=len(subs))
    by_ref = {_ref(i): [f"doc-{i}-{n}" for n in range(count)] for i, count in docs.items()}
    classify(report, subs, {f"{PREFIX}-{i}": r for i, r in records.items()}, by_ref, PREFIX)
    return report


def test_a_delivered_return_posted_once_is_clean() -> None:
    report = _classify([_sub(1)], {1: _record(1, "DELIVERED")}, {1: 1})
    assert (report.lost, report.duplicated, report.unknown, report.false_ok, report.state_drift) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert report.posted == 1 and report.client_ok == 1


def test_accepted_but_never_posted_is_lost() -> None:
    report = _classify([_sub(1)], {1: _record(1, "RETRYING")}, {})
    assert report.lost == 1 and report.not_terminal == 1
    assert "tst000-1" in report.examples["lost"][0]


def test_two_documents_for_one_reference_are_a_duplicate() -> None:
    report = _classify([_sub(1)], {1: _record(1, "DELIVERED")}, {1: 2})
    assert report.duplicated == 1 and report.lost == 0


def test_an_error_answer_for_a_posted_return_is_an_unknown_outcome() -> None:
    report = _classify([_sub(1, "UNAVAILABLE", ["UNAVAILABLE"])], {1: _record(1, "DELIVERED")}, {1: 1})
    assert report.unknown == 1 and report.client_error == 1


def test_ok_without_any_record_is_a_false_ok_and_lost() -> None:
    report = _classify([_sub(1)], {}, {})
    assert report.false_ok == 1 and report.lost == 1


def test_dead_lettered_is_accounted_for_not_lost() -> None:
    report = _classify([_sub(1)], {1: _record(1, "DEAD_LETTERED")}, {})
    assert report.dead_lettered == 1 and report.lost == 0
    # ... yet not clean: every fault of the tool is transient and every return valid, so it waits for a replay.
    report.backlog_drained = report.audit_chain_ok = True
    assert not report.clean
    report.dead_lettered = 0
    assert report.clean  # the dead letter alone made it unclean


def test_posted_while_the_state_says_otherwise_is_drift() -> None:
    report = _classify([_sub(1)], {1: _record(1, "DEAD_LETTERED")}, {1: 1})
    assert report.state_drift == 1


def test_a_retry_answered_duplicate_counts_as_resolved() -> None:
    report = _classify([_sub(1, "DUPLICATE", ["UNAVAILABLE"])], {1: _record(1, "DELIVERED")}, {1: 1})
    assert report.resolved_by_retry == 1 and report.unknown == 0


def test_record_state_of_a_return_without_documents() -> None:
    assert record_state(None) == ""
    assert record_state({"versions": {"1": {"state": "WAITING"}}, "documents": {}}) == "WAITING"


def test_a_record_without_the_version_is_not_an_acceptance() -> None:
    # What admission leaves behind for a call that timed out before its publish: the client knows it failed.
    stub = {"return_id": f"{PREFIX}-1", "versions": {}, "documents": {}}
    report = _classify([_sub(1, "DEADLINE_EXCEEDED", ["DEADLINE_EXCEEDED"])], {1: stub}, {})
    assert (report.lost, report.unknown, report.registered, report.client_error) == (0, 0, 0, 1)


def _alert(kind: str, key: str, status: str = "firing") -> dict[str, Any]:
    return {"kind": kind, "key": key, "status": status}


def test_one_notification_and_its_resolution_per_incident_is_clean() -> None:
    verdict = alert_verdict(
        [_alert("erp_unreachable", "sap"), _alert("erp_unreachable", "sap", "resolved")],
        (ExpectedAlert("erp_unreachable", "sap"),),
    )
    assert verdict["problems"] == [] and verdict["per_incident"] == {"erp_unreachable:sap": 1}


def test_an_expected_alert_that_never_fired_is_a_problem() -> None:
    verdict = alert_verdict([_alert("backlog", "RB_DELIVER/x")], (ExpectedAlert("stream_leader_elected"),))
    assert verdict["problems"] == ["no stream_leader_elected alert"]
    assert verdict["unexpected"] == ["backlog:RB_DELIVER/x"]


def test_two_notifications_of_one_incident_are_a_duplicate() -> None:
    alerts = [_alert("erp_unreachable", "sap"), _alert("erp_unreachable", "sap")]
    verdict = alert_verdict(alerts, (ExpectedAlert("erp_unreachable", "sap"),))
    assert verdict["problems"] == ["2 notifications for incident erp_unreachable:sap (at most 1)"]
    # Not expected at all: still at most one per incident (the de-duplication across processes).
    assert alert_verdict(alerts, ())["problems"] == verdict["problems"]


def test_a_fault_with_two_incidents_may_notify_twice_but_not_three_times() -> None:
    want = (ExpectedAlert("nats_disconnected", "nats", incidents=2),)
    assert alert_verdict([_alert("nats_disconnected", "nats")] * 2, want)["problems"] == []
    assert alert_verdict([_alert("nats_disconnected", "nats")] * 3, want)["problems"] == [
        "3 notifications for incident nats_disconnected:nats (at most 2)"
    ]


def test_one_fault_paging_once_per_stream_is_a_problem() -> None:
    want = (ExpectedAlert("stream_leader_elected"),)
    per_stream = [_alert("stream_leader_elected", s) for s in ("RB_DELIVER", "RB_AUDIT", "KV_rb_sync")]
    assert alert_verdict(per_stream, want)["problems"] == [
        "3 notifications for stream_leader_elected across 3 keys (KV_rb_sync, RB_AUDIT, RB_DELIVER; at most 1)"
    ]
    assert alert_verdict([_alert("stream_leader_elected", "rb-chaos")], want)["problems"] == []


def test_more_resolutions_than_firings_are_a_problem() -> None:
    resolved = _alert("stream_leader_elected", "RB_DELIVER", "resolved")
    verdict = alert_verdict([_alert("stream_leader_elected", "RB_DELIVER"), resolved, resolved], ())
    assert verdict["problems"] == ["2 resolutions of stream_leader_elected:RB_DELIVER after 1 firing"]
    # One alone may close an incident that fired before the window.
    assert alert_verdict([resolved], ())["problems"] == []


def test_a_version_only_reserved_is_an_acceptance_that_must_be_posted() -> None:
    # The admission reserved the version, the call failed before its publish and nothing published it since:
    # GetReturnStatus says ACCEPTED, so a reservation never posted is lost (the reservation sweeper exists so it
    # is not).
    reserved = {"1": {"state": "ACCEPTED", "steps": ["doc"], "stream_sequence": 0}}
    stub = {"return_id": f"{PREFIX}-1", "versions": reserved, "documents": {}}
    report = _classify([_sub(1, "DEADLINE_EXCEEDED", ["DEADLINE_EXCEEDED"])], {1: stub}, {})
    assert (report.lost, report.unknown, report.registered, report.client_error) == (1, 1, 1, 1)
    named = {"1": dict(reserved["1"], stream_sequence=7)}
    stub = {"return_id": f"{PREFIX}-1", "versions": named, "documents": {}}
    report = _classify([_sub(1, "DEADLINE_EXCEEDED", ["DEADLINE_EXCEEDED"])], {1: stub}, {})
    assert (report.registered, report.unknown) == (1, 1)
    # A record with no version 1 at all is a call refused before its admission: not accepted.
    report = _classify([_sub(1, "INVALID_ARGUMENT", ["INVALID_ARGUMENT"])], {1: dict(stub, versions={})}, {})
    assert (report.registered, report.lost, report.unknown) == (0, 0, 0)


def test_an_alert_the_fault_must_not_raise_is_a_problem_and_its_absence_is_not() -> None:
    want = (ExpectedAlert("stream_leader_elected"), ExpectedAlert("nats_disconnected", incidents=0))
    assert alert_verdict([_alert("stream_leader_elected", "rb-chaos")], want)["problems"] == []
    paged_twice = [_alert("stream_leader_elected", "rb-chaos"), _alert("nats_disconnected", "nats")]
    assert alert_verdict(paged_twice, want)["problems"] == [
        "1 notifications for incident nats_disconnected:nats (at most 0)"
    ]
