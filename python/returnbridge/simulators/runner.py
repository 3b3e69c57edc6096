"""Runs the three ERP simulators together and says how to connect to them (``simulate`` and ``serve``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from returnbridge.simulators import netsuite, oracle, sap
from returnbridge.simulators.kit import RunningSimulator, SimulatorKit
from returnbridge.simulators.sap_backend import SapSimulatorConfig
from returnbridge.simulators.settings import SimulatorSettings

#: Routing targets of the shipped routing file, served by these simulators on embedded defaults.
EMBEDDED_TARGETS = ("netsuite", "sap", "oracle_fusion")
SIMULATOR_NAMES = ("netsuite", "sap", "oracle")
DuplicatePolicy = Literal["refuse", "accept"]


@dataclass
class SimulatorConfigs:
    """Each simulator's settings; the defaults are the strict ones (see docs/erp/*.md, "Fidelity")."""

    netsuite: netsuite.NetSuiteSimulatorConfig = field(default_factory=netsuite.NetSuiteSimulatorConfig)
    sap: SapSimulatorConfig = field(default_factory=SapSimulatorConfig)
    oracle: oracle.OracleSimConfig = field(default_factory=oracle.OracleSimConfig)

    def with_duplicates(self, name: str, policy: DuplicatePolicy) -> SimulatorConfigs:
        """A copy with one simulator's duplicate policy set ("netsuite", "sap" or "oracle")."""
        if name == "netsuite":
            return SimulatorConfigs(
                self.netsuite.model_copy(update={"duplicates": policy}), self.sap, self.oracle
            )
        if name == "sap":
            return SimulatorConfigs(
                self.netsuite, self.sap.model_copy(update={"duplicates": policy}), self.oracle
            )
        if name == "oracle":
            return SimulatorConfigs(
                self.netsuite, self.sap, dataclasses.replace(self.oracle, duplicates=policy)
            )
        raise ValueError(f"unknown simulator {name!r}; expected one of {', '.join(SIMULATOR_NAMES)}")


@dataclass
class SimulatorSet:
    """Running simulators by name ("netsuite", "sap", "oracle"), their kits and matching connector configs."""

    running: dict[str, RunningSimulator] = field(default_factory=dict)
    kits: dict[str, SimulatorKit] = field(default_factory=dict)
    configs: SimulatorConfigs = field(default_factory=SimulatorConfigs)

    @property
    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.running.items()}

    def connector_configs(self) -> dict[str, dict[str, Any]]:
        """The ``connectors`` section that points every embedded target at its simulator."""
        return connector_configs_for(self.urls, self.configs)

    async def stop(self) -> None:
        for sim in self.running.values():
            await sim.stop()
        self.running.clear()


def connector_configs_for(urls: dict[str, str], configs: SimulatorConfigs) -> dict[str, dict[str, Any]]:
    """The ``connectors`` section for simulators at ``urls`` (by name), also when they run in another process."""
    sap_defaults = configs.sap
    oracle_defaults = configs.oracle
    return {
        "netsuite": netsuite.embedded_connector_config(urls["netsuite"], configs.netsuite),
        "sap": {
            "kind": "sap_odata",
            "base_url": urls["sap"],
            "sap_client": sap_defaults.sap_client,
            "auth": "basic",
            "username": sap_defaults.username,
            "password": sap_defaults.password,
        },
        "oracle_fusion": {
            "kind": "oracle_fusion",
            "base_url": urls["oracle"],
            "auth": "basic",
            "username": oracle_defaults.username,
            "password": oracle_defaults.password,
            # The newest version the simulated pod allows, as a client pinned to it would send.
            "rest_framework_version": str(max(oracle_defaults.framework_versions)),
        },
    }


async def start_simulators(
    settings: SimulatorSettings, configs: SimulatorConfigs | None = None
) -> SimulatorSet:
    """Start NetSuite, SAP and Oracle simulators on loopback; on failure the started ones are stopped."""
    configs = configs or SimulatorConfigs()
    result = SimulatorSet(configs=configs)
    apps = {
        "netsuite": (netsuite.create_app(configs.netsuite), settings.netsuite_port),
        "sap": (sap.create_app(configs.sap), settings.sap_port),
        "oracle": (oracle.create_app(configs.oracle), settings.oracle_port),
    }
    try:
        for name, ((app, kit), port) in apps.items():
            result.running[name] = await RunningSimulator(app, settings.host, port).start()
            result.kits[name] = kit
    except BaseException:
        await result.stop()
        raise
    return result
