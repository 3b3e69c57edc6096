"""``returnbridge dlq list|show|replay|discard``: talks to a running server over gRPC with a bearer token.

The server scopes every call to the token's tenant and records replays/discards in the audit log with the
token's principal, so the CLI needs no NATS credentials and cannot act across tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from returnbridge.api.v1 import admin_pb2, admin_pb2_grpc
from returnbridge.domain.erps import ERPS
from returnbridge.errors import AuthError, ConfigError, NotFoundError, ReturnBridgeError

DEFAULT_TARGET = "127.0.0.1:50051"
# Names and aliases accepted by --erp -> the ERP enum value the server filters on.
_ERPS = {alias: erp.enum_value for erp in ERPS.values() for alias in (erp.name, *erp.aliases)}


def _metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    token = os.environ.get(args.token_env, "")
    if not token:
        raise ConfigError(f"no token: set ${args.token_env} to an API key or JWT with the admin role")
    return (("authorization", f"Bearer {token}"),)


def _table(letters: list[admin_pb2.DeadLetter]) -> Table:
    table = Table()
    for column in ("id", "state", "target", "return", "version", "step", "attempts", "reason"):
        table.add_column(column, justify="right" if column in ("id", "version", "attempts") else "left")
    for letter in letters:
        state = str(admin_pb2.DeadLetterState.Name(letter.state)).removeprefix("DEAD_LETTER_STATE_")
        table.add_row(
            str(letter.id),
            state,
            letter.target,
            letter.return_id,
            str(letter.version),
            letter.step,
            str(letter.attempts),
            letter.reason[:120],
        )
    return table


async def _pending_ids(
    stub: admin_pb2_grpc.AdminServiceStub, args: argparse.Namespace, metadata: Any
) -> list[int]:
    ids: list[int] = []
    token = ""
    while True:
        page = await stub.ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(
                erp=_ERPS.get(args.erp, 0),  # type: ignore[arg-type]
                return_id=args.return_id,
                page_size=500,
                page_token=token,
            ),
            metadata=metadata,
            timeout=args.timeout,
        )
        ids.extend(letter.id for letter in page.dead_letters)
        token = page.next_page_token
        if not token:
            return ids


async def _replay_many(
    stub: admin_pb2_grpc.AdminServiceStub, args: argparse.Namespace, metadata: Any, ids: list[int]
) -> int:
    """Replay each id (each call audited); a progress bar on a terminal, one line per failure; 1 if any failed."""
    failed = 0
    console = Console(stderr=True)
    with Progress(console=console, disable=args.format == "json") as progress:
        task = progress.add_task("replaying", total=len(ids))
        results = []
        for letter_id in ids:
            try:
                replayed = await stub.ReplayDeadLetter(
                    admin_pb2.ReplayDeadLetterRequest(id=letter_id, comment=args.comment),
                    metadata=metadata,
                    timeout=args.timeout,
                )
                results.append({"id": letter_id, "replayed_as": replayed.stream_sequence})
            except grpc.aio.AioRpcError as exc:
                failed += 1
                results.append({"id": letter_id, "error": f"{exc.code().name}: {exc.details()}"})
                progress.console.print(f"dead letter {letter_id}: {exc.code().name}: {exc.details()}")
            progress.advance(task)
    if args.format == "json":
        print(json.dumps(results, indent=2))
    else:
        print(f"replayed {len(ids) - failed} of {len(ids)} dead letters")
    return 1 if failed else 0


def _as_json(message: Any) -> str:
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True), indent=2)


async def _run(args: argparse.Namespace) -> int:
    metadata = _metadata(args)
    async with grpc.aio.insecure_channel(args.server) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        try:
            if args.dlq_command == "list":
                request = admin_pb2.ListDeadLettersRequest(
                    erp=_ERPS.get(args.erp, 0),  # type: ignore[arg-type]
                    return_id=args.return_id,
                    include_resolved=args.all,
                    page_size=args.page_size,
                    page_token=args.page_token,
                )
                page = await stub.ListDeadLetters(request, metadata=metadata, timeout=args.timeout)
                if args.json or args.format == "json":
                    print(_as_json(page))
                else:
                    Console().print(_table(list(page.dead_letters)))
                    if page.next_page_token:
                        print(f"more: --page-token {page.next_page_token}")
            elif args.dlq_command == "show":
                letter = await stub.GetDeadLetter(
                    admin_pb2.GetDeadLetterRequest(id=args.id), metadata=metadata, timeout=args.timeout
                )
                if not args.payload:
                    letter.ClearField("payload")
                print(_as_json(letter))
            elif args.dlq_command == "replay":
                ids = list(args.ids)
                if args.pending:
                    ids += await _pending_ids(stub, args, metadata)
                if not ids:
                    raise ConfigError("name dead letter ids, or --pending to replay every pending one")
                return await _replay_many(stub, args, metadata, sorted(set(ids)))
            else:
                await stub.DiscardDeadLetter(
                    admin_pb2.DiscardDeadLetterRequest(id=args.id, comment=args.comment),
                    metadata=metadata,
                    timeout=args.timeout,
                )
                print(f"discarded dead letter {args.id}")
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFoundError(exc.details() or "not found") from None
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                raise AuthError(exc.details() or code.name) from None
            raise ReturnBridgeError(f"{code.name}: {exc.details()}") from None
    return 0


def _main(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def add_dlq_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``dlq list|show|replay|discard`` on the top-level CLI's subparsers."""
    dlq = subparsers.add_parser("dlq", help="inspect, replay or discard dead letters (over gRPC)")
    dlq.add_argument("--server", default=os.environ.get("RETURNBRIDGE_GRPC_TARGET", DEFAULT_TARGET))
    dlq.add_argument(
        "--token-env", default="RETURNBRIDGE_TOKEN", help="environment variable holding the token"
    )
    dlq.add_argument("--timeout", type=float, default=10.0)
    sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="pending dead letters of the token's tenant, oldest first")
    listing.add_argument("--erp", choices=sorted(_ERPS), default="")
    listing.add_argument("--return-id", default="")
    listing.add_argument("--all", action="store_true", help="include replayed and discarded")
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--page-token", default="")
    listing.add_argument("--json", action="store_true", help="same as --format json")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    show = sub.add_parser("show", help="one dead letter with its ERP error (JSON)")
    show.add_argument("id", type=int)
    show.add_argument("--payload", action="store_true", help="include the stored ReturnOrder bytes")
    replay = sub.add_parser(
        "replay", help="re-deliver (exactly once at the ERP); many at once after a mapping fix"
    )
    replay.add_argument("ids", type=int, nargs="*", metavar="ID")
    replay.add_argument(
        "--pending", action="store_true", help="every pending dead letter matching the filters"
    )
    replay.add_argument("--erp", choices=sorted(_ERPS), default="", help="with --pending: only this ERP")
    replay.add_argument("--return-id", default="", help="with --pending: only this return")
    replay.add_argument("--comment", default="", help="recorded in the audit log")
    replay.add_argument("--format", choices=("table", "json"), default="table")
    discard = sub.add_parser("discard", help="give up on it")
    discard.add_argument("id", type=int)
    discard.add_argument("--comment", default="", help="recorded in the audit log")
    dlq.set_defaults(func=_main)


__all__ = ["add_dlq_commands"]
