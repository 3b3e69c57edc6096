"""ERP simulators: one real HTTP server per ERP (NetSuite, SAP, Oracle) with fault injection and inspection.

They check the connectors, so they share none of their code (an import contract keeps it so).
"""

from returnbridge.simulators.faults import CONTROL_PREFIX, FaultInjector, FaultPlan
from returnbridge.simulators.kit import RunningSimulator, SimulatorKit
from returnbridge.simulators.runner import EMBEDDED_TARGETS, SimulatorSet, start_simulators
from returnbridge.simulators.settings import SimulatorSettings

__all__ = [
    "CONTROL_PREFIX",
    "EMBEDDED_TARGETS",
    "FaultInjector",
    "FaultPlan",
    "RunningSimulator",
    "SimulatorKit",
    "SimulatorSet",
    "SimulatorSettings",
    "start_simulators",
]
