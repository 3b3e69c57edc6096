"""``returnbridge mapping check | test | explain``: work with mapping specs from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message

from returnbridge.api.v1 import (  # noqa: F401  (imported so their types are in the descriptor pool)
    common_pb2,
    inventory_pb2,
    returns_pb2,
    sync_pb2,
)
from returnbridge.errors import MappingError, NotFoundError, ReturnBridgeError, SpecError

_PROTOBUF_PREFIX = "application/x-protobuf"


def add_mapping_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register ``mapping check``, ``mapping test`` and ``mapping explain`` on an argparse subparsers object.

    Each sub-command sets ``func`` (taking the parsed namespace, returning the exit code 0/1).

    Returns:
        The ``mapping`` parser, so callers can add options of their own.
    """
    mapping = subparsers.add_parser("mapping", help="check, run and explain mapping specs")
    sub = mapping.add_subparsers(dest="mapping_command", required=True, metavar="ACTION")

    check = sub.add_parser(
        "check", help="validate spec, override or table files (errors name file:line and rule)"
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument("--base", default="", help="mapping id the files override (for tenant override files)")
    check.set_defaults(func=run_check)

    for name, helptext in (
        ("test", "translate one document and print the output"),
        ("explain", "show which rule produced each output field from which input path"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument(
            "spec", metavar="SPEC", help="mapping id (e.g. netsuite/return_authorization) or spec file"
        )
        cmd.add_argument(
            "--input",
            required=True,
            metavar="DOC",
            help="protobuf-JSON ReturnOrder for outbound specs, ERP JSON for inbound; '-' reads stdin",
        )
        cmd.add_argument("--packs-dir", type=Path, action="append", default=[], help="extra packs directory")
        cmd.add_argument("--override", type=Path, action="append", default=[], help="tenant override file")
        cmd.set_defaults(func=run_test if name == "test" else run_explain)
    return mapping


def _source_for_file(path: Path, base_mapping_id: str = "") -> Any:
    """A compile-ready source for a spec or override file on disk (table files resolve next to it).

    Raises:
        SpecError: unreadable file, invalid content, unknown base, or a table problem.
    """
    from returnbridge.mapping.registry import apply_override, shipped_sources, source_from_spec
    from returnbridge.mapping.spec import Override, load_spec_file

    model, info = load_spec_file(path)
    if isinstance(model, Override):
        if base_mapping_id and model.override != base_mapping_id:
            raise SpecError(
                f"override names {model.override!r} but {base_mapping_id!r} was expected",
                file=str(path),
                line=1,
            )
        base = shipped_sources().get(model.override)
        if base is None:
            raise SpecError(f"override of unknown mapping {model.override!r}", file=str(path), line=1)
        return apply_override(base, model, info)
    return source_from_spec(base_mapping_id or model.mapping or "", model, info)


def run_check(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Validate and compile each file; print ``ok FILE`` or ``file:line: rule ...: message`` per problem."""
    from returnbridge.mapping import Mapper

    out = out or sys.stdout
    err = err or sys.stderr
    failed = False
    for path in args.files:
        try:
            Mapper(_source_for_file(path, args.base))
        except SpecError as exc:
            print(str(exc), file=err)
            failed = True
        else:
            print(f"ok {path}", file=out)
    return 1 if failed else 0


def _load(args: argparse.Namespace) -> Any:
    """The mapper named by SPEC: a mapping id of the loaded registry, or a spec / override file compiled alone."""
    from returnbridge.mapping import Mapper, MappingRegistry

    spec = Path(args.spec)
    if spec.suffix in (".yaml", ".yml") or spec.exists():
        return Mapper(_source_for_file(spec))
    registry = MappingRegistry.load(overrides=args.override, packs_dirs=args.packs_dir)
    return registry.get(args.spec)


def _read_input(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read input {source}: {exc.strerror or exc}") from exc


def _document(mapper: Any, raw: bytes, source: str) -> bytes:
    if mapper.direction == "outbound":
        try:
            order = json_format.Parse(raw.decode("utf-8"), returns_pb2.ReturnOrder())
        except (json_format.ParseError, UnicodeDecodeError) as exc:
            raise MappingError(f"{source}: not a protobuf-JSON ReturnOrder: {exc}") from exc
        return order.SerializeToString(deterministic=True)
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MappingError(f"{source}: not valid JSON: {exc}") from exc
    return raw


def _render(output: bytes, content_type: str) -> str:
    """Outbound JSON is pretty-printed; inbound protobuf is shown as protobuf-JSON of its message type."""
    if content_type.startswith(_PROTOBUF_PREFIX):
        type_name = content_type.partition("messageType=")[2].strip()
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
        message: Message = message_factory.GetMessageClass(descriptor)()
        try:
            message.ParseFromString(output)
        except DecodeError as exc:
            raise MappingError(f"mapper produced bytes that are not a {type_name}: {exc}") from exc
        return json_format.MessageToJson(
            message, preserving_proto_field_name=True, indent=2, ensure_ascii=False
        )
    return json.dumps(json.loads(output), indent=2, ensure_ascii=False)


def _run(args: argparse.Namespace, explain: bool, out: TextIO, err: TextIO) -> int:
    from returnbridge.errors import TranslationError

    try:
        mapper = _load(args)
        document = _document(mapper, _read_input(args.input), args.input)
        if explain:
            output, entries = mapper.explain(document)
        else:
            output, entries = mapper.translate(document), []
    except TranslationError as exc:
        print(f"{args.spec}: rule {exc.rule!r} at {exc.path or '(document)'}: {exc.args[0]}", file=err)
        return 1
    except ReturnBridgeError as exc:
        print(f"{args.spec}: {exc}", file=err)
        return 1
    if not explain:
        print(_render(output, mapper.output_content_type), file=out)
        return 0
    width = max((len(e.output_path) for e in entries), default=0)
    for entry in entries:
        source = entry.input_path or "(constant)"
        print(f"{entry.output_path:<{width}}  <- {source}  [{entry.rule}]", file=out)
    return 0


def run_test(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``mapping test``: print the translated document."""
    return _run(args, False, out or sys.stdout, err or sys.stderr)


def run_explain(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``mapping explain``: print ``output_path <- input_path [rule]`` per output field."""
    return _run(args, True, out or sys.stdout, err or sys.stderr)
