"""The pydantic models of a mapping spec file and of an override file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from returnbridge.mapping.spec_ops import (
    const_value,
    normalize_cond,
    normalize_expr,
    normalize_pipe,
    parse_path,
    parse_template,
)

RULE_ID = r"^[A-Za-z0-9_.:\-]+$"
_TARGET = re.compile(r"[^.\[\]\s]+(\.[^.\[\]\s]+)*\Z")
UNSET: Any = object()


class Rule(BaseModel):
    """One rule: a field rule (value source + pipe) or an `each` list rule (child rules or a scalar value)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    id: str = Field(pattern=RULE_ID, max_length=200)
    target: str
    source: str | None = None
    value: Any = UNSET
    template: str | None = None
    expr: Any = None
    pipe: list[Any] = Field(default_factory=list)
    when: Any = None
    otherwise: Any = None
    default: Any = None
    required: bool = False
    emit_null: bool = False
    custom_type: Literal["date"] | None = None
    each: str | None = None
    where: Any = None
    keep_empty: bool = False
    rules: list[Rule] | None = None

    @field_validator("target")
    @classmethod
    def _check_target(cls, v: str) -> str:
        if not _TARGET.match(v):
            raise ValueError(f"bad target {v!r}: dotted keys without brackets or spaces")
        return v

    @field_validator("source", "each")
    @classmethod
    def _check_path(cls, v: str | None, info: Any) -> str | None:
        if v is not None:
            parse_path(v, allow_wildcard=info.field_name == "each")
        return v

    @field_validator("template")
    @classmethod
    def _check_template(cls, v: str | None) -> str | None:
        if v is not None:
            parse_template(v)
        return v

    @field_validator("expr", "otherwise")
    @classmethod
    def _check_expr(cls, v: Any) -> Any:
        if v is not None:
            normalize_expr(v)
        return v

    @field_validator("when", "where")
    @classmethod
    def _check_cond(cls, v: Any) -> Any:
        if v is not None:
            normalize_cond(v)
        return v

    @field_validator("pipe")
    @classmethod
    def _check_pipe(cls, v: list[Any]) -> list[Any]:
        normalize_pipe(v)
        return v

    @field_validator("value", "default")
    @classmethod
    def _check_const(cls, v: Any) -> Any:
        return v if v is UNSET else const_value(v)

    @model_validator(mode="after")
    def _check_shape(self) -> Rule:
        sources = [n for n in ("source", "template", "expr") if getattr(self, n) is not None]
        if self.value is not UNSET:
            sources.append("value")
        if len(sources) > 1:
            raise ValueError(f"rule has more than one value source: {sources}")
        if self.each is None:
            if not sources:
                raise ValueError("rule needs one of source, value, template, expr (or each)")
            if self.rules is not None or self.where is not None or self.keep_empty:
                raise ValueError("rules/where/keep_empty are only allowed with `each`")
        else:
            if (self.rules is None) == (not sources):
                raise ValueError("an `each` rule needs either child `rules` or one value source, not both")
            if self.rules is not None and (self.pipe or self.default is not None or self.when is not None):
                raise ValueError("an `each` rule with child rules takes no pipe/default/when (use `where`)")
            if self.otherwise is not None or self.emit_null:
                raise ValueError("otherwise/emit_null are not allowed on `each` rules")
        if self.otherwise is not None and self.when is None:
            raise ValueError("`otherwise` needs `when`")
        return self

    def walk(self) -> Iterator[Rule]:
        """This rule and all nested rules, depth first."""
        yield self
        for child in self.rules or ():
            yield from child.walk()

    def normalized(self) -> dict[str, Any]:
        """The JSON-ready form the engines compile."""
        if self.source is not None:
            value: dict[str, Any] | None = {"path": parse_path(self.source)}
        elif self.template is not None:
            value = {"template": parse_template(self.template)}
        elif self.expr is not None:
            value = normalize_expr(self.expr)
        elif self.value is not UNSET:
            value = {"const": self.value}
        else:
            value = None
        return {
            "id": self.id,
            "target": self.target.split("."),
            "value": value,
            "pipe": normalize_pipe(self.pipe),
            "when": normalize_cond(self.when) if self.when is not None else None,
            "otherwise": normalize_expr(self.otherwise) if self.otherwise is not None else None,
            "default": self.default,
            "required": self.required,
            "emit_null": self.emit_null,
            "custom_type": self.custom_type,
            "each": parse_path(self.each, allow_wildcard=True) if self.each is not None else None,
            "where": normalize_cond(self.where) if self.where is not None else None,
            "keep_empty": self.keep_empty,
            "rules": [r.normalized() for r in self.rules] if self.rules is not None else None,
        }


class Table(BaseModel):
    """A lookup table: inline entries or a file next to the spec, with an optional fallback."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entries: dict[str, Any] | None = None
    file: str | None = None
    fallback: Any = UNSET

    @field_validator("entries")
    @classmethod
    def _check_entries(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else {str(k): const_value(x) for k, x in v.items()}

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, v: Any) -> Any:
        return v if v is UNSET else const_value(v)

    @model_validator(mode="after")
    def _check_shape(self) -> Table:
        if (self.entries is None) == (self.file is None):
            raise ValueError("a table needs exactly one of `entries` or `file`")
        return self


DUPLICATE_RULE_ID = "duplicate_rule_id"


class Spec(BaseModel):
    """A complete mapping spec file."""

    model_config = ConfigDict(extra="forbid")

    mapping: str | None = Field(default=None, pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    description: str = ""
    direction: Literal["outbound", "inbound"]
    input: str
    output: str
    tables: dict[str, Table] = Field(default_factory=dict)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_shape(self) -> Spec:
        if self.direction == "outbound":
            if self.output != "json" or self.input == "json":
                raise ValueError("an outbound spec reads a message type (input) and writes `output: json`")
        elif self.input != "json" or self.output == "json":
            raise ValueError("an inbound spec reads `input: json` and writes a message type (output)")
        seen: set[str] = set()
        for rule in self.walk_rules():
            if rule.id in seen:
                # A typed error so the loader can point at the duplicate's line, not the spec's first line.
                raise PydanticCustomError(
                    DUPLICATE_RULE_ID, "duplicate rule id {rule_id!r}", {"rule_id": rule.id}
                )
            seen.add(rule.id)
        return self

    def walk_rules(self) -> Iterator[Rule]:
        for rule in self.rules:
            yield from rule.walk()


class TablePatch(BaseModel):
    """Changes an override makes to one table."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entries: dict[str, Any] = Field(default_factory=dict)
    file: str | None = None
    remove: list[str] = Field(default_factory=list)
    fallback: Any = UNSET

    @field_validator("entries")
    @classmethod
    def _check_entries(cls, v: dict[str, Any]) -> dict[str, Any]:
        return {str(k): const_value(x) for k, x in v.items()}

    @field_validator("fallback")
    @classmethod
    def _check_fallback(cls, v: Any) -> Any:
        return v if v is UNSET else const_value(v)


class RulePatch(BaseModel):
    """Rule changes of an override: replace/remove by id, add at the top level or under an `each` rule."""

    model_config = ConfigDict(extra="forbid")

    replace: list[Rule] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    add: list[Rule] = Field(default_factory=list)
    add_under: dict[str, list[Rule]] = Field(default_factory=dict)


class Override(BaseModel):
    """An override file layered on a shipped spec."""

    model_config = ConfigDict(extra="forbid")

    override: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    description: str = ""
    tables: dict[str, TablePatch] = Field(default_factory=dict)
    rules: RulePatch = Field(default_factory=RulePatch)
