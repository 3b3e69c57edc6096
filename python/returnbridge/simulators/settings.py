"""The ``simulators:`` config section, apart from the servers so reading config does not import them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SimulatorSettings"]


class SimulatorSettings(BaseModel):
    """The bundled ERP simulators; started by ``serve`` when ``enabled`` (the embedded default).

    With no ``connectors`` configured, ``serve`` points the targets ``netsuite``, ``sap`` and
    ``oracle_fusion`` of the shipped routing file at them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"
    netsuite_port: int = Field(default=0, ge=0, le=65535)
    sap_port: int = Field(default=0, ge=0, le=65535)
    oracle_port: int = Field(default=0, ge=0, le=65535)
