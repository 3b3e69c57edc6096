"""Typed configuration: one YAML file plus ``RETURNBRIDGE_*`` environment variables, validated at startup.

Environment variables override the file; nested keys use ``__``: ``RETURNBRIDGE_GRPC__PORT=50052`` sets
``grpc.port``. Values from the environment are parsed as YAML scalars/flow collections, so
``RETURNBRIDGE_NATS__SYNC_ALWAYS=false`` is a bool and ``RETURNBRIDGE_MAPPING__OVERRIDES=[a.yaml]`` a list.
A bad value is refused with a message naming the key, where it came from (file:line or variable) and
what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from returnbridge import safe_yaml
from returnbridge.connectors.registry import ConnectorConfig
from returnbridge.console.settings import ConsoleSettings
from returnbridge.delivery.worker import DeliverySettings
from returnbridge.domain.policy import ReturnPolicyConfig
from returnbridge.domain.validation import ReferenceDataConfig
from returnbridge.errors import ConfigError
from returnbridge.gateway.security_config import SecurityConfig
from returnbridge.gateway.server import GrpcSettings
from returnbridge.inbound.settings import InboundSettings
from returnbridge.mapping.service import TranslationServiceConfig
from returnbridge.observability.alerts import AlertConfig
from returnbridge.observability.monitor import MonitorConfig
from returnbridge.observability.tracing import TracingSettings
from returnbridge.routing.rules import RoutingSettings
from returnbridge.simulators.settings import SimulatorSettings
from returnbridge.sync.poller import PollerSettings

ENV_PREFIX = "RETURNBRIDGE_"
# A delay in seconds: positive and finite.
_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
DEFAULT_CONFIG_FILE = "returnbridge.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NatsSettings(_Section):
    """Where JetStream lives. No ``url`` means: start a local nats-server child (embedded mode)."""

    url: str | None = Field(default=None, description="nats://host:port[,nats://...] of a server or cluster")
    # Embedded mode only:
    port: int = Field(
        default=0, ge=0, le=65535, description="embedded server client port; 0 picks a free one"
    )
    # fsync every JetStream write so an acknowledged submission survives a power cut (~3.5x slower publishes).
    sync_always: bool = True
    connect_timeout: float = Field(default=5.0, gt=0)
    credentials_file: Path | None = None
    # External servers only: check at start-up that JetStream fsyncs every write (varz ``sync_always``), read
    # from ``monitor_url`` (http://host:8222) or, with system-account credentials, $SYS. ``warn`` logs when it
    # is off or cannot be read; ``refuse`` stops the start-up instead; ``skip`` does not ask.
    durability_check: Literal["warn", "refuse", "skip"] = "warn"
    monitor_url: str | None = None
    # Bounded drain of the client at shutdown; a client that is reconnecting is closed without draining.
    drain_timeout_seconds: float = Field(default=5.0, gt=0)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = Field(default=False, alias="json")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MetricsSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class MappingSettings(_Section):
    # Customer override files layered over the shipped packs (add / replace / remove rules).
    overrides: list[Path] = Field(default_factory=list)
    # Extra pack directories (each holds <pack>/<name>.yaml).
    packs_dirs: list[Path] = Field(default_factory=list)


class ProcessSettings(_Section):
    """Which parts one process runs, and how ``serve`` splits them over processes (``supervisor.py``)."""

    gateway: bool = True
    # Delivery workers for these targets ("*" = every configured connector).
    workers: list[str] = Field(default_factory=lambda: ["*"])
    # ERP -> RMS polling (inventory and document status).
    sync: bool = True
    # Queue depth and dead-letter gauges and their alerts (one process of a deployment is enough).
    monitor: bool = True
    # Write the return.submitted audit entries from the stored submissions (delivery/submitted_audit.py), in a
    # process that runs the gateway or workers; any number of processes share the work. ``serve`` keeps it off
    # its gateway processes.
    audit_scribe: bool = True
    # ``serve`` only: run everything in this one process (the layout before the process split).
    single_process: bool = False
    # ``serve`` only: gateway processes sharing the gRPC port (SO_REUSEPORT); 0 = one per usable core.
    gateway_processes: int = Field(default=0, ge=0, le=64)
    # ``serve`` only: delivery worker processes (the first also polls the ERPs).
    worker_processes: int = Field(default=1, ge=1, le=64)
    # Set by the ``serve`` supervisor in its children: the connectors point at the bundled simulators, so the
    # embedded defaults (demo reference data, polling for tenant demo) apply as in one process.
    bundled_simulators: bool = False
    # Set by the ``serve`` supervisor: the bundled simulators' URLs by name, so the polling process can point
    # their change notifications at its webhook receiver (PUT /_sim/notifications), as one process does directly.
    simulator_urls: dict[str, str] = {}
    # Set by the ``serve`` supervisor on its gateways: health stays NOT_SERVING after start-up until the supervisor
    # says a delivery worker is up (App.open_for_calls), so a fresh deployment never reports SERVING before it can
    # deliver. A worker that crashes later does not flip it back: what is accepted waits durably in the stream and
    # the supervisor restarts the worker (and alerts process_restarted).
    await_workers: bool = False
    # Seconds between restarts of a crashed child (doubling from the first value up to the second).
    # Both positive and finite: a nan or infinite delay would never restart the child.
    restart_backoff_seconds: tuple[_Seconds, _Seconds] = (0.5, 30.0)
    # ``serve`` only: nice value added to the worker and simulator processes, so on a saturated machine the
    # gateways get the CPU first when they can use it. The worker still takes what they leave while they wait on
    # NATS (30-60 % of a core in a 10,000-call spike on 2 cores), and under sustained overload its scheduler share
    # (nice 10 weighs about a tenth of nice 0): it is not starved. 0 = every process equal.
    background_nice: int = Field(default=10, ge=0, le=19)

    @field_validator("restart_backoff_seconds")
    @classmethod
    def _backoff_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError(f"the first delay ({value[0]} s) must not exceed the second ({value[1]} s)")
        return value


class Settings(_Section):
    """Root of the configuration; each section's model lives with the code that uses it."""

    data_dir: Path = Path(".returnbridge")
    nats: NatsSettings = NatsSettings()
    grpc: GrpcSettings = GrpcSettings()
    logging: LoggingSettings = LoggingSettings()
    simulators: SimulatorSettings = SimulatorSettings()
    metrics: MetricsSettings = MetricsSettings()
    console: ConsoleSettings = ConsoleSettings()
    tracing: TracingSettings = TracingSettings()
    mapping: MappingSettings = MappingSettings()
    process: ProcessSettings = ProcessSettings()
    security: SecurityConfig = SecurityConfig()
    reference_data: ReferenceDataConfig = ReferenceDataConfig()
    # Return lifecycle exceptions, money bounds and the text rule, per tenant (README "Return lifecycle").
    returns: ReturnPolicyConfig = ReturnPolicyConfig()
    routing: RoutingSettings = RoutingSettings()
    # Named connector instances (the routing file's targets), e.g. {"netsuite": {"kind": "netsuite", ...}}.
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)
    delivery: DeliverySettings = DeliverySettings()
    sync: PollerSettings = PollerSettings()
    inbound: InboundSettings = InboundSettings()
    alerts: AlertConfig = AlertConfig()
    monitor: MonitorConfig = MonitorConfig()
    translation: TranslationServiceConfig = TranslationServiceConfig()

    @property
    def embedded_nats(self) -> bool:
        return self.nats.url is None


