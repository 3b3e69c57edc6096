"""What the pipeline needs from the mapper and the alerter, as protocols (real classes or test doubles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from returnbridge.errors import TranslationError


class MapperLike(Protocol):
    def translate(self, document: bytes) -> bytes: ...

    def translate_batch(self, documents: Sequence[bytes]) -> list[bytes | TranslationError]: ...


class MapperSource(Protocol):
    """``returnbridge.mapping.MappingRegistry`` or a test double."""

    def get(self, mapping_id: str) -> MapperLike: ...


class AlerterLike(Protocol):
    """``returnbridge.observability.alerts.Alerter`` (``check_backlog`` is used when present)."""

    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool: ...

    async def resolve(self, *, kind: str, key: str) -> None: ...
