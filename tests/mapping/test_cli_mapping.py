"""``returnbridge mapping check | test | explain``: exit codes, stdout and precise errors on stderr."""

from __future__ import annotations

import argparse
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import samples

from returnbridge.mapping.cli import add_mapping_commands

PACKS = Path(__file__).resolve().parents[2] / "python/returnbridge/mapping/packs"


def run(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="returnbridge")
    add_mapping_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mapping", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def order_file(tmp_path: Path) -> Path:
    path = tmp_path / "return.json"
    path.write_text(samples.to_proto_json(samples.build_return(3, erp="sap")), encoding="utf-8")
    return path


def test_check_accepts_shipped_specs() -> None:
    files = [str(p) for p in sorted((PACKS / "sap").glob("*.yaml"))]
    code, out, err = run("check", *files)
    assert (code, err) == (0, "")
    assert out.count("ok ") == len(files)


def test_check_names_file_line_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "direction: outbound\n"
        "input: returnbridge.api.v1.ReturnOrder\n"
        "output: json\n"
        "rules:\n"
        "  - {id: header.ok, target: a, source: rma_number}\n"
        "  - id: header.typo\n"
        "    target: b\n"
        "    source: rma_numbr\n",
        encoding="utf-8",
    )
    good = PACKS / "netsuite" / "return_authorization.yaml"
    code, out, err = run("check", str(good), str(bad))
    assert code == 1
    assert f"ok {good}" in out
    assert f"{bad}:" in err and "header.typo" in err and "rma_numbr" in err
    line = int(err.split(f"{bad}:", 1)[1].split(":", 1)[0])
    assert line in (6, 8)


def test_check_reports_missing_table_file(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(
        "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"
        "tables:\n  sites: {file: tables/nope.yaml}\n"
        "rules:\n  - {id: a, target: a, source: currency, pipe: [{lookup: sites}]}\n",
        encoding="utf-8",
    )
    code, _, err = run("check", str(spec))
    assert code == 1
    assert "nope.yaml" in err


def test_check_override_against_its_base(tmp_path: Path) -> None:
    override = tmp_path / "tenant.yaml"
    override.write_text(
        "override: netsuite/return_authorization\n"
        "tables:\n  locations: {entries: {DAL1: '17'}}\n"
        "rules:\n  remove: [header.memo]\n",
        encoding="utf-8",
    )
    assert run("check", "--base", "netsuite/return_authorization", str(override))[0] == 0
    code, _, err = run("check", "--base", "sap/customer_return", str(override))
    assert code == 1 and "netsuite/return_authorization" in err


def test_check_unreadable_file(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in err


def test_test_outbound_prints_payload(order_file: Path) -> None:
    code, out, err = run("test", "sap/customer_return", "--input", str(order_file))
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert body["SoldToParty"] == "10100001"
    assert body["to_Item"][0]["CustomerReturnItem"] == "10"
    assert Decimal(body["to_Item"][0]["RequestedQuantity"]) > 0


def test_test_inbound_prints_message_as_json(tmp_path: Path) -> None:
    record = tmp_path / "stock.json"
    record.write_text(
        json.dumps(
            {
                "Material": "SKU-1001",
                "Plant": "DAL1",
                "StorageLocation": "RET1",
                "InventoryStockType": "01",
                "MaterialBaseUnit": "EA",
                "MatlWrhsStkQtyInMatlBaseUnit": "14.000",
            }
        ),
        encoding="utf-8",
    )
    code, out, err = run("test", "sap/material_stock", "--input", str(record))
    assert (code, err) == (0, "")
    level = json.loads(out)
    assert level["sku"] == "SKU-1001"
    assert level["location"] == {"site": "DAL1", "sub_location": "RTN"}
    assert level["on_hand"] == "14.000" and level["available"] == "14.000"
    assert level["source_erp"] == "ERP_SYSTEM_SAP_S4HANA"


def test_test_reports_translation_error(tmp_path: Path) -> None:
    order = samples.build_return(2, erp="sap")
    order.lines[0].quantity = "1.2345"
    path = tmp_path / "bad.json"
    path.write_text(samples.to_proto_json(order), encoding="utf-8")
    code, out, err = run("test", "sap/customer_return", "--input", str(path))
    assert (code, out) == (1, "")
    assert "items.quantity" in err and "lines[0].quantity" in err


@pytest.mark.parametrize(
    ("spec", "content", "needle"),
    [
        ("netsuite/unknown", "{}", "unknown mapping id"),
        ("sap/customer_return", '{"lines": 5}', "not a protobuf-JSON ReturnOrder"),
        ("sap/material_stock", "{not json", "not valid JSON"),
    ],
)
def test_test_bad_arguments(tmp_path: Path, spec: str, content: str, needle: str) -> None:
    path = tmp_path / "doc.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run("test", spec, "--input", str(path))
    assert (code, out) == (1, "")
    assert needle in err


def test_test_missing_input_file(tmp_path: Path) -> None:
    code, _, err = run("test", "sap/customer_return", "--input", str(tmp_path / "none.json"))
    assert code == 1 and "cannot read input" in err


def test_test_with_a_spec_file(tmp_path: Path, order_file: Path) -> None:
    spec = tmp_path / "mine.yaml"
    spec.write_text(
        "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"
        "rules:\n"
        "  - {id: rma, target: ref.rma, source: rma_number}\n"
        "  - {id: n, target: lines, expr: {count: {each: lines}}}\n",
        encoding="utf-8",
    )
    code, out, err = run("test", str(spec), "--input", str(order_file))
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ref": {"rma": "RMA-00000001"}, "lines": 3}


def test_explain_lists_rule_and_input_per_output(order_file: Path) -> None:
    code, out, err = run("explain", "sap/customer_return", "--input", str(order_file))
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    sold_to = next(r for r in rows if r[0] == "SoldToParty")
    assert sold_to[1:] == ["<-", "customer.erp_customer_ref", "[header.sold_to]"]
    kind = next(r for r in rows if r[0] == "CustomerReturnType")
    assert kind[1:] == ["<-", "(constant)", "[header.type]"]
    assert any(r[-1] == "[items.serial]" and "serial_numbers" in r[2] for r in rows)


def test_test_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    record = b'{"itemid": "SKU-1002", "location": "2", "quantityonhand": "7", "lastmodified": "2026-11-27 08:00:00"}'
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(record)))
    code, out, err = run("test", "netsuite/inventory_level", "--input", "-")
    assert (code, err) == (0, "")
    level = json.loads(out)
    assert (level["sku"], level["location"]["site"], level["on_hand"]) == ("SKU-1002", "RNO2", "7")
    assert level["as_of"] == "2026-11-27T08:00:00Z"
