"""ERP connectors: the interface, the registry of kinds, and (lazily imported) one module per ERP."""

from returnbridge.connectors.base import ChangeBatch, Connector, DocumentRequest, DocumentResult
from returnbridge.connectors.registry import (
    ConnectorConfig,
    build_connector,
    connector_config_union,
    kinds,
    parse_connector_config,
)

__all__ = [
    "ChangeBatch",
    "Connector",
    "ConnectorConfig",
    "DocumentRequest",
    "DocumentResult",
    "build_connector",
    "connector_config_union",
    "kinds",
    "parse_connector_config",
]
