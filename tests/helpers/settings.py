"""Settings for an App served in-process against the test's nats-server: loopback ports, no metrics server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from returnbridge.config import Settings, load_settings


def served_settings(tmp_path: Path, nats_url: str, **overrides: Any) -> Settings:
    """The common test base (data dir, NATS, gRPC on port 0, metrics off) with ``overrides`` per section."""
    base: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "nats": {"url": nats_url},
        "grpc": {"port": 0},
        "metrics": {"enabled": False},
    }
    return load_settings(None, env={}, overrides=base | overrides)
