"""The ``inbound`` config section: where the webhook receiver listens and which signing keys it accepts."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["MAX_REPLAY_WINDOW_SECONDS", "InboundKey", "InboundSettings"]

#: The replay bucket keeps what it saw for twice this long (a timestamp is accepted this far either way).
MAX_REPLAY_WINDOW_SECONDS = 600


class InboundKey(BaseModel):
    """One sender's credential: the key id names the secret, and the tenant and target its pushes are for.

    The secret comes from ``secret_env``, ``secret_file`` or ``secret`` (first set wins), like a connector's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(min_length=1, max_length=128)
    tenant: str = Field(min_length=1)
    target: str = Field(min_length=1)
    secret: SecretStr | None = None
    secret_env: str | None = None
    secret_file: Path | None = None


class InboundSettings(BaseModel):
    """Args of the receiver; ``enabled`` with no ``keys`` on embedded defaults means one key per simulator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=4 * 1024 * 1024)
    # A body not fully received by then is refused with 408 (a stalled sender would hold a connection for ever).
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    replay_window_seconds: float = Field(default=300.0, gt=0, le=MAX_REPLAY_WINDOW_SECONDS)
    keys: list[InboundKey] = []

    @model_validator(mode="after")
    def _unique_key_ids(self) -> InboundSettings:
        ids = [k.key_id for k in self.keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"inbound key ids must be unique; repeated: {', '.join(dupes)}")
        return self
