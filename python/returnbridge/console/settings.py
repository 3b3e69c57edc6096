"""The ``console`` configuration section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseModel):
    """Where the web console listens and how long a sign-in lasts; loopback by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9470, ge=0, le=65535)
    # Absolute lifetime of a sign-in; the credential behind it is also re-checked by every API call.
    session_ttl_seconds: float = Field(default=8 * 3600, gt=0)
    max_sessions: int = Field(default=1000, ge=1)
    # Set when a TLS-terminating proxy serves the console over https.
    secure_cookies: bool = False
    api_timeout_seconds: float = Field(default=15.0, gt=0)
    # A POSTed form not fully received by then is refused with 408: the sign-in form is read before any session,
    # so a sender stalling mid-body would otherwise hold its connection (and a handler) for ever.
    form_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    kpi_sample_seconds: float = Field(default=5.0, gt=0)
    # The KPIs are service-wide (metrics carry no tenant label), so only these roles see them.
    kpi_roles: list[str] = Field(default_factory=lambda: ["integration_admin", "auditor"])
