#!/usr/bin/env python3
"""Write the compiled form of the engine golden cases so `cargo test` can run them without Python.

For each ``tests/mapping/cases/ops/<case>/`` (``spec.yaml``, ``input.json``, ``expected.json`` or
``expected_error.txt``) this writes ``compiled/spec.json`` (normalized spec), ``compiled/input.bin`` (the bytes
the mapper receives) and, for successes, ``compiled/expected.bin``; plus ``cases/ops/descriptors.bin``.
``--check`` writes nothing and exits 1 when any committed file differs (drift).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from google.protobuf import json_format, message_factory

from returnbridge.api.v1 import returns_pb2
from returnbridge.mapping.registry import descriptor_set, dynamic_types, source_from_spec
from returnbridge.mapping.spec import Spec, load_spec_file

CASES = Path(__file__).resolve().parent.parent / "tests" / "mapping" / "cases" / "ops"


def compiled_files(case: Path) -> dict[Path, bytes]:
    """The files `compile_cases` writes for one case, by path."""
    model, info = load_spec_file(case / "spec.yaml")
    if not isinstance(model, Spec):
        raise SystemExit(f"{case}: spec.yaml must be a full spec")
    source = source_from_spec(f"ops/{case.name}", model, info)
    raw = (case / "input.json").read_bytes()
    if model.direction == "outbound":
        document = json_format.Parse(raw, returns_pb2.ReturnOrder()).SerializeToString(deterministic=True)
    else:
        document = raw
    out = {case / "compiled" / "spec.json": source.normalized(), case / "compiled" / "input.bin": document}
    expected = case / "expected.json"
    if expected.exists():
        text = expected.read_bytes()
        if model.direction == "outbound":
            out[case / "compiled" / "expected.bin"] = text.rstrip(b"\n")
        else:
            from returnbridge.mapping.reference import ReferenceMapper

            pool = ReferenceMapper(source.normalized(), descriptor_set()).pool
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(model.output))
            msg = json_format.Parse(text, cls())
            out[case / "compiled" / "expected.bin"] = msg.SerializeToString(deterministic=True)
    return out


def all_files() -> dict[Path, bytes]:
    files = {CASES / "descriptors.bin": descriptor_set()}
    for case in sorted(p for p in CASES.iterdir() if (p / "spec.yaml").is_file()):
        files.update(compiled_files(case))
    return files


def _broken_with_committed_descriptors() -> list[Path]:
    """Cases whose committed compiled files do not give the expected result with the committed descriptors."""
    from returnbridge import _mapper

    descriptors = (CASES / "descriptors.bin").read_bytes()
    broken = []
    for case in sorted(p for p in CASES.iterdir() if (p / "compiled").is_dir()):
        compiled = case / "compiled"
        try:
            mapper = _mapper.Mapper((compiled / "spec.json").read_bytes(), descriptors, dynamic_types())
            result: bytes | str = mapper.translate((compiled / "input.bin").read_bytes())
        except (_mapper.SpecCompileError, _mapper.TranslateFailure) as exc:
            result = "|".join(str(a) for a in exc.args)
        expected_file = compiled / "expected.bin"
        expected: bytes | str = (
            expected_file.read_bytes()
            if expected_file.exists()
            else (case / "expected_error.txt").read_text(encoding="utf-8").rstrip("\n")
        )
        if result != expected:
            broken.append(case / "compiled")
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when committed compiled files drift")
    args = parser.parse_args(argv)
    drift = []
    for path, data in all_files().items():
        if args.check:
            # Other teams change the protos all day: the committed descriptor set only has to keep the committed
            # cases working (checked below), not be byte-identical to today's full API.
            if path.name == "descriptors.bin":
                continue
            if not path.exists() or path.read_bytes() != data:
                drift.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    if args.check:
        drift.extend(_broken_with_committed_descriptors())
    if drift:
        print("compiled golden cases are stale; run scripts/compile_cases.py:", file=sys.stderr)
        for path in drift:
            print(f"  {path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
