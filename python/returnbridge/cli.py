"""Command line: ``returnbridge serve | worker | sync | simulate | status | inventory | mapping | routes | dlq``
``| audit | reconcile``.

Exit codes: 0 success; 1 the operation failed (the server refused it, a check found problems); 2 usage or
configuration error; 3 not found; 4 not authenticated or not permitted; 5 server unreachable; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

# The service fork+execs nats-server while gRPC may be live; grpc's fork handlers are only safe when no gRPC
# work has started and can hang otherwise, and fork+exec needs none of them. Must precede importing grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from returnbridge.audit.cli import add_audit_commands
from returnbridge.delivery.dlq_cli import add_dlq_commands
from returnbridge.errors import AuthError, ConfigError, NotFoundError, ReturnBridgeError
from returnbridge.inbound_dlq_cli import add_inbound_dlq_commands
from returnbridge.mapping.cli import add_mapping_commands
from returnbridge.reconcile_cli import add_reconcile_commands
from returnbridge.routing.routes_cli import add_routes_commands
from returnbridge.sync.audit_completeness import completeness_lines


def _cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "grpc_port", None) is not None:
        overrides.setdefault("grpc", {})["port"] = args.grpc_port
    if getattr(args, "console_port", None) is not None:
        overrides.setdefault("console", {})["port"] = args.console_port
    if getattr(args, "nats_url", None):
        overrides.setdefault("nats", {})["url"] = args.nats_url
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "no_simulators", False):
        overrides.setdefault("simulators", {})["enabled"] = False
    if getattr(args, "single_process", False):
        overrides.setdefault("process", {})["single_process"] = True
    for flag in ("gateway_processes", "worker_processes"):
        if getattr(args, flag, None) is not None:
            overrides.setdefault("process", {})[flag] = getattr(args, flag)
    return overrides


def app_settings(args: argparse.Namespace, process: dict[str, Any] | None = None) -> Any:
    """The settings a command runs with; ``worker`` and ``sync`` (``process`` given) never start simulators.

    Only ``serve`` on embedded defaults and ``simulate`` run them: a worker or poller joining a cluster
    delivers to the ERPs its configuration names, never to a private simulator of its own.
    """
    from returnbridge.config import load_settings

    overrides = _cli_overrides(args)
    if process is not None:
        overrides["process"] = process
        overrides.setdefault("simulators", {})["enabled"] = False
    return load_settings(args.config, overrides=overrides)


def _run_app(args: argparse.Namespace, process: dict[str, Any] | None = None) -> int:
    from returnbridge.app import App
    from returnbridge.audit.redact import install_log_redaction
    from returnbridge.logs import configure_logging

    settings = app_settings(args, process)
    if process is not None and not settings.connectors:
        raise ConfigError(
            f"{args.command}: no connectors configured (connectors: ...); worker and sync never start the "
            "bundled simulators -- run `returnbridge simulate` and point connectors at it"
        )
    configure_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    install_log_redaction()

    async def main() -> None:
        app = App(settings)
        await app.start()
        await app.run_until_signal(on_ready=lambda: _print_banner(app))

    asyncio.run(main())
    return 0


def _serve(args: argparse.Namespace) -> int:
    settings = app_settings(args)
    if settings.process.single_process:
        return _run_app(args)
    from returnbridge.audit.redact import install_log_redaction
    from returnbridge.logs import configure_logging
    from returnbridge.supervisor import Supervisor

    configure_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    install_log_redaction()
    return Supervisor(settings).run(on_ready=_print_banner)


def _worker(args: argparse.Namespace) -> int:
    return _run_app(args, {"gateway": False, "sync": False, "workers": args.target})


def _sync(args: argparse.Namespace) -> int:
    return _run_app(args, {"gateway": False, "sync": True, "workers": []})


def _simulate(args: argparse.Namespace) -> int:
    from returnbridge.simulators.runner import start_simulators
    from returnbridge.simulators.settings import SimulatorSettings

    settings = SimulatorSettings(
        host=args.host, netsuite_port=args.netsuite_port, sap_port=args.sap_port, oracle_port=args.oracle_port
    )
    configs = simulator_configs(args)

    notify = _notifier_config(args)

    async def main() -> None:
        sims = await start_simulators(settings, configs)
        try:
            for name, url in sorted(sims.urls.items()):
                print(f"  simulator   {name:<9} {url}   (control: {url}/_sim/)", flush=True)
                if notify is not None:
                    sims.kits[name].notifier.configure(notify.model_copy(update={"key_id": f"sim-{name}"}))
            if notify is not None:
                print(f"  notifying   {notify.url} as sim-<simulator>", flush=True)
            print(
                f"  duplicates  netsuite={configs.netsuite.duplicates} sap={configs.sap.duplicates} "
                f"oracle={configs.oracle.duplicates}; oracle REST-Framework-Version "
                f"{','.join(map(str, configs.oracle.framework_versions))} "
                f"(default {configs.oracle.default_framework_version}); netsuite property name validation "
                f"{configs.netsuite.property_name_validation}",
                flush=True,
            )
            print("Ctrl-C stops them.", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await sims.stop()

    asyncio.run(main())
    return 0


def _notifier_config(args: argparse.Namespace) -> Any:
    """The simulators' notification settings from ``--notify-url`` / ``--notify-secret-file``, or None."""
    from pydantic import SecretStr, ValidationError

    from returnbridge.simulators.notifier import NotifierConfig

    if not args.notify_url:
        if args.notify_secret_file is not None:
            raise SystemExit("simulate: --notify-secret-file needs --notify-url")
        return None
    if args.notify_secret_file is None:
        raise SystemExit("simulate: --notify-url needs --notify-secret-file (the signing secret)")
    try:
        secret = args.notify_secret_file.read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise SystemExit(f"simulate: cannot read {str(args.notify_secret_file)!r}: {exc.strerror}") from None
    if len(secret.encode()) < 16:
        raise SystemExit(f"simulate: {str(args.notify_secret_file)!r}: the secret must be at least 16 bytes")
    try:
        return NotifierConfig(enabled=True, url=args.notify_url, key_id="sim", secret=SecretStr(secret))
    except ValidationError as exc:
        raise SystemExit(f"simulate: --notify-url: {exc.errors()[0]['msg']}") from None


