"""The connector registry: kinds by name, lazy imports, config validation errors, building connectors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pydantic
import pytest
from pydantic import BaseModel

import returnbridge.connectors as connectors_pkg
from returnbridge.connectors.base import ChangeBatch, DocumentRequest, DocumentResult
from returnbridge.connectors.registry import (
    ConnectorConfig,
    ConnectorKind,
    build_connector,
    connector_config_union,
    kind_info,
    kinds,
    parse_connector_config,
    register_kind,
    unregister_kind,
)
from returnbridge.errors import ConfigError


class EchoConfig(BaseModel):
    """Config of a registry-test kind."""

    model_config = pydantic.ConfigDict(extra="forbid")
    kind: Literal["echo_test"] = "echo_test"
    base_url: str
    max_concurrency: int = pydantic.Field(default=5, ge=1)


class EchoConnector:
    """Minimal Connector used only to prove the registry wires config -> class."""

    kind = "echo_test"
    erp = "echo"

    def __init__(self, config: EchoConfig, *, label: str = "") -> None:
        self.config = config
        self.label = label

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        return DocumentResult(request.document_type, "1", request.external_reference)

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        return None

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        return DocumentResult(document_type, document_id)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        return ChangeBatch([], cursor or "0")

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        return ChangeBatch([], cursor or "0")

    async def aclose(self) -> None:
        return None


@pytest.fixture
def echo_kind() -> Iterator[ConnectorKind]:
    kind = ConnectorKind("echo_test", __name__, "EchoConfig", "EchoConnector")
    register_kind(kind)
    try:
        yield kind
    finally:
        unregister_kind("echo_test")


def test_contract_kinds_are_registered() -> None:
    assert {"netsuite", "sap_odata", "sap_rfc", "oracle_fusion", "oracle_ebs"} <= set(kinds())
    assert kind_info("netsuite").config_class == "NetSuiteConfig"
    assert kind_info("sap_odata").config_class == "SapODataConfig"
    assert kind_info("sap_rfc").config_class == "SapRfcConfig"
    assert kind_info("oracle_fusion").config_class == "OracleFusionConfig"
    assert kind_info("oracle_ebs").config_class == "OracleEbsConfig"


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown connector kind 'sapp'.*netsuite.*sap_odata"):
        parse_connector_config({"kind": "sapp"})


def test_missing_kind_is_refused_with_source() -> None:
    with pytest.raises(ConfigError, match=r"^config.yaml connectors.x: connector config needs 'kind'"):
        parse_connector_config({"base_url": "http://127.0.0.1"}, source="config.yaml connectors.x")


def test_non_mapping_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_connector_config(["kind", "netsuite"])  # type: ignore[arg-type]


def test_parse_and_build(echo_kind: ConnectorKind) -> None:
    config = parse_connector_config({"kind": "echo_test", "base_url": "http://127.0.0.1:1"})
    assert isinstance(config, EchoConfig)
    connector = build_connector(config, label="x")
    assert isinstance(connector, EchoConnector)
    assert connector.config is config and connector.label == "x"
    # A raw mapping is accepted too.
    assert isinstance(build_connector({"kind": "echo_test", "base_url": "http://h"}), EchoConnector)


def test_field_errors_name_the_field(echo_kind: ConnectorKind) -> None:
    with pytest.raises(
        ConfigError,
        match=r"invalid echo_test connector config: max_concurrency: .*greater than or equal to 1",
    ):
        parse_connector_config({"kind": "echo_test", "base_url": "http://h", "max_concurrency": 0})
    with pytest.raises(ConfigError, match=r"bogus: Extra inputs are not permitted"):
        parse_connector_config({"kind": "echo_test", "base_url": "http://h", "bogus": 1})


def test_register_refuses_shadowing(echo_kind: ConnectorKind) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_kind(ConnectorKind("echo_test", "x", "Y", "Z"))


def test_unimportable_module_is_a_config_error() -> None:
    register_kind(ConnectorKind("ghost_test", "returnbridge.connectors.no_such_module", "C", "K"))
    try:
        with pytest.raises(ConfigError, match=r"kind 'ghost_test' is not available: cannot import"):
            parse_connector_config({"kind": "ghost_test"})
    finally:
        unregister_kind("ghost_test")


def test_wrong_class_names_are_config_errors() -> None:
    register_kind(ConnectorKind("bent_test", __name__, "EchoConnector", "EchoConnector"))
    try:
        with pytest.raises(ConfigError, match="is not a pydantic model"):
            parse_connector_config({"kind": "bent_test"})
    finally:
        unregister_kind("bent_test")


def test_connector_config_field_type_resolves_lazily(echo_kind: ConnectorKind) -> None:
    class Settings(BaseModel):
        connectors: dict[str, ConnectorConfig]

    settings = Settings.model_validate({"connectors": {"a": {"kind": "echo_test", "base_url": "http://h"}}})
    assert isinstance(settings.connectors["a"], EchoConfig)
    with pytest.raises(pydantic.ValidationError, match=r"connectors\.b[\s\S]*unknown connector kind 'nope'"):
        Settings.model_validate({"connectors": {"b": {"kind": "nope"}}})


def test_package_exports() -> None:
    assert sorted(connectors_pkg.__all__) == [
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


@pytest.mark.parametrize("kind", ["netsuite", "sap_odata", "sap_rfc", "oracle_fusion", "oracle_ebs"])
def test_contract_kinds_resolve_to_real_classes(kind: str) -> None:
    info = kind_info(kind)
    model = info.config_model()
    assert model.model_fields["kind"].default == kind or kind in str(model.model_fields["kind"].annotation)
    assert isinstance(info.connector_type(), type)


def test_config_union_discriminates_on_kind() -> None:
    adapter = pydantic.TypeAdapter(connector_config_union())
    netsuite = adapter.validate_python(
        {
            "kind": "netsuite",
            "account_id": "1",
            "auth": {
                "method": "tba",
                "consumer_key": "k",
                "consumer_secret": "s",
                "token_id": "t",
                "token_secret": "s",
            },
        }
    )
    assert type(netsuite).__name__ == "NetSuiteConfig"
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python({"kind": "nope"})