# Where each value came from, for error messages: key path -> "file:line" or "env VAR".
_Origins = dict[tuple[str, ...], str]


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load and validate settings.

    Args:
        path: YAML file; None uses ``$RETURNBRIDGE_CONFIG`` or ``./returnbridge.yaml`` when present,
            else built-in defaults.
        env: environment to read ``RETURNBRIDGE_*`` from (default ``os.environ``).
        overrides: final values from the command line, as nested dicts.

    Raises:
        ConfigError: naming the key, its origin and what was expected.
    """
    env = os.environ if env is None else env
    origins: _Origins = {}
    data: dict[str, Any] = {}
    if path is None:
        path = env.get(ENV_PREFIX + "CONFIG") or (
            DEFAULT_CONFIG_FILE if Path(DEFAULT_CONFIG_FILE).is_file() else None
        )
    if path is not None:
        data = _load_yaml(Path(path), origins)
    for var, raw in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or var == ENV_PREFIX + "CONFIG":
            continue
        keys = tuple(part.lower() for part in var[len(ENV_PREFIX) :].split("__"))
        try:
            value = safe_yaml.load(raw) if raw.strip() else ""
        except (yaml.YAMLError, safe_yaml.YamlLimitError):
            value = raw
        _set_path(data, keys, value)
        origins[keys] = f"environment variable {var}"
    for keys, value in _flatten(overrides or {}):
        _set_path(data, keys, value)
        origins[keys] = "command line"
    try:
        settings = Settings.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ConfigError(_describe(exc, origins, path)) from None
    _check_replicas(settings, origins, path)
    return settings


def _check_replicas(settings: Settings, origins: _Origins, path: str | Path | None) -> None:
    """The embedded nats-server is one server: JetStream would refuse R>1 streams with a cryptic answer.

    Against an external cluster the server decides (``bus.streams`` turns its refusal into a ConfigError).
    """
    replicas = settings.delivery.streams.replicas
    if settings.nats.url is None and replicas > 1:
        keys = ("delivery", "streams", "replicas")
        origin = _origin_for(keys, origins) or (f"{path} (default)" if path else "defaults")
        raise ConfigError(
            f"invalid configuration:\n  {origin}: delivery.streams.replicas: {replicas} replicas need a NATS "
            "cluster of at least that many servers, but the embedded nats-server is one server (use 1, or "
            "set nats.url to the cluster)"
        )


def _load_yaml(path: Path, origins: _Origins) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data, node = safe_yaml.load_with_node(text, safe_yaml.FILE_LIMITS)
    except safe_yaml.YamlLimitError as exc:
        raise ConfigError(f"{path}:{exc.line}: {exc}" if exc.line else f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: the configuration must be a mapping of sections, got {type(data).__name__}"
        )
    _record_lines(node, (), path, origins)
    return data


def _record_lines(node: yaml.Node | None, prefix: tuple[str, ...], path: Path, origins: _Origins) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            keys = (*prefix, str(key_node.value))
            origins[keys] = f"{path}:{key_node.start_mark.line + 1}"
            _record_lines(value_node, keys, path, origins)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            keys = (*prefix, str(index))
            origins[keys] = f"{path}:{item.start_mark.line + 1}"
            _record_lines(item, keys, path, origins)


def _set_path(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    target = data
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value


def _flatten(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.extend(_flatten(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out


def _describe(exc: pydantic.ValidationError, origins: _Origins, path: str | Path | None) -> str:
    lines = []
    for error in exc.errors():
        keys = tuple(str(part) for part in error["loc"])
        origin = _origin_for(keys, origins) or (f"{path} (default)" if path else "defaults")
        got = error.get("input")
        got_text = "" if error["type"] in ("extra_forbidden", "missing") else f" (got {got!r})"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{origin}: {'.'.join(keys)}: {message}{got_text}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _origin_for(keys: tuple[str, ...], origins: _Origins) -> str | None:
    for end in range(len(keys), 0, -1):
        if keys[:end] in origins:
            return origins[keys[:end]]
    return None
