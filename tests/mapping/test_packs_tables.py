"""Lookup tables of the shipped packs: inverse tables stay in step, demo codes match the samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import samples
import yaml

PACKS = Path(__file__).resolve().parents[2] / "python/returnbridge/mapping/packs"


def _entries(pack: str, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((PACKS / pack / "tables" / f"{name}.yaml").read_text(encoding="utf-8"))
    return {str(k): v for k, v in loaded["entries"].items()}


# (pack, forward table, inverse table, member of an object entry or None)
INVERSES = [
    ("netsuite", "items", "items_by_id", None),
    ("netsuite", "locations", "locations_by_id", None),
    ("netsuite", "currencies", "currencies_by_id", None),
    ("sap", "plants", "plants_by_code", None),
    ("sap", "storage_locations", "storage_locations_by_code", None),
    ("sap", "vendors", "vendors_by_supplier", None),
    ("sap", "uom", "uom_by_code", None),
    ("sap", "reason_codes", "reason_codes_by_return_reason", "return_reason"),
    ("sap", "reason_codes", "reason_codes_by_order_reason", "order_reason"),
    ("oracle", "organizations", "organizations_by_code", None),
    ("oracle", "subinventories", "subinventories_by_code", None),
    ("oracle", "uom", "uom_by_code", None),
    ("oracle_ebs", "items", "items_by_id", None),
    ("oracle_ebs", "organizations", "organizations_by_id", None),
    ("oracle_ebs", "subinventories", "subinventories_by_code", None),
    ("oracle_ebs", "uom", "uom_by_code", None),
]


@pytest.mark.parametrize(("pack", "forward", "inverse", "member"), INVERSES)
def test_inverse_tables_are_exact_inverses(pack: str, forward: str, inverse: str, member: str | None) -> None:
    fwd = _entries(pack, forward)
    values = {str(v[member] if member else v) for v in fwd.values()}
    assert len(values) == len(fwd), f"{pack}/{forward} is not one-to-one, so {inverse} cannot invert it"
    expected = {str(v[member] if member else v): key for key, v in fwd.items()}
    assert _entries(pack, inverse) == expected


@pytest.mark.parametrize(
    ("pack", "table", "codes"),
    [
        ("netsuite", "items", samples.SKUS),
        ("netsuite", "locations", samples.SITES),
        ("netsuite", "cost_centers", samples.COST_CENTERS),
        ("sap", "plants", samples.SITES),
        ("sap", "reason_codes", samples.REASONS),
        ("sap", "cost_centers", samples.COST_CENTERS),
        ("sap", "vendors", samples.VENDORS),
        ("sap", "uom", samples.UOMS),
        ("oracle", "organizations", samples.SITES),
        ("oracle", "uom", samples.UOMS),
        ("oracle", "reason_codes", samples.REASONS),
        ("oracle_ebs", "items", samples.SKUS),
        ("oracle_ebs", "organizations", samples.SITES),
        ("oracle_ebs", "reason_codes", samples.REASONS),
    ],
)
def test_demo_codes_have_entries(pack: str, table: str, codes: tuple[str, ...]) -> None:
    missing = sorted(set(codes) - set(_entries(pack, table)))
    assert not missing, f"{pack}/{table} lacks demo codes {missing}"


@pytest.mark.parametrize("pack", ["sap", "oracle", "oracle_ebs"])
def test_every_rms_sub_location_maps(pack: str) -> None:
    table = "storage_locations" if pack == "sap" else "subinventories"
    used = {sub for subs in samples.SUB_LOCATIONS.values() for sub in subs}
    assert used <= set(_entries(pack, table))


def test_sap_codes_fit_their_fields() -> None:
    for entry in _entries("sap", "reason_codes").values():
        assert len(entry["order_reason"]) <= 3 and len(entry["return_reason"]) <= 3
        assert len(entry["movement_reason"]) <= 4
    assert all(len(v) <= 10 for v in _entries("sap", "vendors").values())
    assert all(len(v["profit_center"]) <= 10 for v in _entries("sap", "cost_centers").values())
    assert all(len(v) <= 4 for v in _entries("sap", "storage_locations").values())
    assert all(len(v) <= 3 for v in _entries("sap", "uom").values())
