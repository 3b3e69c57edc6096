"""pyproject's ranges, the hashed locks and the generated code agree with each other.

Users `pip install` with pyproject's ranges, so a lower bound must be one the committed code really runs on;
developers and CI install the locks, so every locked version must lie inside those ranges.
"""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.version import Version

from helpers.locks import (
    DEV_LOCK,
    ROOT,
    RUNTIME_LOCK,
    canonical,
    grpc_generated_versions,
    pins,
    protobuf_runtime_demands,
)

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
DEV = [Requirement(r) for r in PROJECT["optional-dependencies"]["dev"]]


def _lower_bound(name: str) -> Version:
    req = next(r for r in RUNTIME if canonical(r.name) == name)
    lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    assert lows, f"{req} declares no lower bound"
    return max(lows)


def test_grpcio_lower_bound_is_what_the_generated_stubs_demand() -> None:
    demanded = max(Version(v) for v in grpc_generated_versions().values())
    assert _lower_bound("grpcio") >= demanded, (
        f"generated *_pb2_grpc.py refuse to import below grpcio {demanded}; raise the bound in pyproject.toml"
    )


def test_protobuf_range_is_what_the_generated_messages_demand() -> None:
    major, minor, patch = max(protobuf_runtime_demands().values())
    assert _lower_bound("protobuf") >= Version(f"{major}.{minor}.{patch}")
    req = next(r for r in RUNTIME if canonical(r.name) == "protobuf")
    # protobuf's runtime check refuses gencode from another major version.
    assert not req.specifier.contains(f"{major + 1}.0.0"), f"{req} admits protobuf {major + 1}"


def test_every_dependency_is_locked_inside_its_range() -> None:
    for lock, reqs in ((DEV_LOCK, RUNTIME + DEV), (RUNTIME_LOCK, RUNTIME)):
        locked = pins(lock)
        for req in reqs:
            if req.marker is not None and not req.marker.evaluate():
                continue
            version = locked.get(canonical(req.name))
            assert version, f"{req.name} is in pyproject.toml but not in {lock.name}: run `make lock`"
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock.name} pins {req.name}=={version}, outside pyproject's {req.specifier}: run `make lock`"
            )


def test_runtime_lock_agrees_with_dev_lock() -> None:
    """The wheel test installs the runtime lock: it must be the versions the test suite ran with."""
    dev, runtime = pins(DEV_LOCK), pins(RUNTIME_LOCK)
    differ = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert not differ, f"runtime.txt and dev.txt pin different versions: {differ}; run `make lock`"


def test_every_locked_package_has_hashes() -> None:
    """pip's --require-hashes refuses a lock line without one; say which, before install time."""
    for lock in (DEV_LOCK, RUNTIME_LOCK):
        lines = lock.read_text().splitlines()
        pinned = [i for i, line in enumerate(lines) if "==" in line and not line.startswith(("#", " "))]
        assert pinned, f"{lock.name} pins nothing"
        unhashed = [lines[i] for i in pinned if not lines[i + 1].strip().startswith("--hash=sha256:")]
        assert not unhashed, f"{lock.name} has packages without hashes: {unhashed}"


def test_the_environment_is_exactly_the_lock() -> None:
    """A package the lock does not name changes what mypy and the tests see (a stale venv once hid 32 mypy
    errors that a fresh one reports), so the test environment must hold the locked packages and nothing else."""
    locked = set(pins(DEV_LOCK)) | {"pip", "returnbridge"}
    installed = {canonical(d.metadata["Name"]) for d in metadata.distributions()}
    extra = sorted(installed - locked)
    assert not extra, f"installed but not locked: {extra}; recreate the venv: rm -rf .venv && make install"
