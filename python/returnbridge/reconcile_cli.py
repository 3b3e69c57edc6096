"""``returnbridge reconcile``: compare what the RMS intended with what the ERPs hold, from a time on.

Runs next to the service with the same configuration: it joins the service's NATS (``--nats-url`` or
``nats.url``), reads the accepted submissions from JetStream and asks each configured connector for the documents
holding our references. Every drift is alerted and audited; ``--repair`` re-drives missing documents through the
normal pipeline (a running worker delivers them).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from returnbridge.errors import ConfigError

_RELATIVE = re.compile(r"(\d+)([smhdw])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_COLUMNS = (
    "drift",
    "target",
    "return_id",
    "version",
    "document_type",
    "expected",
    "actual",
    "erp_document_ids",
)


def parse_since(text: str, *, now: float | None = None) -> float:
    """``24h``, ``7d``, ``90m`` (ago) or an ISO 8601 date/time (UTC when no offset) -> epoch seconds.

    Raises:
        ConfigError: neither form.
    """
    now = time.time() if now is None else now
    match = _RELATIVE.match(text.strip())
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: expected a duration such as 24h or 7d, or an ISO date such as 2026-12-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def render(report: Any, fmt: str) -> str:
    """The report as a table (human), JSON (one object with summary and drifts) or CSV (one row per drift)."""
    rows = [d.as_dict() for d in report.drifts]
    if fmt == "json":
        return json.dumps(
            {
                "tenant": report.tenant,
                "since": datetime.fromtimestamp(report.since, UTC).isoformat(),
                "submissions": report.submissions,
                "documents_checked": report.documents_checked,
                "pending": report.pending,
                "counts": report.counts(),
                "expected_totals": _totals(report.expected_totals),
                "posted_totals": _totals(report.posted_totals),
                "drifts": rows,
            },
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=list(rows[0]) if rows else list(_COLUMNS), lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reconciliation of {report.tenant}: {report.documents_checked} documents checked")
    for column in _COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row[c]) for c in _COLUMNS))
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items())
    console.print(f"submissions {report.submissions}, pending {report.pending}; {counts}")
    return console.export_text()


def _totals(totals: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {target: {c: str(v) for c, v in amounts.items()} for target, amounts in totals.items()}


async def _run(args: argparse.Namespace) -> Any:
    import nats
    from rich.progress import Progress

    from returnbridge.audit.log import AuditLog
    from returnbridge.bus.publisher import Publisher
    from returnbridge.bus.streams import ensure_streams
    from returnbridge.config import load_settings
    from returnbridge.connectors.base import DocumentReader
    from returnbridge.connectors.registry import build_connector, parse_connector_config
    from returnbridge.delivery.reconcile import ErpReconciler
    from returnbridge.domain.erps import contract_document_type
    from returnbridge.observability.alerts import Alerter
    from returnbridge.routing import Router
    from returnbridge.sync.status import SyncStateStore

    overrides: dict[str, Any] = {"nats": {"url": args.nats_url}} if args.nats_url else {}
    settings = load_settings(args.config, overrides=overrides)
    if not settings.nats.url:
        raise ConfigError("reconcile joins the service's NATS: give --nats-url or nats.url")
    configs = {name: parse_connector_config(cfg, source="connectors") for name, cfg in args.connector or ()}
    configs = configs or dict(settings.connectors)
    if not configs:
        raise ConfigError(
            "no connectors configured: reconcile reads the ERPs through the service's connectors"
        )
    targets = set(args.erp or configs)
    unknown = targets - set(configs)
    if unknown:
        raise ConfigError(f"--erp {sorted(unknown)}: no such connector (configured: {sorted(configs)})")
    router = Router(settings.routing.load())
    document_types = {
        target: [contract_document_type(m) or "" for m in router.flow_mappings(target)]
        for target in targets
        if target in router.config.targets
    }
    since = parse_since(args.since)
    connectors = {name: build_connector(configs[name]) for name in targets}
    unreadable = sorted(n for n, c in connectors.items() if not isinstance(c, DocumentReader))
    if unreadable:
        for connector in connectors.values():
            await connector.aclose()
        raise ConfigError(f"--erp {unreadable}: this connector kind cannot read documents back yet")
    try:
        nc = await nats.connect(servers=settings.nats.url.split(","), connect_timeout=10)
    except BaseException:
        for connector in connectors.values():
            await connector.aclose()
        raise
    try:
        js = nc.jetstream()
        buckets = await ensure_streams(js, settings.delivery.streams)
        publisher = Publisher(nc, js)
        alerter = Alerter(settings.alerts, nc=nc)
        reconciler = ErpReconciler(
            js,
            SyncStateStore(buckets["rb_sync_state"], publisher),
            {n: c for n, c in connectors.items() if isinstance(c, DocumentReader)},
            {t: [d for d in types if d] for t, types in document_types.items()},
            publisher=publisher,
            alerter=alerter,
            audit=await AuditLog.open(js),
            grace_seconds=args.grace,
        )
        with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("reconciling", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = await reconciler.run(
                args.tenant, since=since, targets=targets, repair=args.repair, progress=step
            )
        await alerter.aclose()
    finally:
        for connector in connectors.values():
            await connector.aclose()
        await nc.drain()
    return report


def _reconcile(args: argparse.Namespace) -> int:
    if args.what == "inventory":
        return _reconcile_inventory(args)
    if not args.since:
        raise ConfigError("reconcile documents needs --since (24h, 7d, ... or an ISO date/time)")
    report = asyncio.run(_run(args))
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 1 if report.drifts else 0


def add_reconcile_commands(sub: Any) -> None:
    """Register ``reconcile`` on the top-level parser."""
    parser = sub.add_parser(
        "reconcile", help="compare what the RMS intended with what each ERP holds (exit 1 on any drift)"
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=("documents", "inventory"),
        default="documents",
        help="documents (default): credits and documents per return; inventory: stock per SKU and location",
    )
    parser.add_argument("--tenant", required=True, help="tenant to reconcile")
    parser.add_argument("--since", help="documents: 24h, 7d, ... ago, or an ISO date/time (UTC)")
    parser.add_argument("--erp", action="append", help="connector (routing target) to check; repeatable")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--output", help="write the report to this file instead of stdout")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="documents: re-drive missing documents through the pipeline; "
        "inventory: rebuild the RMS projection from the ERP (never the other way round)",
    )
    parser.add_argument(
        "--grace", type=float, default=300.0, help="seconds a young missing document counts as pending"
    )
    parser.add_argument("--config", type=Path, help="YAML configuration file (the service's)")
    parser.add_argument("--nats-url", help="the service's NATS server/cluster")
    parser.add_argument(
        "--connector",
        action="append",
        type=_connector_arg,
        help="NAME=JSON connector config overriding the configuration's connectors (repeatable)",
    )
    parser.set_defaults(func=_reconcile)


def _connector_arg(text: str) -> tuple[str, dict[str, Any]]:
    name, _, body = text.partition("=")
    try:
        config = json.loads(body)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--connector {name}: not JSON: {exc}") from None
    if not name or not isinstance(config, dict):
        raise argparse.ArgumentTypeError("--connector takes NAME={json object}")
    return name, config


# -- inventory ------------------------------------------------------------------------------------------


def render_inventory(report: Any, fmt: str) -> str:
    """An inventory report as a table, JSON (summary and drifts) or CSV (one row per drift)."""
    data = report.as_dict()
    if fmt == "json":
        return json.dumps(data, indent=2)
    columns = ("kind", "target", "sku", "site", "sub_location", "rms_on_hand", "erp_on_hand")
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data["drifts"])
        return out.getvalue()
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"inventory of {report.tenant}: {report.erp_levels} ERP levels, {report.rms_levels} in the RMS"
    )
    for column in columns:
        table.add_column(column)
    for row in data["drifts"]:
        table.add_row(*(row[c] for c in columns))
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items()) or "no drift"
    console.print(f"{counts}; unreadable {report.unreadable}; repaired {report.repaired}")
    return console.export_text()


async def _run_inventory(args: argparse.Namespace) -> Any:
    import nats

    from returnbridge.bus.publisher import Publisher
    from returnbridge.bus.streams import ensure_streams
    from returnbridge.config import load_settings
    from returnbridge.connectors.registry import build_connector, parse_connector_config
    from returnbridge.mapping import MappingRegistry
    from returnbridge.sync.inventory import InventoryStore
    from returnbridge.sync.inventory_reconcile import InventoryReconciler
    from returnbridge.sync.poller import PollTarget, PollTargetConfig

    overrides: dict[str, Any] = {"nats": {"url": args.nats_url}} if args.nats_url else {}
    settings = load_settings(args.config, overrides=overrides)
    if not settings.nats.url:
        raise ConfigError("reconcile joins the service's NATS: give --nats-url or nats.url")
    configs = {name: parse_connector_config(cfg, source="connectors") for name, cfg in args.connector or ()}
    configs = configs or dict(settings.connectors)
    polled = {t.target: t for t in settings.sync.targets if t.tenant == args.tenant}
    names = list(args.erp or polled or configs)
    unknown = sorted(set(names) - set(configs))
    if unknown:
        raise ConfigError(f"--erp {unknown}: no such connector (configured: {sorted(configs)})")
    if not names:
        raise ConfigError(
            "no connectors configured: inventory reconciliation reads each ERP's stock through them"
        )
    registry = MappingRegistry.load(settings.mapping.overrides, settings.mapping.packs_dirs)
    targets = [
        PollTarget(
            polled.get(name) or PollTargetConfig(target=name, tenant=args.tenant),
            build_connector(configs[name]),
        )
        for name in names
    ]
    try:
        nc = await nats.connect(servers=settings.nats.url.split(","), connect_timeout=10)
    except BaseException:
        for target in targets:
            await target.connector.aclose()
        raise
    try:
        js = nc.jetstream()
        buckets = await ensure_streams(js, settings.delivery.streams)
        reconciler = InventoryReconciler(
            InventoryStore(buckets["rb_inventory"]), registry, targets, publisher=Publisher(nc, js)
        )
        reports = await reconciler.run(repair=args.repair)
    finally:
        for target in targets:
            await target.connector.aclose()
        await nc.drain()
    return reports[0]


def _reconcile_inventory(args: argparse.Namespace) -> int:
    report = asyncio.run(_run_inventory(args))
    text = render_inventory(report, args.format)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    # After a repair the projection equals the ERP again: exit 0 unless something could not be read.
    if args.repair:
        return 1 if report.unreadable else 0
    return 1 if report.drifts or report.unreadable else 0
