"""End-to-end benchmark: SubmitReturn with 1,000 calls in flight, pipeline vs a no-op grpc.aio handler.

Run with ``make bench`` (or ``.venv/bin/pytest benchmarks/test_e2e_bench.py --benchmark-only``); the numbers
land in the benchmark's extra_info. ``E2E_CALLS`` / ``E2E_IN_FLIGHT`` scale it.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import pytest

from e2e_load import LoadResult, run

CALLS = int(os.environ.get("E2E_CALLS", "5000"))
IN_FLIGHT = int(os.environ.get("E2E_IN_FLIGHT", "1000"))


@pytest.mark.benchmark(group="e2e-submit")
def test_submit_throughput_and_confirm_latency(benchmark: Any) -> None:
    results: list[LoadResult] = []

    def once() -> None:
        results[:] = run(CALLS, IN_FLIGHT)

    benchmark.pedantic(once, rounds=1, iterations=1)
    noop, submit, pipeline = results
    for result in results:
        benchmark.extra_info[result.name] = asdict(result)
    benchmark.extra_info["submit_vs_noop"] = round(submit.throughput / noop.throughput, 3)
    benchmark.extra_info["pipeline_vs_noop"] = round(pipeline.throughput / noop.throughput, 3)
    assert noop.errors == submit.errors == pipeline.errors == 0
    # Every accepted return was confirmed by the ERP exactly as submitted.
    assert pipeline.confirmed == CALLS
