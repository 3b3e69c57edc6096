"""The report's numbers and plot from a hand-made run: per-second buckets, percentiles, a real PNG."""

from __future__ import annotations

from pathlib import Path

from load.driver import LoadResult, ProbeSample, Submission
from load.report import pct, plot, rss_summary, timeline
from load.scenarios import first_call_accepted_after, writes_resumed_after


def _run() -> LoadResult:
    subs = []
    for i in range(10):
        sub = Submission(i, f"r-{i}", "sap", started=100.0, ended=100.5 + (i // 5), outcome="ACCEPTED")
        subs.append(sub)
    subs[-1].outcome = "UNAVAILABLE"
    probe = [ProbeSample(100.0 + t / 10, 0.01 * (1 + t % 3), "NOT_FOUND") for t in range(20)]
    return LoadResult(100.0, 102.0, subs, probe)


def test_percentiles_are_nearest_rank() -> None:
    assert pct([], 0.5) is None
    assert pct([3.0, 1.0, 2.0], 0.5) == 2.0
    assert pct([float(n) for n in range(1, 101)], 0.99) == 99.0


def test_timeline_buckets_answers_and_probe_per_second() -> None:
    rows = timeline(_run())
    assert [r["t"] for r in rows] == [0.0, 1.0]
    assert rows[0]["accepted_per_s"] == 5.0 and rows[0]["failed_per_s"] == 0.0
    assert rows[1]["accepted_per_s"] == 4.0 and rows[1]["failed_per_s"] == 1.0
    assert rows[0]["submit_p50_ms"] == 500.0 and rows[1]["submit_p99_ms"] == 1500.0
    assert rows[0]["probe_p99_ms"] == 30.0


def test_rss_summary_takes_first_max_last_and_skips_dead_samples() -> None:
    samples = [{"rss_kb": {"w": 10}}, {"rss_kb": {"w": None}}, {"rss_kb": {"w": 30}}, {"rss_kb": {"w": 20}}]
    assert rss_summary(samples) == {"w": {"first_kb": 10, "max_kb": 30, "last_kb": 20}}


def test_plot_writes_a_png(tmp_path: Path) -> None:
    result = {
        "scenario": "demo",
        "timeline": timeline(_run()),
        "events": [{"t": 0.5, "event": "kill9_worker"}],
    }
    path = plot([result, {**result, "scenario": "demo2"}], tmp_path / "out" / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_writes_resume_when_the_service_admits_again_not_when_a_queued_call_gets_through() -> None:
    killed_at, killed_wall = 50.0, 1_000_050.0

    def answered(
        ended: float, attempt_started: float, accepted_at: float, outcome: str = "ACCEPTED"
    ) -> Submission:
        return Submission(
            0, "r", "sap", ended=ended, outcome=outcome, first_ok_attempt_started=attempt_started,
            accepted_at=accepted_at,
        )  # fmt: skip

    subs = [
        answered(50.2, 49.0, 1_000_049.9),  # admitted and stored before the kill, answered just after it
        answered(57.5, 40.0, 1_000_051.0),  # queued in the client since before the kill, admitted after it
        answered(57.0, 45.0, 1_000_052.0, "DUPLICATE"),  # a retry: no new write
        answered(80.0, 55.0, 1_000_066.0),  # started after the kill, behind every queued call
    ]
    assert writes_resumed_after(subs, killed_at, killed_wall) == 7.5
    assert first_call_accepted_after(subs, killed_at) == 30.0
    assert writes_resumed_after(subs[:1], killed_at, killed_wall) is None