def simulator_configs(args: argparse.Namespace) -> Any:
    """The simulators' settings from ``simulate``'s switches (defaults: the strict, documented ones)."""
    import dataclasses

    from returnbridge.simulators.runner import SIMULATOR_NAMES, SimulatorConfigs

    configs = SimulatorConfigs()
    for spec in args.duplicates or []:
        name, _, policy = spec.rpartition("=")
        if policy not in ("refuse", "accept") or (name and name not in SIMULATOR_NAMES):
            raise ConfigError(
                f"--duplicates {spec!r}: expected refuse|accept or <{'|'.join(SIMULATOR_NAMES)}>=refuse|accept"
            )
        for target in [name] if name else SIMULATOR_NAMES:
            configs = configs.with_duplicates(target, policy)
    versions = tuple(sorted({int(v) for v in args.oracle_framework_versions.split(",") if v.strip()}))
    default = args.oracle_default_framework_version
    if not versions or any(v not in (1, 2, 3, 4) for v in versions) or default not in versions:
        raise ConfigError(
            "--oracle-framework-versions must list versions among 1-4 and include "
            f"--oracle-default-framework-version ({default})"
        )
    configs.oracle = dataclasses.replace(
        configs.oracle,
        framework_versions=versions,
        default_framework_version=default,
        error_format=args.oracle_error_format,
        require_return_reference=args.oracle_require_return_reference,
    )
    configs.netsuite = configs.netsuite.model_copy(
        update={
            "property_name_validation": args.netsuite_property_name_validation,
            "concurrency_limit": args.netsuite_concurrency_limit,
        }
    )
    return configs


