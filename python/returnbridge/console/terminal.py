"""The console in a terminal: ``returnbridge status`` and ``returnbridge inventory`` with rich tables or JSON.

Reads through the gRPC API with the caller's token (``$RETURNBRIDGE_TOKEN``), like the web console, and
gathers a return's life with the same ``load_timeline``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table

from returnbridge.client import ReturnBridgeClient
from returnbridge.console.templating import template_environment
from returnbridge.console.timeline import Timeline, load_timeline
from returnbridge.errors import AuthError, ConfigError, NotFoundError, ReturnBridgeError
from returnbridge.gateway.rbac import ROLES

__all__ = ["ServerUnreachableError", "add_terminal_commands", "rpc_error"]

DEFAULT_TARGET = "127.0.0.1:50051"
# Template filters double as terminal formatters (one way to print a state, an ERP, a timestamp).
_F = template_environment().filters


class ServerUnreachableError(ReturnBridgeError):
    """The gRPC server did not answer in time (down, wrong --server, or overloaded after retries)."""


def rpc_error(exc: grpc.aio.AioRpcError) -> ReturnBridgeError:
    """The CLI's error for a failed call; its class decides the exit code (see ``returnbridge --help``)."""
    code, details = exc.code(), exc.details() or exc.code().name
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFoundError(details)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return AuthError(f"{code.name}: {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServerUnreachableError(f"{code.name}: {details}")
    return ReturnBridgeError(f"{code.name}: {details}")


def _token(args: argparse.Namespace) -> str:
    token = os.environ.get(args.token_env, "")
    if not token:
        raise ConfigError(f"no token: set ${args.token_env} to an API key or JWT")
    return token


def _message(message: Message) -> dict[str, Any]:
    return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))


def timeline_json(t: Timeline) -> dict[str, Any]:
    return {
        "status": _message(t.status),
        "versions": [
            {
                "version": v.version,
                "event": v.event,
                "target": v.target,
                "rule": v.rule,
                "audit": [_message(e) for e in v.audit],
            }
            for v in t.versions
        ],
        "dead_letters": None if t.dead_letters is None else [_message(d) for d in t.dead_letters],
        "reconciliation": None if t.reconciliation is None else [_message(r) for r in t.reconciliation],
    }


def print_timeline(t: Timeline, console: Console) -> None:
    s = t.status
    console.print(
        f"[bold]{s.return_id}[/]  {_F['sync_state'](s.state)}  lifecycle {s.lifecycle_state or '-'}"
        f"  RMA {s.rma_number or '-'}  tenant {s.tenant_id}"
        f"  latest v{s.latest_version}  updated {_F['when'](s.updated_at)}"
    )
    for v in t.versions:
        routed = f"routed to {v.target or '-'}" + (f" by rule {v.rule}" if v.rule else "")
        table = Table(title=f"v{v.version} {v.event}  {routed}", title_justify="left", expand=False)
        for column in (
            "step",
            "ERP",
            "document type",
            "state",
            "ERP id",
            "attempts",
            "last error",
            "delivered",
        ):
            table.add_column(column)
        for d in v.documents:
            error = f"{d.last_error.code} {d.last_error.message}".strip() if d.HasField("last_error") else ""
            table.add_row(
                d.step,
                _F["erp"](d.erp),
                d.document_type,
                _F["sync_state"](d.state),
                d.erp_document_id or "-",
                str(d.attempts),
                error,
                _F["when"](d.delivered_at),
            )
        console.print(table)
        for entry in v.audit:
            console.print(
                f"  audit #{entry.sequence} {_F['when'](entry.occurred_at)} {entry.actor} {entry.action}"
            )
    if t.dead_letters is None:
        console.print("dead letters: needs permission dlq.read")
    for letter in t.dead_letters or ():
        console.print(
            f"dead letter #{letter.id} v{letter.version} {letter.step} "
            f"{_F['dead_letter_state'](letter.state)}: {letter.reason}"
        )
    for line in t.reconciliation or ():
        console.print(
            f"reconciliation {line.document_type} {line.erp_document_id}: expected {line.expected.amount} "
            f"{line.expected.currency}, posted {line.erp_posted.amount} {_F['reconciliation'](line.status)}"
        )


async def _status(args: argparse.Namespace) -> int:
    async with ReturnBridgeClient.connect(args.server, token=_token(args), timeout=args.timeout) as client:
        try:
            # The token's permissions are the server's business; ask for every section and let it refuse.
            permissions = frozenset().union(*ROLES.values())
            timeline = await _load_allowed(client, args.return_id, permissions)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from None
    if args.format == "json":
        print(json.dumps(timeline_json(timeline), indent=2))
    else:
        print_timeline(timeline, Console())
    return 0


async def _load_allowed(client: ReturnBridgeClient, return_id: str, permissions: frozenset[str]) -> Timeline:
    """The timeline with every section the token may read (sections it may not are left out, not errors)."""
    wanted = set(permissions)
    while True:
        try:
            return await load_timeline(client, return_id, frozenset(wanted))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.PERMISSION_DENIED:
                raise
            denied = next(
                (p for p in ("audit.read", "dlq.read", "reports.read") if p in (exc.details() or "")), None
            )
            if denied is None or denied not in wanted:
                raise
            wanted.discard(denied)


async def _inventory(args: argparse.Namespace) -> int:
    async with ReturnBridgeClient.connect(args.server, token=_token(args), timeout=args.timeout) as client:
        try:
            levels = await client.inventory_levels(skus=args.sku, sites=args.site)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from None
    levels.sort(key=lambda lv: (lv.target, lv.sku, lv.location.site, lv.location.sub_location))
    if args.format == "json":
        print(json.dumps([_message(level) for level in levels], indent=2))
        return 0
    table = Table()
    for column in (
        "target",
        "SKU",
        "site",
        "sub-location",
        "on hand",
        "available",
        "reserved",
        "UoM",
        "as of",
    ):
        table.add_column(
            column, justify="right" if column in ("on hand", "available", "reserved") else "left"
        )
    for lv in levels:
        table.add_row(
            lv.target,
            lv.sku,
            lv.location.site,
            lv.location.sub_location,
            lv.on_hand,
            lv.available,
            lv.reserved,
            lv.unit_of_measure,
            _F["when"](lv.as_of),
        )
    Console().print(table)
    return 0


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", default=os.environ.get("RETURNBRIDGE_GRPC_TARGET", DEFAULT_TARGET))
    parser.add_argument(
        "--token-env", default="RETURNBRIDGE_TOKEN", help="environment variable holding the token"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline of each call in seconds")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="json: for scripts")


def add_terminal_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``status RETURN_ID`` and ``inventory`` on the top-level CLI."""
    status = subparsers.add_parser(
        "status", help="a return's whole life: versions, ERP documents, dead letters"
    )
    status.add_argument("return_id")
    add_remote_options(status)
    status.set_defaults(func=lambda args: asyncio.run(_status(args)))
    inventory = subparsers.add_parser("inventory", help="stock per SKU and location as each ERP reports it")
    inventory.add_argument("--sku", action="append", default=[], help="only this SKU (repeatable)")
    inventory.add_argument("--site", action="append", default=[], help="only this site (repeatable)")
    add_remote_options(inventory)
    inventory.set_defaults(func=lambda args: asyncio.run(_inventory(args)))
