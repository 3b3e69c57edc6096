"""Spec loading: YAML 1.2 scalars, line numbers and rule ids in errors, override layering, check_spec_text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from returnbridge.errors import SpecError
from returnbridge.mapping import MappingRegistry, check_spec_text
from returnbridge.mapping.spec import load_yaml, parse_spec_text

HEADER = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"


def test_yaml_scalars_are_yaml_1_2_and_exact() -> None:
    data, lines = load_yaml("a: 1.50\nb: NO\nc: yes\nd: '7'\ne: 7\nf: true\ng: ~\nNO: 1\n", "x.yaml")
    assert data == {
        "a": Decimal("1.50"),
        "b": "NO",
        "c": "yes",
        "d": "7",
        "e": 7,
        "f": True,
        "g": None,
        "NO": 1,
    }
    assert str(data["a"]) == "1.50"
    assert lines[("e",)] == 5


@pytest.mark.parametrize(
    ("body", "line", "rule", "fragment"),
    [
        ("rules:\n  - {id: a, target: x}\n", 5, "a", "needs one of source"),
        (
            "rules:\n  - {id: a, target: x, source: rma_number}\n  - id: b\n    target: y\n    source: rma_number\n    pipe: [bogus]\n",
            9,
            "b",
            "unknown pipe step 'bogus'",
        ),
        ("rules:\n  - {id: a, target: x, source: rma_number, extra: 1}\n", 5, "a", "Extra inputs"),
        ("rules:\n  - {id: a, target: x, source: 'lines..sku'}\n", 5, "a", "bad segment"),
        ("rules:\n  - {id: a, target: x, expr: {div: [1, 2]}}\n", 5, "a", "div needs an explicit scale"),
        (
            "rules:\n  - {id: a, target: x, source: rma_number, when: {path: x, eq: 1, ne: 2}}\n",
            5,
            "a",
            "exactly one of",
        ),
        (
            "rules:\n  - {id: a, target: x, source: rma_number, pipe: [{match: {pattern: '(?<=a)b'}}]}\n",
            5,
            "a",
            "look-around",
        ),
        ("rules:\n  - {id: a, target: x, value: 1.5e400}\n", 5, "a", "decimal out of range"),
        ("rules: [\n", 5, "", "invalid YAML"),
    ],
)
def test_validation_errors_name_line_and_rule(body: str, line: int, rule: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec_text(HEADER + body, "spec.yaml")
    err = caught.value
    assert (err.file, err.line, err.rule) == ("spec.yaml", line, rule), str(err)
    assert fragment in str(err)


@pytest.mark.parametrize(
    ("rules", "line", "rule", "fragment"),
    [
        (
            "  - {id: a, target: x, source: rma_numbr}\n",
            5,
            "a",
            'returnbridge.api.v1.ReturnOrder has no field "rma_numbr"',
        ),
        (
            "  - {id: a, target: x, source: rma_number}\n  - {id: b, target: x, source: notes}\n",
            6,
            "b",
            "written by another rule",
        ),
        ("  - {id: a, target: x, source: lines.sku}\n", 5, "a", "read from a list"),
        (
            "  - {id: a, target: x, source: rma_number, pipe: [{lookup: nope}]}\n",
            5,
            "a",
            'unknown table "nope"',
        ),
        ("  - {id: a, target: x, source: '@index'}\n", 5, "a", "only exist inside `each`"),
        (
            "  - {id: a, target: x, source: rma_number, pipe: [{extract: {pattern: 'a(b)', group: 2}}]}\n",
            5,
            "a",
            "group 2 does not exist",
        ),
    ],
)
def test_compile_errors_name_line_and_rule(rules: str, line: int, rule: str, fragment: str) -> None:
    (err,) = check_spec_text(HEADER + "rules:\n" + rules, "spec.yaml")
    assert (err.file, err.line, err.rule) == ("spec.yaml", line, rule), str(err)
    assert fragment in str(err)


def test_inbound_target_checked_against_output_message() -> None:
    text = "direction: inbound\ninput: json\noutput: returnbridge.api.v1.InventoryLevel\nrules:\n"
    (err,) = check_spec_text(text + "  - {id: a, target: location.plant, source: x}\n", "in.yaml")
    assert (err.line, err.rule) == (5, "a") and 'WarehouseLocation has no field "plant"' in str(err)
    (err,) = check_spec_text(text + "  - {id: a, target: location, source: x}\n", "in.yaml")
    assert "is a message: map its fields" in str(err)
    assert check_spec_text(text + "  - {id: a, target: location.site, source: x}\n", "in.yaml") == []


def test_direction_shape_is_checked() -> None:
    (err,) = check_spec_text(
        "direction: inbound\ninput: json\noutput: json\nrules: [{id: a, target: b, value: 1}]\n", "x.yaml"
    )
    assert "inbound spec" in str(err)


def _pack(tmp_path: Path) -> Path:
    pack = tmp_path / "packs" / "acme"
    (pack / "tables").mkdir(parents=True)
    (pack / "tables" / "reasons.yaml").write_text("entries: {DAMAGED: '1', WRONG: '2'}\nfallback: '9'\n")
    (pack / "ra.yaml").write_text(
        HEADER
        + "tables:\n  reasons: {file: tables/reasons.yaml}\n"
        + "rules:\n"
        + "  - {id: h.ref, target: ref, source: rma_number}\n"
        + "  - {id: h.reason, target: reason, source: reason_code, pipe: [{lookup: reasons}]}\n"
        + "  - {id: h.memo, target: memo, value: shipped}\n"
        + "  - id: lines\n    target: items\n    each: lines\n    rules:\n"
        + "      - {id: lines.sku, target: sku, source: sku}\n"
    )
    return tmp_path / "packs"


def test_override_layers_rules_and_tables(tmp_path: Path, make_order: object) -> None:
    packs = _pack(tmp_path)
    override = tmp_path / "tenant.yaml"
    override.write_text(
        "override: acme/ra\n"
        "tables:\n  reasons: {entries: {DAMAGED: '7'}, remove: [WRONG]}\n"
        "rules:\n"
        "  replace:\n    - {id: h.ref, target: ref, template: 'T-{rma_number}'}\n"
        "  remove: [h.memo]\n"
        "  add:\n    - {id: h.channel, target: channel, value: web}\n"
        "  add_under:\n    lines: [{id: lines.qty, target: qty, source: quantity}]\n"
    )
    base = MappingRegistry.load(packs_dirs=[packs]).get("acme/ra")
    layered = MappingRegistry.load(overrides=[override], packs_dirs=[packs]).get("acme/ra")
    doc = make_order(lines=1).SerializeToString()  # type: ignore[operator]
    assert (
        base.translate(doc)
        == b'{"ref":"RMA-1001","reason":"1","memo":"shipped","items":[{"sku":"SKU-1001"}]}'
    )
    assert (
        layered.translate(doc)
        == b'{"ref":"T-RMA-1001","reason":"7","items":[{"sku":"SKU-1001","qty":"1"}],"channel":"web"}'
    )


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("rules:\n  replace:\n    - {id: nope, target: x, value: 1}\n", 4, "replace: no rule 'nope'"),
        ("rules:\n  remove: [h.ref, nope]\n", 3, "remove: no rule 'nope'"),
        ("rules:\n  add:\n    - {id: h.ref, target: other, value: 1}\n", 4, "duplicate rule id 'h.ref'"),
        ("tables:\n  reasons: {remove: [NOPE]}\n", 3, "cannot remove missing key 'NOPE'"),
        ("rules:\n  add_under:\n    h.ref: [{id: z, target: z, value: 1}]\n", 4, "not an `each` rule"),
    ],
)
def test_override_errors_point_at_the_override(tmp_path: Path, body: str, line: int, fragment: str) -> None:
    packs = _pack(tmp_path)
    override = tmp_path / "tenant.yaml"
    override.write_text("override: acme/ra\n" + body)
    with pytest.raises(SpecError) as caught:
        MappingRegistry.load(overrides=[override], packs_dirs=[packs])
    assert caught.value.file == str(override)
    assert caught.value.line == line, str(caught.value)
    assert fragment in str(caught.value)


def test_override_compile_error_names_override_line(tmp_path: Path) -> None:
    packs = _pack(tmp_path)
    override = tmp_path / "tenant.yaml"
    override.write_text(
        "override: acme/ra\nrules:\n  add:\n    - {id: z, target: z, source: no_such_field}\n"
    )
    with pytest.raises(SpecError) as caught:
        MappingRegistry.load(overrides=[override], packs_dirs=[packs])
    assert (caught.value.file, caught.value.line, caught.value.rule) == (str(override), 4, "z")


def test_check_spec_text_validates_overrides_against_shipped_pack() -> None:
    ok = "override: netsuite/return_authorization\nrules:\n  add:\n    - {id: x.c, target: custbody_x, value: 1}\n"
    assert check_spec_text(ok, "o.yaml", "netsuite/return_authorization") == []
    (err,) = check_spec_text(ok, "o.yaml", "sap/customer_return")
    assert "expected" in str(err)
    (err,) = check_spec_text(ok.replace("value: 1", "source: nope"), "o.yaml")
    assert (err.file, err.line, err.rule) == ("o.yaml", 4, "x.c")


def test_duplicate_mapping_ids_across_pack_folders(tmp_path: Path) -> None:
    packs = _pack(tmp_path)
    other = tmp_path / "more"
    (other / "acme").mkdir(parents=True)
    (other / "acme" / "ra.yaml").write_text(HEADER + "rules: [{id: a, target: b, value: 1}]\n")
    with pytest.raises(SpecError, match="defined twice"):
        MappingRegistry.load(packs_dirs=[packs, other])
