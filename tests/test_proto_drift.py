"""The committed generated code equals what `make proto` produces from proto/ now."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from helpers.locks import DEV_LOCK, ROOT, grpc_generated_versions, pins


def _generator_version() -> str:
    """The grpcio-tools the committed code was generated with: exactly the locked one."""
    locked = pins(DEV_LOCK).get("grpcio-tools")
    assert locked, f"grpcio-tools is not pinned in {DEV_LOCK.relative_to(ROOT)}"
    return locked


def test_installed_generator_is_the_locked_one() -> None:
    """A clear message instead of a wall of diffs when the environment was not installed from the lock."""
    expected, installed = _generator_version(), metadata.version("grpcio-tools")
    if installed != expected:
        pytest.fail(
            f"grpcio-tools {installed} is installed, but the generated code is tied to grpcio-tools {expected} "
            f"({DEV_LOCK.relative_to(ROOT)}). Run `make install` (installs the lock) instead of pip-installing "
            "tools by hand; `make lock UPGRADE=1` then `make proto` is the way to move the generator.",
            pytrace=False,
        )


def test_committed_code_names_the_locked_generator() -> None:
    expected = _generator_version()
    stale = {name: version for name, version in grpc_generated_versions().items() if version != expected}
    assert not stale, (
        f"generated with another grpcio-tools than the locked {expected}: {stale}; run `make proto` and commit"
    )


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    if metadata.version("grpcio-tools") != _generator_version():
        pytest.skip(
            "another grpcio-tools than the locked one is installed (see test_installed_generator_is_the_locked_one)"
        )
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run([str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)], check=True, env=env, cwd=ROOT)
    generated = tmp_path / "returnbridge" / "api" / "v1"
    committed = ROOT / "python" / "returnbridge" / "api" / "v1"
    names = sorted(
        p.name for p in generated.iterdir() if p.suffix in (".py", ".pyi") and p.name != "__init__.py"
    )
    assert names, "protoc produced nothing"
    committed_names = sorted(
        p.name for p in committed.iterdir() if p.suffix in (".py", ".pyi") and p.name != "__init__.py"
    )
    assert committed_names == names, "generated file set differs: run `make proto` and commit"
    drifted = [n for n in names if not filecmp.cmp(generated / n, committed / n, shallow=False)]
    assert not drifted, f"generated code drifted from proto/: {drifted}; run `make proto` and commit"


def test_protos_compile_without_python_specific_options(tmp_path: Path) -> None:
    """A descriptor set builds for all files at once, and no file relies on Python-only options."""
    out = tmp_path / "all.pb"
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "proto",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *protos,
        ],
        check=True,
        cwd=ROOT,
    )
    assert out.stat().st_size > 0
    for proto in protos:
        text = (ROOT / "proto" / proto).read_text()
        assert "py_generic_services" not in text
        assert "option java_package" in text and "option go_package" in text
