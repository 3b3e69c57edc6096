"""Mapping registry: loads the shipped packs, extra pack folders and override files, compiles every spec once."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from returnbridge.errors import SpecError

from .spec import (
    Override,
    Rule,
    SourceInfo,
    Spec,
    TablePatch,
    dump_json,
    is_unset,
    line_for,
    load_spec_file,
    normalized_spec,
    parse_spec_text,
    resolve_table,
)

PACKS_DIR = Path(__file__).parent / "packs"

TableData = tuple[dict[str, Any], Any]


@functools.cache
def dynamic_types() -> tuple[str, str, str]:
    """Full names of the API's dynamic-value messages (value, list, struct): the engine is told, not hard-coded."""
    from returnbridge.api.v1 import common_pb2

    return (
        common_pb2.CustomValue.DESCRIPTOR.full_name,
        common_pb2.CustomList.DESCRIPTOR.full_name,
        common_pb2.CustomStruct.DESCRIPTOR.full_name,
    )


def descriptor_set() -> bytes:
    """Serialized ``FileDescriptorSet`` of the v1 API (and its imports), as the Rust engine needs it."""
    from returnbridge.api.v1 import (
        admin_pb2,
        common_pb2,
        inventory_pb2,
        returns_pb2,
        sync_pb2,
        translation_pb2,
    )

    fds = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        fd.CopyToProto(fds.file.add())

    for module in (common_pb2, returns_pb2, inventory_pb2, sync_pb2, admin_pb2, translation_pb2):
        add(module.DESCRIPTOR)
    return fds.SerializeToString()


@dataclass
class SpecSource:
    """A validated spec with its resolved tables and where each rule was written (for error lines)."""

    mapping_id: str
    spec: Spec
    tables: dict[str, TableData]
    info: SourceInfo
    rule_origin: dict[str, tuple[str, int]] = field(default_factory=dict)

    def normalized(self) -> bytes:
        return dump_json(normalized_spec(self.mapping_id, self.spec, self.tables))

    def error_at(self, rule: str, message: str) -> SpecError:
        file, line = self.rule_origin.get(rule, (self.info.file, 0))
        return SpecError(message, file=file, line=line, rule=rule)


def source_from_spec(mapping_id: str, spec: Spec, info: SourceInfo) -> SpecSource:
    """Resolve a spec's tables and record rule origins.

    Raises:
        SpecError: a table file is missing or invalid, or ``mapping:`` disagrees with the id.
    """
    if spec.mapping is not None and mapping_id and spec.mapping != mapping_id:
        raise SpecError(
            f"mapping {spec.mapping!r} does not match the id {mapping_id!r} given by its path",
            file=info.file,
            line=line_for(info.lines, ("mapping",)),
        )
    tables = {name: resolve_table(name, table, info) for name, table in spec.tables.items()}
    lines = info.rule_lines()
    origin = {rule.id: (info.file, lines.get(rule.id, 0)) for rule in spec.walk_rules()}
    return SpecSource(mapping_id or spec.mapping or "", spec, tables, info, origin)


def apply_override(base: SpecSource, ov: Override, info: SourceInfo) -> SpecSource:
    """Layer an override on a base spec: replace/remove/add rules by id, patch tables.

    Raises:
        SpecError: pointing at the override file for an unknown id, a duplicate id or a missing table key.
    """
    lines = info.rule_lines()

    def err(message: str, loc: tuple[str | int, ...], rule: str = "") -> SpecError:
        return SpecError(message, file=info.file, line=line_for(info.lines, loc), rule=rule)

    existing = {r.id for r in base.spec.walk_rules()}
    replace = {r.id: r for r in ov.rules.replace}
    for i, rule_id in enumerate(replace):
        if rule_id not in existing:
            raise err(f"replace: no rule {rule_id!r} in {base.mapping_id}", ("rules", "replace", i), rule_id)
    remove = set(ov.rules.remove)
    for i, rule_id in enumerate(ov.rules.remove):
        if rule_id not in existing:
            raise err(f"remove: no rule {rule_id!r} in {base.mapping_id}", ("rules", "remove", i), rule_id)
    for parent in ov.rules.add_under:
        target = next((r for r in base.spec.walk_rules() if r.id == parent), None)
        if target is None or target.rules is None or parent in remove:
            raise err(
                f"add_under: {parent!r} is not an `each` rule with child rules",
                ("rules", "add_under", parent),
            )

    def rebuild(rules: Sequence[Rule]) -> list[Rule]:
        out: list[Rule] = []
        for rule in rules:
            if rule.id in remove:
                continue
            rule = replace.get(rule.id, rule)
            if rule.rules is not None and rule.id not in replace:
                children = rebuild(rule.rules) + list(ov.rules.add_under.get(rule.id, []))
                rule = rule.model_copy(update={"rules": children})
            out.append(rule)
        return out

    rules = rebuild(base.spec.rules) + list(ov.rules.add)
    seen: set[str] = set()
    for rule in (r for top in rules for r in top.walk()):
        if rule.id in seen:
            raise SpecError(
                f"duplicate rule id {rule.id!r} after applying the override",
                file=info.file,
                line=lines.get(rule.id, 0),
                rule=rule.id,
            )
        seen.add(rule.id)
    tables = dict(base.tables)
    table_models = dict(base.spec.tables)
    for name, patch in ov.tables.items():
        tables[name] = _patch_table(name, tables.get(name), patch, info, err)
        table_models.setdefault(name, base.spec.tables.get(name) or _placeholder_table())
    spec = base.spec.model_copy(update={"rules": rules, "tables": table_models})
    origin = dict(base.rule_origin)
    for rule in (r for top in rules for r in top.walk()):
        if rule.id in lines:
            origin[rule.id] = (info.file, lines[rule.id])
    return SpecSource(base.mapping_id, spec, tables, base.info, origin)


