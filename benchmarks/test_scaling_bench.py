"""How translation time grows with the number of lines, for the packs that build one nested object per line.

Linear work takes ~8x the time for 8x the lines; the O(n^2) per-line scan these packs once had took ~64x.
Compare the `lines-1000` and `lines-8000` rows of each group.
"""

from __future__ import annotations

from typing import Any

import pytest
import samples

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping import MappingRegistry

PER_LINE_NESTED = ["sap/credit_memo_request", "oracle/receipt", "oracle/return_order"]


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


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.mark.parametrize("lines", [1_000, 8_000], ids=lambda n: f"lines-{n}")
@pytest.mark.parametrize("mapping_id", PER_LINE_NESTED)
def test_scaling(benchmark: Any, registry: MappingRegistry, mapping_id: str, lines: int) -> None:
    benchmark.group = f"scaling {mapping_id}"
    benchmark.extra_info["lines"] = lines
    mapper = registry.get(mapping_id)
    document = _order(lines)
    output = benchmark(mapper.translate, document)
    assert output
