"""Routing file model (pydantic) and loader; a bad file fails at load naming file, line and rule."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from returnbridge import safe_yaml
from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.enums import enum_value
from returnbridge.errors import RoutingError
from returnbridge.routing.flows import ErpName, Flow

DEFAULT_ROUTES = Path(__file__).with_name("default_routes.yaml")
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def _decimal(value: object) -> Decimal:
    if isinstance(value, float) or not _DECIMAL.match(str(value)):
        raise ValueError(f"{value!r} is not a decimal string such as '100.00' (quote it; floats are refused)")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal") from exc


class Target(BaseModel):
    """A named connector instance (the lead's connector config uses the same names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    erp: ErpName
    flow: str


class Region(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site_prefixes: tuple[str, ...] = ()


class Conditions(BaseModel):
    """All given conditions must hold; an omitted condition matches anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_type_any: tuple[str, ...] = ()
    product_type_all: tuple[str, ...] = ()
    customer_tier: tuple[str, ...] = ()
    return_type: tuple[str, ...] = ()
    event: tuple[str, ...] = ()
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    currency: tuple[str, ...] = ()
    tenant: tuple[str, ...] = ()
    region: tuple[str, ...] = ()

    @field_validator("amount_min", "amount_max", mode="before")
    @classmethod
    def _amount(cls, value: object) -> Decimal | None:
        return None if value is None else _decimal(value)

    @field_validator("return_type")
    @classmethod
    def _return_type(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            enum_value(returns_pb2.ReturnType, "RETURN_TYPE_", name)
        return tuple(v.upper() for v in value)

    @field_validator("event")
    @classmethod
    def _event(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            enum_value(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", name)
        return tuple(v.upper() for v in value)

    @model_validator(mode="after")
    def _range(self) -> Conditions:
        if self.amount_min is not None and self.amount_max is not None and self.amount_min > self.amount_max:
            raise ValueError(f"amount_min {self.amount_min} is above amount_max {self.amount_max}")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    when: Conditions = Conditions()
    target: str
    lane: str = "standard"


class DefaultRoute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str
    lane: str = "standard"


class RoutingConfig(BaseModel):
    """The whole routing file: targets, flows, regions, ordered rules and the required default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: dict[str, Target]
    flows: dict[str, Flow]
    # Custom field on the return holding its region; when absent the first line's site prefix decides.
    region_field: str = "region"
    regions: dict[str, Region] = {}
    lanes: tuple[str, ...] = ("standard", "priority", "bulk")
    rules: tuple[Rule, ...] = ()
    default: DefaultRoute

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        for name, target in self.targets.items():
            if not re.match(r"^[A-Za-z0-9_-]{1,64}$", name):
                raise ValueError(f"target name {name!r} must be a subject token ([A-Za-z0-9_-])")
            flow = self.flows.get(target.flow)
            if flow is None:
                raise ValueError(f"target {name!r} names unknown flow {target.flow!r}")
            if flow.erp != target.erp:
                raise ValueError(f"target {name!r} is {target.erp} but flow {target.flow!r} is {flow.erp}")
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
            self._check_route(f"rule {rule.name!r}", rule.target, rule.lane, rule.when)
        self._check_route("default", self.default.target, self.default.lane, None)
        return self

    def _check_route(self, where: str, target: str, lane: str, when: Conditions | None) -> None:
        if target not in self.targets:
            raise ValueError(f"{where}: unknown target {target!r} (known: {sorted(self.targets)})")
        if lane not in self.lanes:
            raise ValueError(f"{where}: unknown lane {lane!r} (known: {list(self.lanes)})")
        if when is not None:
            for region in when.region:
                if region not in self.regions:
                    raise ValueError(f"{where}: unknown region {region!r} (known: {sorted(self.regions)})")


def _node_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    """1-based line of the deepest YAML node along a pydantic error location."""
    line = node.start_mark.line + 1 if node is not None else 0
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            found = node.value[part]
        else:
            found = None
        if found is None:
            break
        node = found
        line = node.start_mark.line + 1
    return line


def _rule_name(data: Any, loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, dict):
        rules = data.get("rules") or []
        if loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            return str(rules[loc[1]].get("name", f"#{loc[1] + 1}"))
        return f"#{loc[1] + 1}"
    return ""


def load_routing_text(text: str, file_name: str = "<routing>") -> RoutingConfig:
    """Parse and validate a routing file; raises RoutingError ``file:line: rule 'x': problem``."""
    try:
        data, node = safe_yaml.load_with_node(text, safe_yaml.FILE_LIMITS)
    except safe_yaml.YamlLimitError as exc:
        raise RoutingError(f"{file_name}:{exc.line}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise RoutingError(f"{file_name}:{line}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RoutingError(
            f"{file_name}:1: routing file must be a mapping with targets, flows, rules, default"
        )
    try:
        return RoutingConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            rule = _rule_name(data, loc)
            where = f"{file_name}:{_node_line(node, loc)}"
            field = ".".join(str(p) for p in loc) or "(file)"
            problems.append(f"{where}: {'rule ' + repr(rule) + ': ' if rule else ''}{field}: {error['msg']}")
        raise RoutingError("invalid routing file:\n  " + "\n  ".join(problems)) from exc


class RoutingSettings(BaseModel):
    """The ``routing`` config section: which routing file to load (None = the shipped default routes)."""

    model_config = ConfigDict(extra="forbid")

    file: Path | None = None

    def load(self) -> RoutingConfig:
        return load_routing_file(self.file)


def load_routing_file(path: str | Path | None = None) -> RoutingConfig:
    """Load a routing file; None loads the shipped default (targets ``netsuite``, ``sap``, ``oracle_fusion``)."""
    file = Path(path) if path is not None else DEFAULT_ROUTES
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RoutingError(f"{file}: cannot read routing file: {exc}") from None
    return load_routing_text(text, str(file))
