"""Mapping spec files: YAML (with line numbers) -> validated pydantic model -> normalized JSON for the engines.

The YAML loader lives here, with loading and normalizing; the step and expression grammar is in
``spec_ops.py``, the file models in ``spec_models.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from returnbridge import safe_yaml
from returnbridge.errors import SpecError
from returnbridge.mapping.spec_models import (
    DUPLICATE_RULE_ID,
    UNSET,
    Override,
    Rule,
    RulePatch,
    Spec,
    Table,
    TablePatch,
)

# The models are re-exported: ``mapping.spec`` is where callers load and name specs.
__all__ = [
    "UNSET",
    "Loc",
    "Override",
    "Rule",
    "RulePatch",
    "SourceInfo",
    "Spec",
    "Table",
    "TablePatch",
    "dump_json",
    "is_unset",
    "line_for",
    "load_spec_file",
    "load_yaml",
    "normalized_spec",
    "parse_spec_text",
    "resolve_table",
]
from returnbridge.mapping.spec_ops import const_value

Loc = tuple[str | int, ...]


# YAML 1.2 core schema (not PyYAML's 1.1): "NO", "on", "yes" stay strings; 1.50 becomes Decimal("1.50").
_INT = re.compile(r"[-+]?[0-9]+\Z")
_DEC = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_NULL = {"", "~", "null", "Null", "NULL"}


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style in ("'", '"', "|", ">"):
        return text
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.match(text):
        return int(text)
    if _DEC.match(text):
        return Decimal(text)
    return text


def load_yaml(text: str, file_name: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text into plain Python values plus a map from location tuple to 1-based line.

    Raises:
        SpecError: the text is not valid YAML, breaks a ``safe_yaml`` limit (anchors/aliases, size, nodes, depth,
            time), or uses tags this language does not allow.
    """
    try:
        node = safe_yaml.compose(text)
    except safe_yaml.YamlLimitError as exc:
        raise SpecError(str(exc), file=file_name, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise SpecError(
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=file_name, line=line
        ) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _convert(node, (), lines, file_name, 0), lines


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file_name: str, depth: int) -> Any:
    lines[loc] = node.start_mark.line + 1
    if depth > 64:
        raise SpecError("nesting deeper than 64 levels", file=file_name, line=lines[loc])
    if isinstance(node, yaml.ScalarNode):
        try:
            return _scalar(node)
        except ValueError:
            # int() refuses more than sys.get_int_max_str_digits() digits (4,300 by default).
            raise SpecError("integer with too many digits", file=file_name, line=lines[loc]) from None
    if isinstance(node, yaml.SequenceNode):
        return [_convert(child, (*loc, i), lines, file_name, depth + 1) for i, child in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(
                    "mapping keys must be scalars", file=file_name, line=key_node.start_mark.line + 1
                )
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(
                    "YAML merge keys (<<) are not supported",
                    file=file_name,
                    line=key_node.start_mark.line + 1,
                )
            # Keys are always the literal text, so a table key like NO or 1.0 is the string it looks like.
            key = key_node.value
            if key in out:
                raise SpecError(f"duplicate key {key!r}", file=file_name, line=key_node.start_mark.line + 1)
            out[key] = _convert(value_node, (*loc, key), lines, file_name, depth + 1)
        return out
    raise SpecError("unsupported YAML node", file=file_name, line=lines[loc])


def line_for(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of the deepest known prefix of ``loc`` (pydantic error locations may point past YAML nodes)."""
    for end in range(len(loc), -1, -1):
        hit = lines.get(tuple(loc[:end]))
        if hit is not None:
            return hit
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceInfo:
    """Where a spec came from: file name, raw YAML data and the line of every YAML location."""

    file: str
    lines: dict[Loc, int]
    base_dir: Path | None
    raw: Any = None

    def rule_lines(self) -> dict[str, int]:
        """Line of each rule id declared in this file (nested rules and override lists included)."""
        out: dict[str, int] = {}
        self._collect(self.raw, (), out)
        return out

    def _collect(self, node: Any, loc: Loc, out: dict[str, int]) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("id"), str) and ("target" in node or "each" in node):
                out.setdefault(node["id"], line_for(self.lines, loc))
            for key, child in node.items():
                self._collect(child, (*loc, key), out)
        elif isinstance(node, list):
            for i, child in enumerate(node):
                self._collect(child, (*loc, i), out)


def _pydantic_to_spec_error(exc: PydanticValidationError, info: SourceInfo, raw: Any) -> SpecError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    if first["type"] == DUPLICATE_RULE_ID:
        rule_id = str((first.get("ctx") or {}).get("rule_id", ""))
        dup_loc = _second_rule_loc(raw.get("rules") if isinstance(raw, dict) else None, ("rules",), rule_id)
        return SpecError(
            f"duplicate rule id {rule_id!r}",
            file=info.file,
            line=line_for(info.lines, dup_loc or loc),
            rule=rule_id,
        )
    rule = _rule_id_at(raw, loc)
    where = ".".join(str(p) for p in loc)
    msg = first["msg"].removeprefix("Value error, ")
    return SpecError(
        f"{where}: {msg}" if where else msg, file=info.file, line=line_for(info.lines, loc), rule=rule
    )


def _second_rule_loc(rules: Any, loc: Loc, rule_id: str) -> Loc | None:
    """Location of the second rule declaring ``rule_id``, walking raw rules in ``Spec.walk_rules`` order."""
    seen = False

    def walk(node: Any, here: Loc) -> Loc | None:
        nonlocal seen
        if not isinstance(node, list):
            return None
        for i, item in enumerate(node):
            if not isinstance(item, dict):
                continue
            if item.get("id") == rule_id:
                if seen:
                    return (*here, i)
                seen = True
            found = walk(item.get("rules"), (*here, i, "rules"))
            if found is not None:
                return found
        return None

    return walk(rules, loc)


def _rule_id_at(raw: Any, loc: Loc) -> str:
    """The id of the innermost rule on the way to ``loc`` in the raw YAML data, if any."""
    found = ""
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
        if (
            isinstance(node, dict)
            and isinstance(node.get("id"), str)
            and ("target" in node or "each" in node)
        ):
            found = node["id"]
    return found


def parse_spec_text(
    text: str, file_name: str, base_dir: Path | None = None
) -> tuple[Spec | Override, SourceInfo]:
    """Validate YAML text as a spec or an override (by the presence of `override:`).

    Raises:
        SpecError: with file, line and rule id of the first problem.
    """
    raw, lines = load_yaml(text, file_name)
    info = SourceInfo(file_name, lines, base_dir, raw)
    if not isinstance(raw, dict):
        raise SpecError("a mapping spec must be a YAML mapping", file=file_name, line=1)
    model: type[Spec] | type[Override] = Override if "override" in raw else Spec
    try:
        return model.model_validate(raw), info
    except PydanticValidationError as exc:
        raise _pydantic_to_spec_error(exc, info, raw) from None


def load_spec_file(path: Path) -> tuple[Spec | Override, SourceInfo]:
    """Read and validate one spec or override file.

    Raises:
        SpecError: unreadable file or invalid content.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec: {exc}", file=str(path)) from None
    return parse_spec_text(text, str(path), path.parent)


def resolve_table(name: str, table: Table | TablePatch, info: SourceInfo) -> tuple[dict[str, Any], Any]:
    """Entries and fallback of a table, reading its file when it has one (path relative to the spec).

    Raises:
        SpecError: the file is missing, outside YAML, or not a mapping of entries.
    """
    entries: dict[str, Any] = dict(table.entries or {})
    fallback = table.fallback
    if table.file is not None:
        line = line_for(info.lines, ("tables", name, "file"))
        if info.base_dir is None:
            raise SpecError(
                f"table {name!r}: a file table needs a spec loaded from disk", file=info.file, line=line
            )
        path = info.base_dir / table.file
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(
                f"table {name!r}: cannot read {table.file}: {exc}", file=info.file, line=line
            ) from None
        data, _ = load_yaml(text, str(path))
        if isinstance(data, dict) and "entries" in data and set(data) <= {"entries", "fallback"}:
            if "fallback" in data and fallback is UNSET:
                fallback = data["fallback"]
            data = data["entries"]
        if not isinstance(data, dict):
            raise SpecError(
                f"table {name!r}: {table.file} must hold a mapping of entries", file=str(path), line=1
            )
        try:
            file_entries = {str(k): const_value(v) for k, v in data.items()}
            fallback = fallback if fallback is UNSET else const_value(fallback)
        except ValueError as exc:
            raise SpecError(f"table {name!r}: {exc}", file=str(path), line=1) from None
        entries = {**file_entries, **entries}
    return entries, fallback


def normalized_spec(
    mapping_id: str, spec: Spec, tables: dict[str, tuple[dict[str, Any], Any]]
) -> dict[str, Any]:
    """The JSON-ready normalized spec both engines compile (tables already resolved)."""
    return {
        "id": mapping_id,
        "direction": spec.direction,
        "input": spec.input,
        "output": spec.output,
        "tables": {
            name: {"entries": entries, "fallback": None if fb is UNSET else {"value": fb}}
            for name, (entries, fb) in tables.items()
        },
        "rules": [r.normalized() for r in spec.rules],
    }


def is_unset(value: Any) -> bool:
    """True for the marker of a YAML key that was not given (distinct from an explicit null)."""
    return value is UNSET


def dump_json(value: Any) -> bytes:
    """Serialize normalized data to compact JSON, writing Decimals as exact JSON numbers."""
    out: list[str] = []
    _dump(value, out)
    return "".join(out).encode("utf-8")


def _dump(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(format(value, "f"))
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _dump(v, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for i, (k, v) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(k), ensure_ascii=False))
            out.append(":")
            _dump(v, out)
        out.append("}")
    else:
        raise TypeError(f"cannot serialize {type(value).__name__}")
