"""Shared by the chaos tests: the reduced service settings, starting a stack, the clean-run assertions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from load.stack import Stack, StackConfig

# Reduced for the suite: short ERP timeout and ack wait, so a killed worker's messages come back within
# seconds (served defaults: 30 s / 60 s), and the unreachable-ERP alert after 2 s (served: 300 s).
CI_OVERRIDES: dict[str, Any] = {
    "delivery": {"erp_timeout_seconds": 5, "consumer": {"ack_wait_seconds": 10}},
}


def start_stack(workdir: Path, config: StackConfig) -> Stack:
    stack = Stack(workdir, config)
    asyncio.run(stack.start())  # processes only: nothing of this loop outlives the start
    return stack


def assert_clean(result: dict[str, Any]) -> None:
    check = result["check"]
    detail = json.dumps(
        {k: result[k] for k in ("scenario", "client_outcomes", "client_errors_seen", "events", "alerts")}
        | {"check": check},
        indent=1,
    )
    assert check["returns"] == result["calls"], detail
    # The client retries until it has an answer: every return ends ACCEPTED or DUPLICATE.
    assert check["client_ok"] == result["calls"], detail
    assert check["lost"] == 0, detail
    assert check["false_ok"] == 0, detail
    assert check["duplicated"] == 0, detail
    assert check["unknown"] == 0, detail
    assert check["state_drift"] == 0, detail
    assert check["dead_lettered"] == 0, detail
    assert check["posted"] == result["calls"], detail
    assert check["backlog_drained"], detail
    assert check["audit_gaps"] == 0, detail
    assert check["audit_duplicates"] == 0, detail
    assert check["audit_chain_ok"], detail
    # One alert per incident: every alert the fault must raise fired, and none twice.
    assert result["alerts"]["problems"] == [], detail
    assert result["clean"], detail
