"""Mapper benchmarks: Rust engine vs Python reference vs hand-written Python vs orjson, outputs checked first."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
import samples
from google.protobuf import json_format

from handwritten_netsuite import translate_return_authorization
from returnbridge.mapping import Mapper, MappingRegistry

MAPPING_ID = "netsuite/return_authorization"
SINGLE = "ra-1-doc-10-lines"
BATCH = "ra-batch-1000-docs"


def _parsed(output: bytes) -> Any:
    return json.loads(output, parse_float=Decimal)


@pytest.fixture(scope="session")
def mapper() -> Mapper:
    return MappingRegistry.load().get(MAPPING_ID)


@pytest.fixture(scope="session")
def document() -> bytes:
    return samples.build_return(10, seed=7, erp="netsuite").SerializeToString(deterministic=True)


@pytest.fixture(scope="session")
def documents() -> list[bytes]:
    return [
        samples.build_return(10, seed=seed, erp="netsuite").SerializeToString(deterministic=True)
        for seed in range(1, 1001)
    ]


def _json_equivalent(document: bytes) -> bytes:
    from returnbridge.api.v1 import returns_pb2

    return json_format.MessageToJson(returns_pb2.ReturnOrder.FromString(document)).encode()


@pytest.fixture(scope="session")
def reference_translate(mapper: Mapper) -> Callable[[bytes], bytes]:
    from returnbridge.mapping.reference import ReferenceMapper
    from returnbridge.mapping.registry import descriptor_set

    return ReferenceMapper(mapper.normalized_spec, descriptor_set()).translate


def _record(benchmark: Any, kind: str, documents: int, matches: bool) -> None:
    benchmark.extra_info.update({"kind": kind, "documents": documents, "output_matches_rust": matches})
    assert matches, f"{kind} output differs from the Rust mapper's"


# -- one document -------------------------------------------------------------------------------------------


@pytest.mark.benchmark(group=SINGLE)
def test_single_rust(benchmark: Any, mapper: Mapper, document: bytes) -> None:
    out = benchmark(mapper.translate, document)
    _record(benchmark, "rust", 1, _parsed(out)["otherRefNum"] == "RMA-00000007")


@pytest.mark.benchmark(group=SINGLE)
def test_single_reference(benchmark: Any, mapper: Mapper, document: bytes, reference_translate: Any) -> None:
    out = benchmark(reference_translate, document)
    _record(benchmark, "reference", 1, out == mapper.translate(document))


@pytest.mark.benchmark(group=SINGLE)
def test_single_handwritten(benchmark: Any, mapper: Mapper, document: bytes) -> None:
    out = benchmark(translate_return_authorization, document)
    _record(benchmark, "handwritten", 1, _parsed(out) == _parsed(mapper.translate(document)))


@pytest.mark.benchmark(group=SINGLE)
def test_single_orjson(benchmark: Any, document: bytes) -> None:
    text = _json_equivalent(document)
    out = benchmark(lambda: orjson.dumps(orjson.loads(text)))
    _record(benchmark, "orjson", 1, orjson.loads(out) == orjson.loads(text))


# -- a batch of 1,000 documents -----------------------------------------------------------------------------


@pytest.mark.benchmark(group=BATCH)
def test_batch_rust_translate_batch(benchmark: Any, mapper: Mapper, documents: list[bytes]) -> None:
    outs = benchmark(mapper.translate_batch, documents)
    _record(benchmark, "rust", len(documents), outs == [mapper.translate(d) for d in documents])


@pytest.mark.benchmark(group=BATCH)
def test_batch_rust_translate_loop(benchmark: Any, mapper: Mapper, documents: list[bytes]) -> None:
    outs = benchmark(lambda: [mapper.translate(d) for d in documents])
    _record(benchmark, "rust-loop", len(documents), outs == mapper.translate_batch(documents))


@pytest.mark.benchmark(group=BATCH)
def test_batch_reference(
    benchmark: Any, mapper: Mapper, documents: list[bytes], reference_translate: Any
) -> None:
    outs = benchmark(lambda: [reference_translate(d) for d in documents])
    _record(benchmark, "reference", len(documents), outs == mapper.translate_batch(documents))


@pytest.mark.benchmark(group=BATCH)
def test_batch_handwritten(benchmark: Any, mapper: Mapper, documents: list[bytes]) -> None:
    outs = benchmark(lambda: [translate_return_authorization(d) for d in documents])
    expected = mapper.translate_batch(documents)
    _record(
        benchmark,
        "handwritten",
        len(documents),
        all(_parsed(a) == _parsed(b) for a, b in zip(outs, expected, strict=True)),
    )


@pytest.mark.benchmark(group=BATCH)
def test_batch_orjson(benchmark: Any, documents: list[bytes]) -> None:
    texts = [_json_equivalent(d) for d in documents]
    outs = benchmark(lambda: [orjson.dumps(orjson.loads(t)) for t in texts])
    _record(
        benchmark,
        "orjson",
        len(documents),
        [orjson.loads(o) for o in outs] == [orjson.loads(t) for t in texts],
    )
