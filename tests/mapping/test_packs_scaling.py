"""Pack rules stay linear in the number of lines (no per-line scan of `$.lines` for one-element arrays).

The structural check below is the guard; the time it takes at 1,000 vs 8,000 lines is measured in
``benchmarks/test_scaling_bench.py``, never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import samples
import yaml

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry

PACKS = Path(__file__).parents[2] / "python" / "returnbridge" / "mapping" / "packs"


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


def _nested_root_scans(rules: list[dict[str, Any]], depth: int, file: str) -> list[str]:
    found: list[str] = []
    for rule in rules:
        each = rule.get("each")
        if depth > 0 and isinstance(each, str) and each.startswith("$."):
            found.append(f"{file}: {rule['id']} iterates {each} inside a line")
        if rule.get("rules"):
            found += _nested_root_scans(rule["rules"], depth + (1 if each else 0), file)
    return found


def test_no_pack_rescans_the_document_inside_a_line() -> None:
    problems: list[str] = []
    for path in sorted(PACKS.glob("*/*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        problems += _nested_root_scans(spec.get("rules", []), 0, path.name)
    assert problems == []


def _order(lines: int) -> bytes:
    base = samples.build_return(500, erp="sap", serialized_every=0)
    order = returns_pb2.ReturnOrder()
    order.CopyFrom(base)
    del order.lines[:]
    for i in range(lines):
        line = order.lines.add()
        line.CopyFrom(base.lines[i % len(base.lines)])
        line.line_id = f"L{i + 1}"
    return order.SerializeToString(deterministic=True)


def test_each_credit_memo_request_item_carries_its_own_price(registry: MappingRegistry) -> None:
    body = json.loads(registry.get("sap/credit_memo_request").translate(_order(2_000)))
    items = body["to_Item"]
    assert len(items) == 2_000
    base = samples.build_return(500, erp="sap", serialized_every=0)
    for i, item in enumerate(items):
        line = base.lines[i % 500]
        if line.HasField("unit_price"):
            assert item["to_PricingElement"] == [
                {
                    "ConditionType": "PR00",
                    "ConditionRateValue": line.unit_price.amount,
                    "ConditionCurrency": "USD",
                }
            ]
        else:
            assert "to_PricingElement" not in item
