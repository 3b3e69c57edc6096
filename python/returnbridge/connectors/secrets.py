"""The one way a connector reads a secret: environment variable, else file, else the inline config value.

Precedence (the first one set wins): ``<name>_env`` (the variable must exist), ``<name>_file`` (read as UTF-8;
a trailing line ending is dropped, except from PEM keys, which keep theirs), then the inline ``<name>``.
An empty secret is refused, so a blank variable or file cannot silently authenticate as "".
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from returnbridge.errors import ConfigError

__all__ = ["read_secret"]


def read_secret(inline: SecretStr | None, env: str | None, file: Path | None, *, name: str) -> SecretStr:
    """The secret ``name`` from the first source given: environment variable, file, inline value.

    Args:
        inline: the value written in the config (kept as SecretStr so it never shows in reprs).
        env: name of the environment variable holding it.
        file: path of a file holding it (mounted secrets).
        name: what it is, for errors (``"sap_odata password"``); never the value.

    Raises:
        ConfigError: no source, an unset variable, an unreadable file, or an empty secret.
    """
    if env:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{name}: environment variable {env!r} is not set")
    elif file is not None:
        try:
            value = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read {str(file)!r}: {exc.strerror}") from exc
        # Secret files usually end with a newline that is not part of the secret (PEM keys keep theirs inside).
        value = value if value.lstrip().startswith("-----BEGIN") else value.strip("\r\n")
    elif inline is not None:
        value = inline.get_secret_value()
    else:
        raise ConfigError(f"{name}: set {name}_env, {name}_file or {name}")
    if not value.strip():
        raise ConfigError(f"{name}: the secret is empty")
    return SecretStr(value)
