"""``returnbridge routes check FILE`` and ``routes explain FILE --input RETURN_JSON``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from returnbridge import exactjson
from returnbridge.api.v1 import returns_pb2
from returnbridge.errors import ValidationError
from returnbridge.routing.router import Router
from returnbridge.routing.rules import load_routing_file


def _load_order(path: Path, tenant: str) -> returns_pb2.ReturnOrder:
    try:
        data = exactjson.loads(path.read_bytes(), parse_float=float)
    except (OSError, exactjson.JsonError) as exc:
        raise ValidationError(f"{path}: cannot read return JSON: {exc}") from None
    # Accept both a bare ReturnOrder and a SubmitReturnRequest-shaped {"return_order": {...}}.
    if isinstance(data, dict) and ("return_order" in data or "returnOrder" in data):
        data = data.get("return_order", data.get("returnOrder"))
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: not a ReturnOrder: expected a JSON object, got {type(data).__name__}")
    order = returns_pb2.ReturnOrder()
    try:
        json_format.ParseDict(data, order)
    except json_format.ParseError as exc:
        raise ValidationError(f"{path}: not a ReturnOrder: {exc}") from exc
    if tenant:
        order.tenant_id = tenant
    return order


def explain_text(router: Router, order: returns_pb2.ReturnOrder) -> str:
    lines = [f"return {order.return_id!r} v{order.version} (tenant {order.tenant_id or '-'}):"]
    for item in router.explain(order):
        if item.matched:
            lines.append(f"  MATCH  {item.rule}")
        else:
            lines.append(f"  skip   {item.rule}: " + "; ".join(item.failed))
    decision, steps = router.plan(order)
    lines.append(
        f"route: target={decision.target} lane={decision.lane} flow={decision.flow} rule={decision.rule}"
    )
    for step in steps:
        source = f" (from {step.source})" if step.source else ""
        lines.append(f"  step {step.step}: {step.mapping} -> {step.document_type}{source}")
    if not steps:
        lines.append("  no ERP documents for this event")
    return "\n".join(lines)


def _explain(args: argparse.Namespace) -> int:
    router = Router(load_routing_file(args.file))
    order = _load_order(args.input, args.tenant)
    if args.json:
        decision, _ = router.plan(order)
        out: dict[str, Any] = {
            "rules": [
                {"rule": e.rule, "matched": e.matched, "failed": e.failed} for e in router.explain(order)
            ],
            "route": json_format.MessageToDict(decision, preserving_proto_field_name=True),
        }
        print(json.dumps(out, indent=2))
    else:
        print(explain_text(router, order))
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_routing_file(args.file)
    print(
        f"{args.file}: OK ({len(config.rules)} rules, {len(config.targets)} targets, {len(config.flows)} flows)"
    )
    return 0


def add_routes_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``routes check|explain`` on the top-level CLI's subparsers."""
    routes = subparsers.add_parser("routes", help="validate routing files and explain routing decisions")
    sub = routes.add_subparsers(dest="routes_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a routing file (errors name file, line and rule)")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check)
    explain = sub.add_parser("explain", help="show which rule matches a return and why the others do not")
    explain.add_argument("file", type=Path, help="routing YAML file")
    explain.add_argument("--input", type=Path, required=True, help="ReturnOrder as protobuf JSON")
    explain.add_argument("--tenant", default="", help="tenant to route for (default: the JSON's tenant_id)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(func=_explain)