def _print_banner(app: Any) -> None:
    ep = app.endpoints
    lines = [
        "returnbridge is serving",
        f"  gRPC        {ep.grpc}   (health: grpc_health.v1.Health/Check, reflection on)",
        f"  NATS        {ep.nats}" + ("   (embedded nats-server)" if app.nats_server else ""),
    ]
    if ep.metrics:
        lines.append(f"  metrics     {ep.metrics}")
    if ep.console:
        lines.append(f"  console     {ep.console}   (sign in with an API key or JWT)")
    if ep.inbound:
        lines.append(f"  inbound     {ep.inbound}   (signed ERP notifications, docs/inbound.md)")
    for name, url in sorted(ep.simulators.items()):
        lines.append(f"  simulator   {name:<9} {url}   (control: {url}/_sim/)")
    if ep.grpc:
        token = f" --token-file {ep.dev_token_file}" if ep.dev_token_file else ""
        lines.append(f"  try: .venv/bin/python examples/submit_return.py --target {ep.grpc}{token}")
    if ep.dev_token_file:
        lines.append(f"  dev API key (tenant demo, all roles) in {ep.dev_token_file}")
    for child in getattr(app, "children", []):
        pid = child.process.pid if child.process is not None else "-"
        lines.append(f"  process     {child.name:<11} pid {pid}")
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="returnbridge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC service (embedded NATS and ERP simulators by default)")
    serve.add_argument(
        "--config",
        type=Path,
        help="YAML configuration file (default: $RETURNBRIDGE_CONFIG or ./returnbridge.yaml)",
    )
    serve.add_argument("--grpc-port", type=int, help="override grpc.port")
    serve.add_argument("--console-port", type=int, help="override console.port (0 picks a free one)")
    serve.add_argument("--nats-url", help="use this NATS server/cluster instead of an embedded one")
    serve.add_argument("--data-dir", type=Path, help="override data_dir (embedded NATS store, local state)")
    serve.add_argument("--no-simulators", action="store_true", help="do not start the bundled ERP simulators")
    serve.add_argument(
        "--single-process",
        action="store_true",
        help="run gateway, workers, poller and simulators in this one process (process.single_process)",
    )
    serve.add_argument(
        "--gateway-processes",
        type=int,
        help="gateway processes sharing the gRPC port (process.gateway_processes; default one per core)",
    )
    serve.add_argument(
        "--worker-processes", type=int, help="delivery worker processes (process.worker_processes; default 1)"
    )
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run delivery workers only (scale out: many processes per target)")
    _add_runtime_options(worker)
    worker.add_argument(
        "--target", action="append", required=True, help="routing target to deliver (repeatable)"
    )
    worker.set_defaults(func=_worker)

    sync = sub.add_parser("sync", help="run ERP -> RMS polling only (inventory and document status)")
    _add_runtime_options(sync)
    sync.set_defaults(func=_sync)

    simulate = sub.add_parser("simulate", help="run the NetSuite, SAP and Oracle simulators standalone")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--netsuite-port", type=int, default=8701)
    simulate.add_argument("--sap-port", type=int, default=8702)
    simulate.add_argument("--oracle-port", type=int, default=8703)
    simulate.add_argument(
        "--duplicates",
        action="append",
        metavar="[ERP=]POLICY",
        help="refuse|accept a second document with the same external reference, for all simulators or one "
        "(netsuite=, sap=, oracle=); defaults are each ERP's: netsuite refuse, sap accept, oracle refuse",
    )
    simulate.add_argument(
        "--oracle-framework-versions", default="1,2,3,4", help="REST-Framework-Version values Oracle allows"
    )
    simulate.add_argument(
        "--notify-url",
        default="",
        help="push every change as the ERP's own notification to this webhook (returnbridge's inbound "
        "receiver); key ids sim-netsuite, sim-sap, sim-oracle (docs/inbound.md)",
    )
    simulate.add_argument(
        "--notify-secret-file",
        type=Path,
        help="file holding the signing secret of --notify-url (>= 16 bytes)",
    )
    simulate.add_argument(
        "--oracle-default-framework-version",
        type=int,
        default=1,
        help="version used when a request sends no REST-Framework-Version (Fusion's default: 1)",
    )
    simulate.add_argument(
        "--oracle-error-format",
        choices=("by_version", "json", "text"),
        default="by_version",
        help="Oracle error bodies: text up to version 3 and JSON from 4 (by_version), or always one",
    )
    simulate.add_argument(
        "--oracle-require-return-reference",
        action="store_true",
        help="refuse return lines without an original order reference or UnreferencedReturnFlag=Y",
    )
    simulate.add_argument(
        "--netsuite-property-name-validation",
        choices=("Error", "Warning", "Ignore"),
        default="Error",
        help="unknown fields when a request sends no X-NetSuite-PropertyNameValidation (strict: Error)",
    )
    simulate.add_argument(
        "--netsuite-concurrency-limit",
        type=int,
        default=5,
        help="requests in flight across the NetSuite account (0 = unlimited; developer accounts: 5)",
    )
    simulate.set_defaults(func=_simulate)

    from returnbridge.console.terminal import add_terminal_commands

    add_terminal_commands(sub)
    add_mapping_commands(sub)
    add_routes_commands(sub)
    add_dlq_commands(sub)
    add_audit_commands(sub, completeness=completeness_lines)
    add_reconcile_commands(sub)
    add_inbound_dlq_commands(sub)
    return parser


def _add_runtime_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument("--nats-url", help="NATS server/cluster to join")
    parser.add_argument("--data-dir", type=Path, help="override data_dir")


def exit_code(exc: ReturnBridgeError, unreachable: type[ReturnBridgeError]) -> int:
    """The documented exit code for an error (module docstring)."""
    for kind, code in ((ConfigError, 2), (NotFoundError, 3), (AuthError, 4), (unreachable, 5)):
        if isinstance(exc, kind):
            return code
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from returnbridge.console.terminal import ServerUnreachableError

    try:
        return int(args.func(args) or 0)
    except ReturnBridgeError as exc:
        print(f"returnbridge: {exc}", file=sys.stderr)
        return exit_code(exc, ServerUnreachableError)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
