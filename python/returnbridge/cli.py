"""Command line: ``returnbridge serve | simulate | mapping | routes | dlq | audit``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from returnbridge.errors import ConfigError, ReturnBridgeError


def _cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "grpc_port", None) is not None:
        overrides.setdefault("grpc", {})["port"] = args.grpc_port
    if getattr(args, "nats_url", None):
        overrides.setdefault("nats", {})["url"] = args.nats_url
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "no_simulators", False):
        overrides.setdefault("simulators", {})["enabled"] = False
    return overrides


def _serve(args: argparse.Namespace) -> int:
    from returnbridge.app import App
    from returnbridge.config import load_settings
    from returnbridge.logs import configure_logging

    settings = load_settings(args.config, overrides=_cli_overrides(args))
    configure_logging(settings.logging.level, json_lines=settings.logging.json_lines)

    async def main() -> None:
        app = App(settings)
        await app.start()
        _print_banner(app)
        await app.run_until_signal()

    asyncio.run(main())
    return 0


def _print_banner(app: Any) -> None:
    ep = app.endpoints
    lines = [
        "returnbridge is serving",
        f"  gRPC        {ep.grpc}   (health: grpc_health.v1.Health/Check, reflection on)",
        f"  NATS        {ep.nats}" + ("   (embedded nats-server)" if app.nats_server else ""),
    ]
    if ep.metrics:
        lines.append(f"  metrics     {ep.metrics}")
    for name, url in sorted(ep.simulators.items()):
        lines.append(f"  simulator   {name:<9} {url}")
    lines.append("  try: .venv/bin/python examples/submit_return.py --target " + ep.grpc)
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="returnbridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC service (embedded NATS and ERP simulators by default)")
    serve.add_argument(
        "--config",
        type=Path,
        help="YAML configuration file (default: $RETURNBRIDGE_CONFIG or ./returnbridge.yaml)",
    )
    serve.add_argument("--grpc-port", type=int, help="override grpc.port")
    serve.add_argument("--nats-url", help="use this NATS server/cluster instead of an embedded one")
    serve.add_argument("--data-dir", type=Path, help="override data_dir (embedded NATS store, local state)")
    serve.add_argument("--no-simulators", action="store_true", help="do not start the bundled ERP simulators")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"returnbridge: {exc}", file=sys.stderr)
        return 2
    except ReturnBridgeError as exc:
        print(f"returnbridge: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
