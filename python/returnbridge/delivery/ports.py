"""What delivery needs of the alerter, as a protocol (the real Alerter or a test double)."""

from __future__ import annotations

from typing import Protocol


class AlerterLike(Protocol):
    """``returnbridge.observability.alerts.Alerter`` (``check_backlog`` is used when present)."""

    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool: ...

    async def resolve(self, *, kind: str, key: str) -> None: ...
