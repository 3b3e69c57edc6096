"""Configuration: YAML + environment, refused with key, origin and expectation named."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.yaml_bombs import laughs
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
        # Environment values are parsed by the bounded loader too: no traceback past Python's digit limit.
        ("", {"RETURNBRIDGE_GRPC__PORT": "1" + "0" * 5_000}, ["RETURNBRIDGE_GRPC__PORT", "grpc.port"]),
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


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"grpc:\n  host: \xe9\n", "rb.yaml: not UTF-8 text"),
        (laughs().encode(), "rb.yaml:1: YAML limit aliases"),
        (b"grpc: " + b"[" * 5_000 + b"]" * 5_000 + b"\n", "YAML limit max_depth"),
        (b"grpc:\n  port: 1" + b"0" * 5_000 + b"\n", "rb.yaml:2: YAML limit int_digits"),
        (
            b"grpc:\n  port: 6000\nlogging: {}\ngrpc:\n  port: 6001\n",
            "rb.yaml:4: invalid YAML: duplicate key 'grpc'",
        ),
    ],
    ids=["not utf-8", "alias bomb", "depth bomb", "integer past the digit limit", "duplicate key"],
)
def test_hostile_file_is_refused_naming_file_and_line(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "rb.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[1, .nan]", "process.restart_backoff_seconds.1: Input should be a finite number"),
        ("[1, .inf]", "process.restart_backoff_seconds.1: Input should be a finite number"),
        ("[-1, 5]", "process.restart_backoff_seconds.0: Input should be greater than 0"),
        ("[0, 5]", "process.restart_backoff_seconds.0: Input should be greater than 0"),
        ("[5, 1]", "the first delay (5.0 s) must not exceed the second (1.0 s)"),
    ],
)
def test_restart_backoff_is_two_positive_finite_delays_in_order(
    tmp_path: Path, value: str, expected: str
) -> None:
    # A nan restart delay meant a crashed child was never restarted.
    path = tmp_path / "rb.yaml"
    path.write_text(f"process:\n  restart_backoff_seconds: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "rb.yaml:2" in str(info.value) and expected in str(info.value)
    with pytest.raises(ConfigError, match="RETURNBRIDGE_PROCESS__RESTART_BACKOFF_SECONDS"):
        load_settings(None, env={"RETURNBRIDGE_PROCESS__RESTART_BACKOFF_SECONDS": value})


def test_restart_backoff_accepts_equal_delays() -> None:
    settings = load_settings(None, env={"RETURNBRIDGE_PROCESS__RESTART_BACKOFF_SECONDS": "[2, 2]"})
    assert settings.process.restart_backoff_seconds == (2.0, 2.0)
