"""A reduced run of every single-node fault scenario: nothing lost, posted twice, unknown or unaudited.

Each scenario drives real SubmitReturn calls through a gateway process into nats-server and a worker
process delivering to the ERP simulators, injects its fault on the load's progress, waits (bounded) for the
backlog to drain, and the independent checker compares every return with the ERPs and the audit log.
No timing is asserted: throughput and latency are reported by `make chaos`, not judged here.
"""

from __future__ import annotations

import pytest

from load.faults import AlertSink
from load.scenarios import run_scenario, scenarios
from load.stack import Stack

from .support import assert_clean

SINGLE_NODE = [name for name, s in scenarios("ci").items() if not s.cluster]


@pytest.mark.parametrize("name", SINGLE_NODE)
async def test_scenario_loses_nothing(name: str, single_node: Stack, alert_sink: AlertSink) -> None:
    scenario = scenarios("ci")[name]
    result = await run_scenario(
        single_node, scenario, calls=60, in_flight=30, channels=4, idle_seconds=0.5, drain_timeout=90.0,
        alerts=alert_sink,
    )  # fmt: skip
    # Audit gaps included: return.submitted is written from the stored submission (the audit scribe), so a
    # gateway killed or NATS lost after the PubAck leaves no gap (both showed gaps before the scribe).
    assert_clean(result)
    if scenario.fault is not None:
        assert result["events"], "the fault never fired"
    if name in ("erp_errors", "erp_flapping", "slow_erp"):
        injected = result["erp_faults_injected"]
        assert sum(sum(kinds.values()) for kinds in injected.values()) > 0, injected
    # One notification per incident (assert_clean checked the verdict); the expected ones are there.
    for want in (w for w in scenario.expected_alerts if w.incidents):
        fired = [i for i in result["alerts"]["per_incident"] if i.startswith(f"{want.kind}:")]
        assert fired, result["alerts"]
