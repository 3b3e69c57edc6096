"""Pack rules stay linear in the number of lines (no per-line scan of `$.lines` for one-element arrays)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import samples
import yaml

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry

PACKS = Path(__file__).parents[2] / "python" / "returnbridge" / "mapping" / "packs"

# Mappings whose line rules build one nested object per line (pricing element, lot, reference, flexfield).
PER_LINE_NESTED = ["sap/credit_memo_request", "oracle/receipt", "oracle/return_order"]


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


def _best_seconds(registry: MappingRegistry, mapping_id: str, document: bytes) -> float:
    mapper = registry.get(mapping_id)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        mapper.translate(document)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("mapping_id", PER_LINE_NESTED)
def test_translation_time_grows_linearly_in_lines(registry: MappingRegistry, mapping_id: str) -> None:
    small, large = _order(1_000), _order(8_000)
    # 8x the lines: linear work is ~8x, the old O(n^2) scan was ~64x; 24x leaves room for noise.
    ratio = _best_seconds(registry, mapping_id, large) / _best_seconds(registry, mapping_id, small)
    assert ratio < 24, f"{mapping_id}: 8x lines took {ratio:.1f}x the time"


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