def _placeholder_table() -> Any:
    from .spec import Table

    return Table(entries={})


def _patch_table(
    name: str, current: TableData | None, patch: TablePatch, info: SourceInfo, err: Any
) -> TableData:
    entries, fallback = (dict(current[0]), current[1]) if current is not None else ({}, None)
    if current is None:
        from .spec import UNSET

        fallback = UNSET
    if patch.file is not None:
        file_entries, file_fallback = resolve_table(name, patch, info)
        entries.update(file_entries)
        if not is_unset(file_fallback):
            fallback = file_fallback
    else:
        entries.update(patch.entries)
        if not is_unset(patch.fallback):
            fallback = patch.fallback
    for i, key in enumerate(patch.remove):
        if key not in entries:
            raise err(f"table {name!r}: cannot remove missing key {key!r}", ("tables", name, "remove", i))
        del entries[key]
    return entries, fallback


def discover(packs_dirs: Sequence[Path]) -> dict[str, Path]:
    """Spec files of pack folders: ``<dir>/<pack>/<name>.yaml`` -> id ``<pack>/<name>``.

    Raises:
        SpecError: two folders define the same id.
    """
    found: dict[str, Path] = {}
    for root in packs_dirs:
        if not root.is_dir():
            raise SpecError(f"packs folder {root} does not exist", file=str(root))
        for pack in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            for path in sorted(pack.glob("*.yaml")):
                mapping_id = f"{pack.name}/{path.stem}"
                if mapping_id in found:
                    raise SpecError(
                        f"mapping {mapping_id!r} is defined twice (also in {found[mapping_id]}); use an override",
                        file=str(path),
                    )
                found[mapping_id] = path
    return found


def load_sources(overrides: Sequence[Path] = (), packs_dirs: Sequence[Path] = ()) -> dict[str, SpecSource]:
    """Validated sources of all specs with overrides applied (not compiled yet).

    Raises:
        SpecError: the first problem found.
    """
    sources: dict[str, SpecSource] = {}
    for mapping_id, path in discover([PACKS_DIR, *packs_dirs]).items():
        model, info = load_spec_file(path)
        if isinstance(model, Override):
            raise SpecError("an override file cannot live in a packs folder", file=str(path), line=1)
        sources[mapping_id] = source_from_spec(mapping_id, model, info)
    for path in overrides:
        model, info = load_spec_file(Path(path))
        if not isinstance(model, Override):
            raise SpecError("not an override file (needs `override: <mapping id>`)", file=str(path), line=1)
        base = sources.get(model.override)
        if base is None:
            raise SpecError(
                f"override of unknown mapping {model.override!r}",
                file=str(path),
                line=line_for(info.lines, ("override",)),
            )
        sources[model.override] = apply_override(base, model, info)
    return sources


@functools.cache
def shipped_sources() -> dict[str, SpecSource]:
    """Sources of the shipped packs, cached (used to validate override texts)."""
    return load_sources()


def check_source_text(text: str, file_name: str, base_mapping_id: str = "") -> SpecSource:
    """Validate spec or override text into a source ready to compile.

    Raises:
        SpecError: the first problem.
    """
    model, info = parse_spec_text(text, file_name)
    if isinstance(model, Override):
        mapping_id = base_mapping_id or model.override
        if base_mapping_id and model.override != base_mapping_id:
            raise SpecError(
                f"override names {model.override!r} but {base_mapping_id!r} was expected",
                file=file_name,
                line=line_for(info.lines, ("override",)),
            )
        base = shipped_sources().get(mapping_id)
        if base is None:
            raise SpecError(f"override of unknown mapping {mapping_id!r}", file=file_name, line=1)
        return apply_override(base, model, info)
    return source_from_spec(base_mapping_id or model.mapping or "", model, info)
