"""Mapper and MappingRegistry API: golden cases, batch, explain, errors, threads, public names, typed stub."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format, message_factory

import returnbridge.mapping as mapping
from returnbridge import _mapper
from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import NotFoundError, SpecError, TranslationError
from returnbridge.mapping import ExplainEntry, Mapper, MappingRegistry
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import descriptor_set, dynamic_types, source_from_spec
from returnbridge.mapping.spec import Spec, load_spec_file

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(p for p in (ROOT / "tests/mapping/cases/ops").iterdir() if (p / "spec.yaml").is_file())
OUTBOUND = "direction: outbound\ninput: returnbridge.api.v1.ReturnOrder\noutput: json\n"


def test_public_names_are_pinned() -> None:
    assert sorted(mapping.__all__) == ["ExplainEntry", "Mapper", "MappingRegistry", "check_spec_text"]


def test_release_build() -> None:
    assert _mapper.build_profile in ("release", "debug")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path) -> None:
    model, info = load_spec_file(case / "spec.yaml")
    assert isinstance(model, Spec)
    mapper = Mapper(source_from_spec(f"ops/{case.name}", model, info))
    reference = ReferenceMapper(mapper.normalized_spec, descriptor_set())
    raw = (case / "input.json").read_bytes()
    document = (
        json_format.Parse(raw, returns_pb2.ReturnOrder()).SerializeToString()
        if model.direction == "outbound"
        else raw
    )
    error_file = case / "expected_error.txt"
    if error_file.exists():
        rule, path, message = error_file.read_text().rstrip("\n").split("|", 2)
        for engine in (mapper, reference):
            with pytest.raises(TranslationError) as caught:
                engine.translate(document)
            assert (caught.value.rule, caught.value.path) == (rule, path)
            assert str(caught.value) == f"{path}: {message}"
        return
    expected = (case / "expected.json").read_bytes()
    if model.direction == "outbound":
        assert mapper.translate(document) == expected.rstrip(b"\n")
    else:
        cls = message_factory.GetMessageClass(reference.pool.FindMessageTypeByName(model.output))
        assert mapper.translate(document) == json_format.Parse(expected, cls()).SerializeToString(
            deterministic=True
        )
        assert mapper.output_content_type == f"application/x-protobuf; messageType={model.output}"
    assert mapper.translate(document) == reference.translate(document)


def test_compiled_cases_have_not_drifted() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/compile_cases.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_registry_get_and_ids() -> None:
    registry = MappingRegistry.load()
    assert "netsuite/return_authorization" in registry.ids()
    mapper = registry.get("netsuite/return_authorization")
    assert (mapper.id, mapper.direction, mapper.output_content_type) == (
        "netsuite/return_authorization",
        "outbound",
        "application/json",
    )
    with pytest.raises(NotFoundError):
        registry.get("netsuite/nope")


def _compile(text: str) -> Mapper:
    from returnbridge.mapping.registry import check_source_text

    return Mapper(check_source_text(OUTBOUND + text, "t.yaml"))


def test_translate_batch_reports_each_failure_without_failing_the_batch(
    make_order: Callable[..., Any],
) -> None:
    mapper = _compile("rules:\n  - {id: ref, target: ref, source: rma_number, required: true}\n")
    good = make_order(lines=1).SerializeToString()
    no_rma = make_order(lines=1, rma_number="").SerializeToString()
    results = mapper.translate_batch([good, no_rma, b"\xff\xff", good] * 250)
    assert len(results) == 1000
    assert results[0] == results[3] == b'{"ref":"RMA-1001"}'
    assert isinstance(results[1], TranslationError) and (results[1].rule, results[1].path) == (
        "ref",
        "rma_number",
    )
    assert isinstance(results[2], TranslationError) and "invalid protobuf input" in str(results[2])
    assert mapper.translate_batch([]) == []


def test_explain_lists_rule_and_input_path(make_order: Callable[..., Any]) -> None:
    mapper = _compile(
        "rules:\n  - {id: ref, target: a.ref, source: rma_number}\n  - {id: k, target: k, value: 1}\n"
        "  - {id: s, target: s, each: lines, source: sku}\n"
    )
    out, entries = mapper.explain(make_order(lines=2).SerializeToString())
    assert out == b'{"a":{"ref":"RMA-1001"},"k":1,"s":["SKU-1001","SKU-1002"]}'
    assert entries == [
        ExplainEntry("a.ref", "ref", "rma_number"),
        ExplainEntry("k", "k", ""),
        ExplainEntry("s[0]", "s", "lines[0].sku"),
        ExplainEntry("s[1]", "s", "lines[1].sku"),
    ]


def test_mapper_is_thread_safe(make_order: Callable[..., Any]) -> None:
    mapper = _compile(
        "rules:\n  - {id: ref, target: ref, template: '{rma_number}/{version}'}\n"
        "  - id: l\n    target: l\n    each: lines\n    rules:\n"
        "      - {id: l.amount, target: amount, expr: {mul: [quantity, unit_price.amount]}, pipe: [number]}\n"
        "      - {id: l.serials, target: serials, each: serial_numbers, source: '@', pipe: [trim]}\n"
    )
    docs = [make_order(lines=n % 5 + 1, version=n).SerializeToString() for n in range(200)]
    expected = [mapper.translate(d) for d in docs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        batches = list(pool.map(lambda _: mapper.translate_batch(docs), range(8)))
    assert all(b == expected for b in batches)


def test_broken_spec_fails_at_construction_with_line() -> None:
    with pytest.raises(SpecError) as caught:
        _compile("rules:\n  - {id: a, target: x, source: nope}\n")
    assert (caught.value.line, caught.value.rule) == (5, "a")


def test_rust_constructor_rejects_garbage() -> None:
    with pytest.raises(_mapper.SpecCompileError):
        _mapper.Mapper(b"{not json", descriptor_set(), dynamic_types())
    with pytest.raises(_mapper.SpecCompileError):
        _mapper.Mapper(b"{}", b"\xff\xff\xff", dynamic_types())


def test_stub_matches_extension() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "returnbridge._mapper"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_translate_batch_releases_the_gil(make_order: Callable[..., Any]) -> None:
    """While one thread is inside translate_batch, another thread keeps running Python code."""
    import threading
    import time

    mapper = _compile(
        "rules:\n  - id: l\n    target: l\n    each: lines\n    rules:\n"
        "      - {id: l.a, target: a, source: sku, pipe: [trim, upper]}\n"
        "      - {id: l.b, target: b, expr: {mul: [quantity, unit_price.amount]}, pipe: [{decimal: {scale: 2}}]}\n"
        "      - {id: l.c, target: c, template: '{line_id}/{@number}'}\n"
    )
    big = make_order(lines=3000).SerializeToString()
    docs = [big] * 60  # below the multi-thread threshold: one Rust thread, one core left for this test
    started, done = threading.Event(), threading.Event()
    elapsed: list[float] = []

    def work() -> None:
        started.set()
        t0 = time.perf_counter()
        mapper.translate_batch(docs)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    thread = threading.Thread(target=work)
    thread.start()
    started.wait()
    spins = 0
    while not done.is_set():
        spins += 1
    thread.join()
    # Holding the GIL for the whole call would leave this loop a handful of iterations at most.
    assert elapsed[0] > 0.02, "batch too fast to observe"
    assert spins > 1000, f"main thread ran only {spins} iterations during a {elapsed[0]:.3f}s batch"
