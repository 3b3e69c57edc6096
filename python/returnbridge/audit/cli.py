"""``returnbridge audit verify|export`` subcommands."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from returnbridge.audit.export import EXPORT_FORMATS, export_audit, parse_timestamp
from returnbridge.audit.log import DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, AuditLog
from returnbridge.audit.verify import VerifyReport, verify_jsonl, verify_stream
from returnbridge.bus.embedded import client_login
from returnbridge.errors import ConfigError, NotFoundError

__all__ = ["add_audit_commands", "run_export", "run_verify"]

# The same variable the service configuration reads for nats.url.
NATS_URL_ENV = "RETURNBRIDGE_NATS__URL"
DATA_DIR_ENV = "RETURNBRIDGE_DATA_DIR"


#: ``(nats client, audit log) -> (ok, lines to print)``; passed in by the CLI, since the sync state it reads
#: lives in a layer above the audit log.
CompletenessCheck = Callable[[Any, AuditLog], Awaitable[tuple[bool, list[str]]]]


def add_audit_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    completeness: CompletenessCheck | None = None,
) -> argparse.ArgumentParser:
    """Register ``audit verify`` and ``audit export`` on the top-level ``add_subparsers()`` object."""
    audit = subparsers.add_parser("audit", help="verify or export the hash-chained audit log")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--nats-url",
            dest="audit_nats_url",
            default=os.environ.get(NATS_URL_ENV, "nats://127.0.0.1:4222"),
            help=f"NATS server holding the audit stream (default: ${NATS_URL_ENV} or nats://127.0.0.1:4222)",
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=Path(os.environ.get(DATA_DIR_ENV, ".returnbridge")),
            help="data_dir of the local service: a loopback --nats-url uses its embedded server's credentials",
        )
        parser.add_argument(
            "--nats-credentials", type=Path, help="NATS .creds file (JWT + NKey) for an external server"
        )
        parser.add_argument(
            "--stream", default=DEFAULT_STREAM, help="audit stream name (default: %(default)s)"
        )
        parser.add_argument(
            "--subject-prefix",
            default=DEFAULT_SUBJECT_PREFIX,
            help="audit subject prefix (default: %(default)s)",
        )

    verify = sub.add_parser(
        "verify", help="walk the chain; exit 1 if any entry is altered, missing or reordered"
    )
    common(verify)
    verify.add_argument("--file", type=Path, help="verify a full JSON-lines export instead of the stream")
    verify.add_argument("--from-seq", type=int, default=1, help="start at this stream sequence (default: 1)")
    verify.set_defaults(func=run_verify, completeness_check=completeness)
    if completeness is not None:
        verify.add_argument(
            "--completeness",
            action="store_true",
            help="also check that every accepted version and delivered ERP document has its audit entry",
        )

    export = sub.add_parser("export", help="write entries in a time range as jsonl or csv")
    common(export)
    export.add_argument("--since", help="inclusive start, ISO 8601 with zone (e.g. 2026-01-01T00:00:00Z)")
    export.add_argument("--until", help="exclusive end, ISO 8601 with zone")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl")
    export.add_argument("--tenant", help="only this tenant's entries")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=run_export)
    return audit


async def _open_log(args: argparse.Namespace) -> tuple[Any, AuditLog]:
    import nats

    try:
        login = client_login(args.audit_nats_url, args.data_dir, args.nats_credentials)
        nc = await nats.connect(args.audit_nats_url, connect_timeout=5, max_reconnect_attempts=0, **login)
    except (OSError, nats.errors.Error) as exc:
        raise ConfigError(f"cannot connect to NATS at {args.audit_nats_url}: {exc}") from exc
    log = await AuditLog.open(nc.jetstream(), stream=args.stream, subject_prefix=args.subject_prefix)
    return nc, log


def _print_report(report: VerifyReport, out: TextIO) -> int:
    for problem in report.problems:
        print(problem, file=out)
    status = "OK" if report.ok else f"FAILED ({len(report.problems)} problems)"
    print(f"audit chain {status}: {report.checked} entries checked, last seq {report.last_seq}", file=out)
    return 0 if report.ok else 1


def run_verify(args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            with args.file.open("rb") as handle:
                return _print_report(verify_jsonl(handle), sys.stdout)
        except OSError as exc:
            raise NotFoundError(f"cannot read audit export {args.file}: {exc.strerror or exc}") from None

    async def main() -> tuple[VerifyReport, bool]:
        nc, log = await _open_log(args)
        try:
            report = await verify_stream(log, start_seq=args.from_seq)
            complete = True
            if getattr(args, "completeness", False):
                complete, lines = await args.completeness_check(nc, log)
                for line in lines:
                    print(line)
            return report, complete
        finally:
            await nc.close()

    report, complete = asyncio.run(main())
    return max(_print_report(report, sys.stdout), 0 if complete else 1)


def run_export(args: argparse.Namespace) -> int:
    since = parse_timestamp(args.since, name="since") if args.since else None
    until = parse_timestamp(args.until, name="until") if args.until else None

    async def main(out: TextIO) -> int:
        nc, log = await _open_log(args)
        try:
            return await export_audit(
                log, out, since=since, until=until, fmt=args.format, tenant_id=args.tenant
            )
        finally:
            await nc.close()

    if args.output is None:
        count = asyncio.run(main(sys.stdout))
    else:
        with args.output.open("w", encoding="utf-8", newline="") as handle:
            count = asyncio.run(main(handle))
    print(f"exported {count} audit entries", file=sys.stderr)
    return 0
