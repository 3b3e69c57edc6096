"""Runs the three ERP simulators together and says how to connect to them (``simulate`` and ``serve``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from returnbridge.simulators import netsuite, oracle, sap
from returnbridge.simulators.kit import RunningSimulator, SimulatorKit
from returnbridge.simulators.sap_backend import SapSimulatorConfig
from returnbridge.simulators.settings import SimulatorSettings

#: Routing targets of the shipped routing file, served by these simulators on embedded defaults.
EMBEDDED_TARGETS = ("netsuite", "sap", "oracle_fusion")


@dataclass
class SimulatorSet:
    """Running simulators by name ("netsuite", "sap", "oracle"), their kits and matching connector configs."""

    running: dict[str, RunningSimulator] = field(default_factory=dict)
    kits: dict[str, SimulatorKit] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        return {name: sim.url for name, sim in self.running.items()}

    def connector_configs(self) -> dict[str, dict[str, Any]]:
        """The ``connectors`` section that points every embedded target at its simulator."""
        sap_defaults = SapSimulatorConfig()
        oracle_defaults = oracle.OracleSimConfig()
        return {
            "netsuite": netsuite.embedded_connector_config(self.running["netsuite"].url),
            "sap": {
                "kind": "sap_odata",
                "base_url": self.running["sap"].url,
                "sap_client": sap_defaults.sap_client,
                "auth": "basic",
                "username": sap_defaults.username,
                "password": sap_defaults.password,
            },
            "oracle_fusion": {
                "kind": "oracle_fusion",
                "base_url": self.running["oracle"].url,
                "auth": "basic",
                "username": oracle_defaults.username,
                "password": oracle_defaults.password,
            },
        }

    async def stop(self) -> None:
        for sim in self.running.values():
            await sim.stop()
        self.running.clear()


async def start_simulators(settings: SimulatorSettings) -> SimulatorSet:
    """Start NetSuite, SAP and Oracle simulators on loopback; on failure the started ones are stopped."""
    result = SimulatorSet()
    apps = {
        "netsuite": (netsuite.create_app(), settings.netsuite_port),
        "sap": (sap.create_app(), settings.sap_port),
        "oracle": (oracle.create_app(), settings.oracle_port),
    }
    try:
        for name, ((app, kit), port) in apps.items():
            result.running[name] = await RunningSimulator(app, settings.host, port).start()
            result.kits[name] = kit
    except BaseException:
        await result.stop()
        raise
    return result
