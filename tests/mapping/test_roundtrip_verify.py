"""The run-time round-trip check catches a payload that lost or altered what the RMS sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import samples

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.roundtrip import round_trip_mismatches

MAPPING = "netsuite/return_authorization"


@pytest.fixture(scope="module")
def mapping_registry() -> MappingRegistry:
    return MappingRegistry.load()


def _payload(registry: MappingRegistry) -> tuple[returns_pb2.ReturnOrder, dict]:
    order = samples.build_return(3, serialized_every=1, erp="netsuite")
    payload = json.loads(registry.get(MAPPING).translate(order.SerializeToString(deterministic=True)))
    return order, payload


def test_intact_payload_verifies(mapping_registry: MappingRegistry) -> None:
    order, payload = _payload(mapping_registry)
    assert round_trip_mismatches(mapping_registry, MAPPING, order, json.dumps(payload).encode()) == []


def test_altered_serial_cost_center_and_quantity_are_each_named(mapping_registry: MappingRegistry) -> None:
    order, payload = _payload(mapping_registry)
    items = payload["item"]["items"]
    items[0]["inventoryDetail"]["inventoryAssignment"]["items"][0]["receiptInventoryNumber"] = "SN-WRONG"
    items[1]["custcol_rb_cost_center"] = "CC-999"
    items[2]["quantity"] = 999
    problems = round_trip_mismatches(mapping_registry, MAPPING, order, json.dumps(payload).encode())
    assert [p.split(":")[0] for p in problems] == [
        "lines[0].serials",
        "lines[1].cost_center",
        "lines[2].quantity",
    ]
    assert "'SN-WRONG'" in problems[0] and "'CC-999'" in problems[1]


def test_dropped_line_is_reported(mapping_registry: MappingRegistry) -> None:
    order, payload = _payload(mapping_registry)
    payload["item"]["items"].pop()
    problems = round_trip_mismatches(mapping_registry, MAPPING, order, json.dumps(payload).encode())
    assert problems == ["lines: sent 3, ERP payload carries 2"]


def test_mapping_without_declared_fields_is_not_verified(mapping_registry: MappingRegistry) -> None:
    order, _ = _payload(mapping_registry)
    assert round_trip_mismatches(mapping_registry, "custom/thing", order, b"{}") == []


def test_an_override_that_drops_the_cost_center_is_caught(tmp_path: Path) -> None:
    override = tmp_path / "no_cost_center.yaml"
    override.write_text(f"override: {MAPPING}\nrules:\n  remove: [lines.cost_center]\n")
    registry = MappingRegistry.load(overrides=[override])
    order = samples.build_return(2, erp="netsuite")
    payload = registry.get(MAPPING).translate(order.SerializeToString(deterministic=True))
    problems = round_trip_mismatches(registry, MAPPING, order, payload)
    assert [p.split(":")[0] for p in problems] == ["lines[0].cost_center", "lines[1].cost_center"]
