"""Canonical -> ERP -> canonical round trips through every outbound spec and its echo spec (``<id>_in``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import samples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import descriptor_set
from returnbridge.mapping.roundtrip import CARRIED, PAYLOAD_CHECKS, round_trip_mismatches

RTV = returns_pb2.DISPOSITION_RETURN_TO_VENDOR

CATEGORY = {
    "serials": "serial numbers",
    "cost_center": "cost centers",
    "vendor_code": "vendor codes",
    "vendor_rtv": "vendor codes",
    "quantity": "quantities",
    "price": "amounts",
    "tax": "amounts",
    "refund_amount": "amounts",
}
REQUIRED = {"serial numbers", "cost centers", "vendor codes", "quantities", "amounts"}
# Fields a pack cannot carry at all (documented in docs/mapping-packs.md); none since EBS lines carry the DFF.
KNOWN_GAPS: dict[str, set[str]] = {}

ERP_OF_PACK = {"netsuite": "netsuite", "sap": "sap", "oracle": "oracle", "oracle_ebs": "oracle_ebs"}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


def _round_trip(registry: MappingRegistry, mapping_id: str, order: returns_pb2.ReturnOrder) -> None:
    payload = registry.get(mapping_id).translate(order.SerializeToString(deterministic=True))
    assert round_trip_mismatches(registry, mapping_id, order, payload) == [], mapping_id


def test_every_outbound_spec_has_an_echo(registry: MappingRegistry) -> None:
    outbound = {i for i in registry.ids() if registry.get(i).direction == "outbound"}
    assert outbound == set(CARRIED)
    for mapping_id in outbound:
        assert registry.get(f"{mapping_id}_in").direction == "inbound"


@pytest.mark.parametrize("pack", sorted(ERP_OF_PACK))
def test_each_pack_carries_the_required_fields(pack: str) -> None:
    carried: set[str] = set()
    for mapping_id, (header, lines) in CARRIED.items():
        if mapping_id.split("/")[0] == pack:
            carried |= {CATEGORY[f] for f in (*header, *lines) if f in CATEGORY}
            if mapping_id in PAYLOAD_CHECKS:
                carried.add(CATEGORY[PAYLOAD_CHECKS[mapping_id][0]])
    assert REQUIRED - carried == KNOWN_GAPS.get(pack, set())


@pytest.mark.parametrize("mapping_id", sorted(CARRIED))
@pytest.mark.parametrize(
    "variant",
    [
        {"lines": 1},
        {"lines": 7, "serialized_every": 1},
        {"lines": 12, "unicode": True, "max_length": True},
        {"lines": 4, "original_order": False, "seed": 3},
    ],
    ids=["one-line", "all-serialized", "unicode-max-length", "no-original-order"],
)
def test_round_trip_samples(registry: MappingRegistry, mapping_id: str, variant: dict[str, Any]) -> None:
    pack = mapping_id.split("/")[0]
    order = samples.build_return(**variant, erp=ERP_OF_PACK[pack])
    if pack == "netsuite" and variant.get("max_length"):
        # NetSuite needs item internal ids: keep demo SKUs, everything else at maximum length.
        for index, line in enumerate(order.lines):
            line.sku = (samples.SERIALIZED_SKUS if line.serialized else samples.PLAIN_SKUS)[index % 2]
    _round_trip(registry, mapping_id, order)
    # The pure-Python reference interpreter must agree byte for byte on the pack's specs.
    document = order.SerializeToString(deterministic=True)
    payload = registry.get(mapping_id).translate(document)
    for spec_id, data in ((mapping_id, document), (f"{mapping_id}_in", payload)):
        mapper = registry.get(spec_id)
        assert ReferenceMapper(mapper.normalized_spec, descriptor_set()).translate(data) == mapper.translate(
            data
        )


# Values every ERP field on the way accepts: printable letters/digits (any script) and a few separators.
_CODE_CHARS = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="-_/.")


def _codes(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_CODE_CHARS, min_size=1, max_size=max_size)


@st.composite
def returns(draw: st.DrawFn, pack: str) -> returns_pb2.ReturnOrder:
    count = draw(st.integers(1, 500) if draw(st.booleans()) else st.integers(1, 8))
    order = samples.build_return(
        count,
        seed=draw(st.integers(1, 10_000)),
        unicode=draw(st.booleans()),
        max_length=pack != "netsuite" and draw(st.booleans()),
        serialized_every=draw(st.integers(0, 3)),
        original_order=draw(st.booleans()),
        erp=ERP_OF_PACK[pack],
    )
    # Mutate a few lines with drawn values (all lines would make large returns slow to draw).
    for line in order.lines[: draw(st.integers(1, min(count, 6)))]:
        line.quantity = format(draw(st.decimals(Decimal("0.001"), Decimal("99999"), places=3)), "f")
        line.unit_price.amount = format(
            draw(st.decimals(Decimal("0.01"), Decimal("999999.99"), places=2)), "f"
        )
        line.cost_center = draw(_codes(samples.MAX_LEN["cost_center"]))
        # Codes that look like mapped SAP supplier numbers would come back as their RMS code.
        line.vendor_code = draw(
            _codes(samples.MAX_LEN["vendor_code"]).filter(lambda v: not v.startswith("1730"))
        )
        serials = draw(st.lists(_codes(samples.MAX_LEN["serial_number"]), max_size=4, unique=True))
        del line.serial_numbers[:]
        line.serial_numbers.extend(serials)
        line.serialized = bool(serials)
        line.disposition = draw(st.sampled_from([returns_pb2.DISPOSITION_RESTOCK, RTV]))
    return order


@pytest.mark.parametrize("pack", sorted(ERP_OF_PACK))
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_round_trip_property(registry: MappingRegistry, pack: str, data: st.DataObject) -> None:
    order = data.draw(returns(pack))
    for mapping_id in CARRIED:
        if mapping_id.split("/")[0] == pack:
            _round_trip(registry, mapping_id, order)
