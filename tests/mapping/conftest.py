"""Mapping-engine fixtures: compile spec text with both the Rust engine and the reference interpreter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.errors import TranslationError
from returnbridge.mapping import Mapper
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import check_source_text, descriptor_set

OUTBOUND = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"


def inbound(message: str = "returnbridge.api.v1.InventoryLevel") -> str:
    return f"direction: inbound\ninput: json\noutput: {message}\n"


@dataclass
class Pair:
    """A spec compiled by both engines; ``run`` requires identical results from both."""

    rust: Mapper
    ref: ReferenceMapper

    def run(self, document: bytes) -> bytes:
        """Translate with both engines; the outputs (or the error rule and path) must agree.

        Raises:
            TranslationError: the Rust engine's error, after checking the reference failed the same way.
        """
        try:
            expected = self.ref.translate(document)
        except TranslationError as ref_err:
            with pytest.raises(TranslationError) as caught:
                self.rust.translate(document)
            assert (caught.value.rule, caught.value.path) == (ref_err.rule, ref_err.path), (
                f"rust: {caught.value!s} / reference: {ref_err!s}"
            )
            assert str(caught.value) == str(ref_err)
            raise caught.value from None
        actual = self.rust.translate(document)
        assert actual == expected, f"rust {actual!r} != reference {expected!r}"
        return actual


def compile_pair(text: str, file_name: str = "test.yaml") -> Pair:
    """Compile YAML spec text with both engines."""
    source = check_source_text(text, file_name)
    rust = Mapper(source)
    return Pair(rust, ReferenceMapper(rust.normalized_spec, descriptor_set()))


@pytest.fixture
def pair() -> Callable[[str], Pair]:
    """Compile YAML spec text with both engines."""
    return compile_pair


@pytest.fixture
def make_order() -> Callable[..., returns_pb2.ReturnOrder]:
    """Build a canonical return (see ``order``)."""
    return order


def order(lines: int = 2, **fields: object) -> returns_pb2.ReturnOrder:
    """A small canonical return with ``lines`` serialized lines; keyword fields override the header."""
    o = returns_pb2.ReturnOrder(
        return_id="R-1",
        tenant_id="t1",
        rma_number="RMA-1001",
        version=3,
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        event=returns_pb2.LIFECYCLE_EVENT_RECEIVED,
        reason_code="DAMAGED",
        currency="USD",
        customer=returns_pb2.Customer(customer_id="C-1", erp_customer_ref="101"),
        restocking_fee=common_pb2.Money(amount="5.00", currency="USD"),
    )
    o.event_time.FromJsonString("2026-11-27T15:22:05.120Z")
    for i in range(lines):
        o.lines.add(
            line_id=f"L{i + 1}",
            sku=f"SKU-{1001 + i}",
            quantity=str(i + 1),
            unit_of_measure="EA",
            unit_price=common_pb2.Money(amount="19.99", currency="USD"),
            serialized=True,
            serial_numbers=[f" SN{i}-{j} " for j in range(i + 1)],
            disposition=returns_pb2.DISPOSITION_RESTOCK if i % 2 == 0 else returns_pb2.DISPOSITION_SCRAP,
            location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            cost_center=f"CC-{100 + i}",
        )
    for key, value in fields.items():
        setattr(o, key, value)
    return o
