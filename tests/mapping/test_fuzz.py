"""Fuzzing: random bytes as documents and as specs only ever produce the documented errors, never a crash."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from returnbridge import _mapper
from returnbridge.errors import TranslationError
from returnbridge.mapping import MappingRegistry, check_spec_text
from returnbridge.mapping.registry import descriptor_set, dynamic_types

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REGISTRY = MappingRegistry.load()
OUTBOUND = REGISTRY.get("sap/customer_return")
INBOUND = REGISTRY.get("netsuite/inventory_level")


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes_are_translation_errors(data: bytes) -> None:
    for mapper in (OUTBOUND, INBOUND):
        try:
            out = mapper.translate(data)
        except TranslationError as exc:
            assert exc.rule is not None and exc.path is not None
        else:
            assert isinstance(out, bytes)
    results = OUTBOUND.translate_batch([data, data])
    assert len(results) == 2


@SETTINGS
@given(
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        lambda x: st.lists(x, max_size=4) | st.dictionaries(st.text(max_size=4), x, max_size=4),
        max_leaves=20,
    )
)
def test_random_json_documents_never_crash(value: object) -> None:
    import json

    try:
        INBOUND.translate(json.dumps(value).encode())
    except TranslationError:
        pass


@SETTINGS
@given(st.binary(max_size=400))
def test_random_spec_bytes_are_spec_errors(data: bytes) -> None:
    try:
        _mapper.Mapper(data, descriptor_set(), dynamic_types())
    except _mapper.SpecCompileError as exc:
        assert len(exc.args) == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="abcdefgilnoprstuwx:{}[]-'\" \n0123456789.$@^*,|#", max_size=200))
def test_random_yaml_text_is_reported_not_raised(text: str) -> None:
    problems = check_spec_text(text, "fuzz.yaml")
    assert all(p.file == "fuzz.yaml" for p in problems)
