"""Connector kinds by name: YAML config -> pydantic model -> connector instance, importing modules lazily.

Each kind lives in its own module, which defines a pydantic config model with ``kind: Literal["<kind>"]``
and a connector class whose constructor takes that model as its only positional argument::

    connectors:
      netsuite-us:
        kind: netsuite
        account_id: "1234567"
        ...

    config = parse_connector_config(yaml_mapping)      # imports only the module of that kind
    connector = build_connector(config)                # -> Connector

``ConnectorConfig`` is an annotated type for pydantic fields (``dict[str, ConnectorConfig]``) that resolves
the kind lazily; ``connector_config_union()`` builds the full discriminated union (importing every kind
whose module is installed) for JSON schema generation.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union

import pydantic
from pydantic import BaseModel, BeforeValidator, Field

from returnbridge.connectors.base import Connector
from returnbridge.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """Where one kind lives: module path, config model class name and connector class name."""

    kind: str
    module: str
    config_class: str
    connector_class: str

    def load_module(self) -> Any:
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise ConfigError(
                f"connector kind {self.kind!r} is not available: cannot import {self.module} ({exc})"
            ) from exc

    def config_model(self) -> type[BaseModel]:
        model = getattr(self.load_module(), self.config_class, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigError(
                f"connector kind {self.kind!r}: {self.module}.{self.config_class} is not a pydantic model"
            )
        return model

    def connector_type(self) -> type[Any]:
        cls = getattr(self.load_module(), self.connector_class, None)
        if not isinstance(cls, type):
            raise ConfigError(
                f"connector kind {self.kind!r}: {self.module}.{self.connector_class} is not a class"
            )
        return cls


_KINDS: dict[str, ConnectorKind] = {
    k.kind: k
    for k in (
        ConnectorKind("netsuite", "returnbridge.connectors.netsuite", "NetSuiteConfig", "NetSuiteConnector"),
        ConnectorKind(
            "sap_odata", "returnbridge.connectors.sap_odata", "SapODataConfig", "SapODataConnector"
        ),
        ConnectorKind("sap_rfc", "returnbridge.connectors.sap_rfc", "SapRfcConfig", "SapRfcConnector"),
        ConnectorKind(
            "oracle_fusion",
            "returnbridge.connectors.oracle_fusion",
            "OracleFusionConfig",
            "OracleFusionConnector",
        ),
        ConnectorKind(
            "oracle_ebs", "returnbridge.connectors.oracle_ebs", "OracleEbsConfig", "OracleEbsConnector"
        ),
    )
}


def kinds() -> list[str]:
    """Registered kind names, sorted."""
    return sorted(_KINDS)


def kind_info(kind: str) -> ConnectorKind:
    """The registration of one kind; ConfigError naming the known kinds for an unknown one."""
    try:
        return _KINDS[kind]
    except KeyError:
        raise ConfigError(f"unknown connector kind {kind!r}; known kinds: {', '.join(kinds())}") from None


def register_kind(kind: ConnectorKind, *, replace: bool = False) -> None:
    """Add a kind (plugins, tests); refuses to shadow an existing kind unless ``replace``."""
    if kind.kind in _KINDS and not replace:
        raise ConfigError(f"connector kind {kind.kind!r} is already registered")
    _KINDS[kind.kind] = kind


def unregister_kind(kind: str) -> None:
    _KINDS.pop(kind, None)


def parse_connector_config(data: Mapping[str, Any] | BaseModel, *, source: str = "") -> BaseModel:
    """Validate one connector section into its kind's config model (imports only that kind's module).

    Args:
        data: the YAML mapping (must hold ``kind``), or an already-built config model (returned as is).
        source: where the section came from (file and key), used in error messages.

    Raises:
        ConfigError: unknown or missing kind, or the section fails the kind's model.
    """
    where = f"{source}: " if source else ""
    if isinstance(data, BaseModel):
        kind_info(str(getattr(data, "kind", "")))
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}connector config must be a mapping, got {type(data).__name__}")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{where}connector config needs 'kind' (one of: {', '.join(kinds())})")
    model = kind_info(kind).config_model()
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{where}invalid {kind} connector config: {problems}") from exc


def build_connector(config: BaseModel | Mapping[str, Any], **kwargs: Any) -> Connector:
    """Build the connector for a config model (or raw mapping); ``kwargs`` go to the connector constructor.

    Raises:
        ConfigError: unknown kind, invalid config, or the module is not importable.
    """
    model = parse_connector_config(config)
    info = kind_info(str(getattr(model, "kind", "")))
    connector = info.connector_type()(model, **kwargs)
    if not isinstance(connector, Connector):
        raise ConfigError(f"{info.module}.{info.connector_class} does not implement the Connector interface")
    return connector


def connector_config_union(*, only_available: bool = True) -> Any:
    """The discriminated union (on ``kind``) of every config model, for schemas and eager validation.

    Kinds whose module cannot be imported (e.g. an optional extra is missing) are left out when
    ``only_available``; otherwise their ConfigError propagates.
    """
    models: list[type[BaseModel]] = []
    for name in kinds():
        try:
            models.append(_KINDS[name].config_model())
        except ConfigError:
            if not only_available:
                raise
    if not models:
        raise ConfigError("no connector kind is importable")
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Field(discriminator="kind")]  # noqa: UP007


def _lazy_config(value: Any) -> Any:
    try:
        return parse_connector_config(value)
    except ConfigError as exc:
        # pydantic turns ValueError into a located validation error in the enclosing model.
        raise ValueError(str(exc)) from exc


#: Field type for config models: validates a mapping into the model of its ``kind``, lazily.
ConnectorConfig = Annotated[BaseModel, BeforeValidator(_lazy_config)]
