"""deploy/: the alert rules pass promtool (syntax and unit tests), the Grafana dashboard is well formed, and
every metric either names is one the service really exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import returnbridge.observability.metrics  # noqa: F401 - registers the service's metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "returnbridge-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "returnbridge-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "returnbridge-dashboard.json"
# Anything starting with rb_ in a query must be a series the service exports.
_METRIC = re.compile(r"\b(rb_[a-z0-9_]+)\b")
# Series names per metric type in the exposition format.
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: run `make system-deps` (Debian package prometheus)")
        pytest.skip("promtool not installed (make system-deps)")
    return found


def exported_series() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("rb_"):
            names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def metrics_in(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def dashboard_queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_promtool_unit_tests_the_alerts(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == tested
    assert {"ReturnbridgeDeadLettersGrowing", "ReturnbridgeSyncLatencyP99High"} <= alerts
    assert {"ReturnbridgeErpAuthFailures", "ReturnbridgeDeliveryBacklog"} <= alerts


def test_rules_name_only_exported_metrics() -> None:
    exported = exported_series()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            used = metrics_in(rule["expr"])
            assert used, rule["alert"]
            assert used <= exported, f"{rule['alert']}: {sorted(used - exported)} not exported"


def test_dashboard_is_an_importable_grafana_dashboard() -> None:
    data = dashboard()
    assert data["__inputs"][0]["name"] == "DS_PROMETHEUS"
    assert data["uid"] and data["title"] and isinstance(data["schemaVersion"], int)
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["type"] in {"row", "timeseries", "stat"}, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    titles = " ".join(p["title"].lower() for p in data["panels"])
    for needed in ("latency", "accuracy", "backlog", "dead letters", "erp error"):
        assert needed in titles


def test_dashboard_queries_name_only_exported_metrics() -> None:
    exported = exported_series()
    seen: set[str] = set()
    for title, expr in dashboard_queries():
        used = metrics_in(expr)
        assert used, title
        assert used <= exported, f"{title}: {sorted(used - exported)} not exported"
        seen |= used
    # Every KPI family is on the dashboard.
    assert {"rb_sync_latency_seconds_bucket", "rb_processing_total", "rb_queue_depth", "rb_dlq_size"} <= seen
    assert {"rb_erp_calls_total", "rb_api_calls_total"} <= seen


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool parses every expression of a rules file: wrap each panel query as a recording rule.
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$__range", "1h"),
        }
        for i, (_title, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
