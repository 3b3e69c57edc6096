"""Runs the conformance suite against every harness found in tests/connectors/harnesses/."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

import connectors.harnesses as harness_package
from connectors.conformance import ConnectorConformance
from connectors.harness import ConnectorHarness, HarnessFactory, harness_id


class _BrokenHarnessModule:
    """Stands in for a harness module that failed to import, so its tests fail loudly and others run."""

    def __init__(self, module: str, error: BaseException) -> None:
        self.module = module
        self.error = error

    def __call__(self) -> ConnectorHarness:
        raise RuntimeError(f"harness module {self.module} failed to import: {self.error!r}") from self.error


def discover() -> list[Any]:
    params: list[Any] = []
    for info in sorted(pkgutil.iter_modules(harness_package.__path__), key=lambda m: m.name):
        module_name = f"{harness_package.__name__}.{info.name}"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001  -- any import failure must surface as a failing test
            params.append(
                pytest.param(_BrokenHarnessModule(module_name, exc), id=f"{info.name}-import-error")
            )
            continue
        factories: list[HarnessFactory] = list(getattr(module, "HARNESSES", []))
        params.extend(pytest.param(factory, id=harness_id(factory)) for factory in factories)
    return params


@pytest.fixture(params=discover())
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[ConnectorHarness]:
    instance = request.param()
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


class TestConnectorConformance(ConnectorConformance):
    """Every connector, every behaviour."""
