"""Golden cases of the shipped packs (tests/mapping/cases/<pack>/<case>/): exact output or exact error.

Same layout as the engine cases (docs/mapping-language.md section 12) with ``mapping_id.txt`` naming the pack spec.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory

from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import TranslationError
from returnbridge.mapping import Mapper, MappingRegistry
from returnbridge.mapping.reference import ReferenceMapper
from returnbridge.mapping.registry import descriptor_set

CASES_ROOT = Path(__file__).resolve().parent / "cases"
PACKS = ("netsuite", "sap", "oracle", "oracle_ebs")
CASES = sorted(
    case for pack in PACKS for case in (CASES_ROOT / pack).iterdir() if (case / "mapping_id.txt").is_file()
)


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


def _reference(mapper: Mapper) -> ReferenceMapper:
    """The pure-Python interpreter of the same normalized spec (differential check of the pack)."""
    return ReferenceMapper(mapper.normalized_spec, descriptor_set())


def test_every_pack_has_cases() -> None:
    for pack in PACKS:
        assert any(case.parent.name == pack for case in CASES), f"no golden cases for {pack}"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden_case(case: Path, registry: MappingRegistry) -> None:
    mapper = registry.get((case / "mapping_id.txt").read_text(encoding="utf-8").strip())
    raw = (case / "input.json").read_text(encoding="utf-8")
    if mapper.direction == "outbound":
        document = json_format.Parse(raw, returns_pb2.ReturnOrder()).SerializeToString(deterministic=True)
    else:
        document = raw.encode()
    error_file = case / "expected_error.txt"
    if error_file.exists():
        rule, path, message = error_file.read_text(encoding="utf-8").rstrip("\n").split("|", 2)
        for engine in (mapper, _reference(mapper)):
            with pytest.raises(TranslationError) as caught:
                engine.translate(document)
            assert (caught.value.rule, caught.value.path) == (rule, path)
            assert message in str(caught.value)
        return
    output = mapper.translate(document)
    assert _reference(mapper).translate(document) == output, "reference interpreter and Rust engine differ"
    expected = (case / "expected.json").read_text(encoding="utf-8")
    if mapper.direction == "outbound":
        # Outbound expected.json is the exact body (compact, as the engine writes it), as for the engine cases.
        assert output == expected.rstrip("\n").encode()
        return
    type_name = mapper.output_content_type.partition("messageType=")[2]
    message_class = message_factory.GetMessageClass(
        descriptor_pool.Default().FindMessageTypeByName(type_name)
    )
    assert message_class.FromString(output) == json_format.Parse(expected, message_class())
    # Inbound output is deterministic protobuf: byte-identical to Python's deterministic serialization.
    assert output == json_format.Parse(expected, message_class()).SerializeToString(deterministic=True)
