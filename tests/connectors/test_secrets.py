"""The one secret reader: precedence env > file > inline, line endings, PEM keys, and the errors it raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from returnbridge.connectors.netsuite import NetSuiteConfig, NetSuiteConnector
from returnbridge.connectors.secrets import read_secret
from returnbridge.errors import ConfigError


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_TEST_SECRET", "from-env")
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    assert read_secret(None, "NS_TEST_SECRET", None, name="s").get_secret_value() == "from-env"
    assert read_secret(None, None, secret_file, name="s").get_secret_value() == "from-file"
    pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n"
    (tmp_path / "key.pem").write_text(pem)
    assert read_secret(None, None, tmp_path / "key.pem", name="k").get_secret_value() == pem
    with pytest.raises(ConfigError, match="NS_MISSING_SECRET"):
        read_secret(None, "NS_MISSING_SECRET", None, name="s")
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(None, None, tmp_path / "nope", name="s")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_secret(None, None, tmp_path / "empty", name="s")

    config = NetSuiteConfig.model_validate(
        {
            "account_id": "1",
            "base_url": "http://127.0.0.1:9",
            "auth": {
                "method": "tba",
                "consumer_key": "ck",
                "consumer_secret_env": "NS_TEST_SECRET",
                "token_id": "t",
                "token_secret_file": str(secret_file),
            },
        }
    )
    connector = NetSuiteConnector(config)
    assert "from-env" not in repr(connector) and "from-file" not in repr(connector._auth)


def test_precedence_is_env_then_file_then_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_TEST_PRECEDENCE", "env")
    (tmp_path / "s").write_text("file\n")
    inline = SecretStr("inline")
    assert read_secret(inline, "RB_TEST_PRECEDENCE", tmp_path / "s", name="s").get_secret_value() == "env"
    assert read_secret(inline, None, tmp_path / "s", name="s").get_secret_value() == "file"
    assert read_secret(inline, None, None, name="s").get_secret_value() == "inline"


def test_no_source_and_empty_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="set pw_env, pw_file or pw"):
        read_secret(None, None, None, name="pw")
    monkeypatch.setenv("RB_TEST_BLANK", "")
    with pytest.raises(ConfigError, match="empty"):
        read_secret(None, "RB_TEST_BLANK", None, name="pw")
    with pytest.raises(ConfigError, match="empty"):
        read_secret(SecretStr("  "), None, None, name="pw")


def test_no_connector_reads_the_environment_itself() -> None:
    # Every connector goes through read_secret; a second copy of the logic would drift in precedence.
    package = Path(__file__).parents[2] / "python" / "returnbridge" / "connectors"
    offenders = [
        path.name
        for path in sorted(package.glob("*.py"))
        if path.name != "secrets.py"
        and ("os.environ" in (text := path.read_text(encoding="utf-8")) or "read_text(" in text)
    ]
    assert offenders == []
