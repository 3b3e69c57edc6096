"""Reads the committed dependency locks (requirements/*.txt) and the generated code's version demands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.txt"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
GENERATED = ROOT / "python" / "returnbridge" / "api" / "v1"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def canonical(name: str) -> str:
    """PEP 503 name normalisation, so `PyYAML` and `pyyaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, str]:
    """Package -> exact version of every `name==version` line of a pip-compile lock."""
    return {canonical(name): version for name, version in _PIN.findall(lock.read_text())}


def grpc_generated_versions() -> dict[str, str]:
    """File -> the grpcio version each committed *_pb2_grpc.py demands (GRPC_GENERATED_VERSION)."""
    found = {}
    for path in sorted(GENERATED.glob("*_pb2_grpc.py")):
        match = re.search(r"^GRPC_GENERATED_VERSION = '([^']+)'", path.read_text(), re.MULTILINE)
        assert match, f"{path.name} has no GRPC_GENERATED_VERSION"
        found[path.name] = match.group(1)
    return found


def protobuf_runtime_demands() -> dict[str, tuple[int, int, int]]:
    """File -> the protobuf runtime (major, minor, patch) each committed *_pb2.py validates against."""
    found = {}
    pattern = re.compile(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),"
    )
    for path in sorted(GENERATED.glob("*_pb2.py")):
        match = pattern.search(path.read_text())
        assert match, f"{path.name} has no ValidateProtobufRuntimeVersion call"
        found[path.name] = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return found
