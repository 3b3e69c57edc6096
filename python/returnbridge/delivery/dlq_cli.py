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


def _row(letter: admin_pb2.DeadLetter) -> str:
    state = admin_pb2.DeadLetterState.Name(letter.state).removeprefix("DEAD_LETTER_STATE_")
    return (
        f"{letter.id:>8}  {state:<9} {letter.target:<14} {letter.return_id:<20} v{letter.version:<4}"
        f" {letter.step:<22} {letter.reason[:80]}"
    )


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
                if args.json:
                    print(_as_json(page))
                else:
                    for letter in page.dead_letters:
                        print(_row(letter))
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
                replayed = await stub.ReplayDeadLetter(
                    admin_pb2.ReplayDeadLetterRequest(id=args.id, comment=args.comment),
                    metadata=metadata,
                    timeout=args.timeout,
                )
                print(f"replayed dead letter {args.id} as delivery message {replayed.stream_sequence}")
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
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one dead letter with its ERP error")
    show.add_argument("id", type=int)
    show.add_argument("--payload", action="store_true", help="include the stored ReturnOrder bytes")
    for name, text in (("replay", "re-deliver (exactly once at the ERP)"), ("discard", "give up on it")):
        action = sub.add_parser(name, help=text)
        action.add_argument("id", type=int)
        action.add_argument("--comment", default="", help="recorded in the audit log")
    dlq.set_defaults(func=_main)


__all__ = ["add_dlq_commands"]
