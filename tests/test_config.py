"""Configuration: YAML + environment, refused with key, origin and expectation named."""

from __future__ import annotations

from pathlib import Path

import pytest

from returnbridge.config import load_settings
from returnbridge.errors import ConfigError


def test_defaults_are_embedded_and_loopback() -> None:
    settings = load_settings(None, env={})
    assert settings.embedded_nats
    assert settings.grpc.host == "127.0.0.1"
    assert settings.grpc.port == 50051
    assert settings.nats.sync_always is True
    assert settings.grpc.max_pending_requests >= 10_000


def test_yaml_then_env_then_cli(tmp_path: Path) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text("grpc:\n  port: 6000\nnats:\n  sync_always: false\n")
    settings = load_settings(
        path, env={"RETURNBRIDGE_GRPC__PORT": "6001"}, overrides={"logging": {"json": True}}
    )
    assert settings.grpc.port == 6001
    assert settings.nats.sync_always is False
    assert settings.logging.json_lines is True


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        (
            "grpc:\n  host: 127.0.0.1\n  port: fifty\n",
            {},
            ["rb.yaml:3", "grpc.port", "valid integer", "'fifty'"],
        ),
        ("nats:\n  sync_always: maybe\n", {}, ["rb.yaml:2", "nats.sync_always", "valid boolean"]),
        ("grpc:\n  prot: 1\n", {}, ["rb.yaml:2", "grpc.prot", "unknown key"]),
        (
            "",
            {"RETURNBRIDGE_METRICS__PORT": "70000"},
            ["RETURNBRIDGE_METRICS__PORT", "metrics.port", "65535"],
        ),
        ("grpc: [1, 2\n", {}, ["rb.yaml", "invalid YAML"]),
        ("- a\n- b\n", {}, ["rb.yaml:1", "mapping of sections"]),
    ],
)
def test_wrong_value_is_refused_naming_key_and_origin(
    tmp_path: Path, yaml_text: str, env: dict[str, str], expected: list[str]
) -> None:
    path = tmp_path / "rb.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.yaml"):
        load_settings(tmp_path / "nope.yaml", env={})
