"""``returnbridge reconcile``: --since forms, the three output formats, and a run against NATS and a simulator."""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from collections.abc import AsyncIterator

import pytest

from delivery.pipeline_harness import Pipeline
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.cli import build_parser
from returnbridge.delivery.reconcile import Drift, ReconcileReport
from returnbridge.errors import ConfigError
from returnbridge.mapping import MappingRegistry
from returnbridge.reconcile_cli import _run, parse_since, render
from sync.test_erp_reconcile import Erps


def test_since_takes_durations_and_iso_dates() -> None:
    assert parse_since("24h", now=100_000.0) == 100_000.0 - 86_400
    assert parse_since("90m", now=10_000.0) == 10_000.0 - 5_400
    assert parse_since("2026-12-01") == 1_796_083_200.0
    assert parse_since("2026-12-01T01:00:00+01:00") == 1_796_083_200.0
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_since("yesterday")


def _report() -> ReconcileReport:
    report = ReconcileReport("acme", 1_796_083_200.0, submissions=3, documents_checked=3)
    report.drifts.append(
        Drift(
            "amount_mismatch",
            "acme",
            "netsuite",
            "R-1",
            3,
            step="credit_memo",
            document_type="creditMemo",
            expected="10.00 USD (refund requested)",
            actual="11.00 USD",
            erp_document_ids=("1003",),
        )
    )
    return report


def test_render_json_csv_and_table() -> None:
    as_json = json.loads(render(_report(), "json"))
    assert as_json["counts"]["amount_mismatch"] == 1 and as_json["drifts"][0]["return_id"] == "R-1"
    rows = list(csv.DictReader(io.StringIO(render(_report(), "csv"))))
    assert [(r["drift"], r["erp_document_ids"], r["actual"]) for r in rows] == [
        ("amount_mismatch", "1003", "11.00 USD")
    ]
    table = render(_report(), "table")
    assert "amount_mismatch" in table and "creditMemo" in table and "amount_mismatch 1" in table
    assert list(csv.DictReader(io.StringIO(render(ReconcileReport("acme", 0.0), "csv")))) == []


def test_cli_parses_reconcile() -> None:
    args = build_parser().parse_args(
        ["reconcile", "--tenant", "acme", "--since", "7d", "--erp", "sap", "--format", "csv", "--repair"]
    )
    assert (args.tenant, args.erp, args.format, args.repair) == ("acme", ["sap"], "csv", True)


@pytest.fixture
async def erps(pipeline: Pipeline) -> AsyncIterator[Erps]:
    erps = Erps(pipeline, MappingRegistry.load())
    await erps.start()
    try:
        yield erps
    finally:
        await erps.stop()


async def test_reconcile_command_against_nats_and_a_simulator(
    erps: Erps, nats_server: EmbeddedNatsServer
) -> None:
    await erps.submit_lifecycles(2)
    await erps.all_delivered(timeout=120)
    lost, _ = erps.find("netsuite", "creditMemo", "RMA-netsuite-1-3")
    erps.documents("netsuite", "creditMemo").pop(lost)
    args = argparse.Namespace(
        tenant="acme",
        since="1h",
        erp=["netsuite"],
        format="json",
        repair=False,
        grace=0.0,
        config=None,
        nats_url=nats_server.url,
        connector=[("netsuite", erps.harnesses["netsuite"].config())],
    )
    report = await _run(args)
    out = json.loads(render(report, "json"))
    assert out["submissions"] == 6  # only the netsuite target was asked for
    assert [(d["drift"], d["return_id"], d["document_type"]) for d in out["drifts"]] == [
        ("missing", "R-netsuite-1", "creditMemo"),
        ("unbalanced", "", ""),
    ]
    assert time.time() - parse_since(args.since) > 3000
