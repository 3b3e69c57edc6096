"""Mapping: compiled YAML specs translating canonical protobuf <-> ERP payloads through the Rust engine.

Public names: ``Mapper``, ``MappingRegistry``, ``ExplainEntry``, ``check_spec_text``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from returnbridge import _mapper
from returnbridge.errors import NotFoundError, SpecError, TranslationError

from .registry import SpecSource, check_source_text, descriptor_set, dynamic_types, load_sources

__all__ = ["ExplainEntry", "Mapper", "MappingRegistry", "check_spec_text"]

_JSON = "application/json"


class ExplainEntry(NamedTuple):
    """Which rule wrote an output field, and from which input path ("" for constants and computed values)."""

    output_path: str
    rule: str
    input_path: str


def _translation_error(args: tuple[str, str, str]) -> TranslationError:
    rule, path, message = args
    return TranslationError(f"{path}: {message}" if path else message, rule=rule, path=path)


class Mapper:
    """One compiled spec. Thread-safe; the Rust handle is private."""

    __slots__ = ("_ref", "direction", "id", "normalized_spec", "output_content_type")

    def __init__(self, source: SpecSource) -> None:
        """Compile a validated spec source.

        Raises:
            SpecError: the engine rejected the spec (file and line of the offending rule).
        """
        self.normalized_spec: bytes = source.normalized()
        try:
            self._ref = _mapper.Mapper(self.normalized_spec, descriptor_set(), dynamic_types())
        except _mapper.SpecCompileError as exc:
            rule, message = exc.args
            raise source.error_at(rule, message) from None
        self.id: str = source.mapping_id
        self.direction: str = self._ref.direction
        message = self._ref.output_message
        self.output_content_type: str = f"application/x-protobuf; messageType={message}" if message else _JSON

    def translate(self, document: bytes) -> bytes:
        """Translate one document.

        Raises:
            TranslationError: with ``rule`` and ``path`` of the failure.
        """
        try:
            return self._ref.translate(document)
        except _mapper.TranslateFailure as exc:
            raise _translation_error(exc.args) from None

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]:
        """Translate many documents in one call (GIL released); failures are returned, not raised."""
        return [
            r if isinstance(r, bytes) else _translation_error(r)
            for r in self._ref.translate_batch(list(documents))
        ]

    def explain(self, document: bytes) -> tuple[bytes, list[ExplainEntry]]:
        """Translate and say which rule produced each output field.

        Raises:
            TranslationError: as ``translate``.
        """
        try:
            out, entries = self._ref.explain(document)
        except _mapper.TranslateFailure as exc:
            raise _translation_error(exc.args) from None
        return out, [ExplainEntry(*e) for e in entries]

    def __repr__(self) -> str:
        return f"Mapper({self.id!r}, {self.direction})"


class MappingRegistry:
    """All compiled mappings by id: shipped packs, extra pack folders, then override files in order."""

    def __init__(self, mappers: dict[str, Mapper]) -> None:
        self._mappers = dict(mappers)

    @classmethod
    def load(cls, overrides: Sequence[Path] = (), packs_dirs: Sequence[Path] = ()) -> MappingRegistry:
        """Load, validate and compile every spec.

        Raises:
            SpecError: with file, line and rule id of the first broken spec.
        """
        sources = load_sources(overrides, packs_dirs)
        return cls({mapping_id: Mapper(source) for mapping_id, source in sources.items()})

    def get(self, mapping_id: str) -> Mapper:
        """The mapper for an id.

        Raises:
            NotFoundError: unknown id.
        """
        try:
            return self._mappers[mapping_id]
        except KeyError:
            raise NotFoundError(f"unknown mapping id {mapping_id!r}") from None

    def ids(self) -> list[str]:
        return sorted(self._mappers)


def check_spec_text(text: str, file_name: str, base_mapping_id: str = "") -> list[SpecError]:
    """Validate a spec or override text (compiling it) without registering it; [] when valid."""
    try:
        Mapper(check_source_text(text, file_name, base_mapping_id))
    except SpecError as exc:
        return [exc]
    return []
