"""Benchmark fixtures: refuse debug builds, build the documents once, and print the target ratios at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from returnbridge import _mapper

# The canonical sample builders live with the mapping tests; benchmarks reuse them rather than copy them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "mapping"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# (numerator, denominator, target, description): ratio of median times per document.
TARGETS = [
    ("handwritten", "rust", 20.0, ">=", "hand-written Python / Rust translate (target >= 20x)"),
    ("rust", "orjson", 2.0, "<=", "Rust translate / orjson loads+dumps (target <= 2x)"),
    ("reference", "rust", None, "", "Python reference interpreter / Rust translate"),
]


def pytest_configure(config: pytest.Config) -> None:
    if _mapper.build_profile != "release":
        raise pytest.UsageError(
            f"returnbridge._mapper is a {_mapper.build_profile!r} build: timings would be meaningless. "
            "Rebuild the release extension (`make dev`) and run again."
        )


def _medians(config: pytest.Config) -> dict[tuple[str, str], float]:
    session = getattr(config, "_benchmarksession", None)
    medians: dict[tuple[str, str], float] = {}
    for bench in getattr(session, "benchmarks", []) or []:
        stats: Any = getattr(bench, "stats", None)
        kind = bench.extra_info.get("kind")
        if stats is None or not kind:
            continue
        per_document = stats.median / bench.extra_info.get("documents", 1)
        medians[(bench.group or "", kind)] = per_document
    return medians


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    medians = _medians(config)
    if not medians:
        return
    terminalreporter.section("mapper benchmark ratios (median time per document)")
    for group in sorted({g for g, _ in medians}):
        for num, den, target, op, text in TARGETS:
            if (group, num) not in medians or (group, den) not in medians:
                continue
            ratio = medians[(group, num)] / medians[(group, den)]
            verdict = ""
            if target is not None:
                met = ratio >= target if op == ">=" else ratio <= target
                verdict = "  MET" if met else "  MISSED"
            terminalreporter.write_line(f"{group:<24} {text:<62} {ratio:8.2f}{verdict}")
