"""The YAML examples in docs/mapping-language.md are valid: they compile with both engines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from returnbridge.mapping import MappingRegistry, check_spec_text
from returnbridge.mapping.spec import Spec, load_yaml, parse_spec_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "mapping-language.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
HEADER = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"
TABLES = "tables:\n  t: {entries: {A: '1'}}\n"


def test_doc_has_examples() -> None:
    assert len(BLOCKS) >= 9


def _compiles_somewhere(rule_json: str) -> list[str]:
    """Problems of a rule placed at the document root and inside `each: lines`; [] if either compiles."""
    at_root = check_spec_text(HEADER + TABLES + "rules:\n  - " + rule_json + "\n", "doc.yaml")
    in_line = check_spec_text(
        HEADER + TABLES + "rules:\n  - {id: wrap, target: wrap, each: lines, rules: [" + rule_json + "]}\n",
        "doc.yaml",
    )
    return [] if not at_root or not in_line else [str(e) for e in at_root + in_line]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lstrip().startswith("- ")])
def test_rule_examples_compile(block: str) -> None:
    rules, _ = load_yaml(block, "doc.yaml")
    for rule in rules:
        assert _compiles_somewhere(json.dumps(rule, default=str)) == []


def test_full_spec_example_validates() -> None:
    (block,) = [b for b in BLOCKS if b.startswith("mapping:")]
    spec, _ = parse_spec_text(block, "doc.yaml")
    assert isinstance(spec, Spec) and spec.rules[0].id == "header.external_id"


def test_condition_examples_validate() -> None:
    (block,) = [b for b in BLOCKS if b.startswith("{path:")]
    conditions = [
        line.split("  #")[0].strip()
        for line in block.splitlines()
        if line.startswith("{path") or line.startswith("{expr")
    ]
    assert len(conditions) >= 7
    for i, condition in enumerate(conditions):
        assert _compiles_somewhere(f"{{id: c{i}, target: k{i}, value: 1, when: {condition}}}") == []


def test_override_example_applies(tmp_path: Path) -> None:
    """Applied to a stand-in base with the ids the example names, so pack edits cannot break the doc test."""
    (block,) = [b for b in BLOCKS if b.startswith("override:")]
    pack = tmp_path / "doc"
    pack.mkdir()
    (pack / "ra.yaml").write_text(
        HEADER
        + "tables:\n  locations: {entries: {DAL1: '1', RNO2: '2'}}\n"
        + "rules:\n  - {id: header.memo, target: memo, source: notes}\n"
        + "  - {id: header.department, target: department.id, value: 3}\n"
        + "  - {id: lines, target: item.items, each: lines, rules: [{id: lines.sku, target: sku, source: sku}]}\n"
    )
    override = tmp_path / "override.yaml"
    override.write_text(block.replace("override: netsuite/return_authorization", "override: doc/ra"))
    mapper = MappingRegistry.load(overrides=[override], packs_dirs=[tmp_path]).get("doc/ra")
    assert mapper.id == "doc/ra"
