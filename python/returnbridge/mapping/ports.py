"""What the pipeline needs of the mapper, as protocols: a MappingRegistry or a test double fits them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from returnbridge.errors import TranslationError

__all__ = ["MapperLike", "MapperSource"]


class MapperLike(Protocol):
    def translate(self, document: bytes) -> bytes: ...

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]: ...


class MapperSource(Protocol):
    """``returnbridge.mapping.MappingRegistry`` or a test double."""

    def get(self, mapping_id: str) -> MapperLike: ...
