"""``returnbridge inbound-dlq list|show|replay|discard``: ERP records the sync poller refused (RB_INBOUND_DLQ).

Runs next to the service with its configuration and joins its NATS (``--nats-url`` or ``nats.url``), like
``reconcile``. A replay translates the stored ERP record again with the current mapping and reference data
(after a fix) and, when it passes now, stores and publishes it as the poller would have.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from returnbridge.errors import ConfigError


async def _run(args: argparse.Namespace) -> Any:
    import nats

    from returnbridge.bus.publisher import Publisher
    from returnbridge.bus.streams import ensure_streams
    from returnbridge.config import load_settings
    from returnbridge.domain.validation import ReferenceData
    from returnbridge.mapping import MappingRegistry
    from returnbridge.sync.inbound_dlq import InboundDeadLetters
    from returnbridge.sync.inventory import InventoryStore
    from returnbridge.sync.poller import Poller

    overrides: dict[str, Any] = {"nats": {"url": args.nats_url}} if args.nats_url else {}
    settings = load_settings(args.config, overrides=overrides)
    if not settings.nats.url:
        raise ConfigError("inbound-dlq joins the service's NATS: give --nats-url or nats.url")
    nc = await nats.connect(servers=settings.nats.url.split(","), connect_timeout=10)
    try:
        js = nc.jetstream()
        buckets = await ensure_streams(js, settings.delivery.streams)
        letters = InboundDeadLetters(js, buckets["rb_sync_state"])
        if args.action == "list":
            found = await letters.list(args.tenant, include_resolved=args.all)
            return [letter.as_dict() for letter in found]
        letter = await letters.get(args.tenant, args.id)
        if args.action == "show":
            return letter.as_dict(with_record=True)
        if args.action == "discard":
            return (await letters.mark(args.tenant, args.id, "DISCARDED")).as_dict()
        if letter.state != "PENDING":
            raise ConfigError(f"inbound dead letter {args.id} is already {letter.state.lower()}")
        publisher = Publisher(nc, js)
        poller = Poller(
            [],
            MappingRegistry.load(settings.mapping.overrides, settings.mapping.packs_dirs),
            buckets["rb_cursors"],
            InventoryStore(buckets["rb_inventory"]),
            buckets["rb_sync_state"],
            publisher,
            settings.sync,
            inbound_dlq=letters,
            reference=ReferenceData.from_config(settings.reference_data),
        )
        if not await poller.replay(letter):
            return {**letter.as_dict(), "replayed": False, "note": "still refused: dead-lettered again"}
        return {**(await letters.mark(args.tenant, args.id, "REPLAYED")).as_dict(), "replayed": True}
    finally:
        await nc.drain()


def _inbound_dlq(args: argparse.Namespace) -> int:
    result = asyncio.run(_run(args))
    if args.format == "json" or args.action != "list":
        print(json.dumps(result, indent=2))
    else:
        for row in result:
            print(
                f"{row['id']:>8}  {row['state']:<9} {row['target']:<14} {row['kind']:<9} {row['reason']:<18} {'; '.join(row['problems'])[:100]}"
            )
    if args.action == "replay":
        return 0 if result.get("replayed") else 1
    return 0


def add_inbound_dlq_commands(sub: Any) -> None:
    """Register ``inbound-dlq`` on the top-level parser."""
    parser = sub.add_parser(
        "inbound-dlq", help="ERP records refused after translation: list, show, replay, discard"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("list", "pending inbound dead letters of the tenant (--all: replayed and discarded too)"),
        ("show", "one inbound dead letter with the ERP record"),
        ("replay", "translate and check the record again; store it when it passes"),
        ("discard", "mark it discarded"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--tenant", required=True)
        if name == "list":
            action.add_argument("--all", action="store_true")
            action.add_argument("--format", choices=("table", "json"), default="table")
        else:
            action.add_argument("id", type=int)
            action.set_defaults(format="json")
        action.add_argument("--config", type=Path, help="YAML configuration file (the service's)")
        action.add_argument("--nats-url", help="the service's NATS server/cluster")
        action.set_defaults(func=_inbound_dlq)
