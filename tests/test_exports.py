"""The public names of every package, pinned (and each importable first, without cycles)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from returnbridge.delivery.worker import DeliverySettings
from returnbridge.routing import RoutingSettings

EXPORTS = {
    "returnbridge.bus": [
        "ConsumerSettings",
        "ContendedKeyError",
        "EmbeddedNatsServer",
        "JsonRecord",
        "Publisher",
        "StreamLimits",
        "StreamsConfig",
        "delivery_subscription",
        "dumps",
        "ensure_streams",
        "get_json",
        "keys_matching",
        "modify_json",
        "modify_json_versioned",
        "ordered_config",
        "subjects",
    ],
    "returnbridge.inbound": [
        "PATH",
        "HintSink",
        "InboundKey",
        "InboundReceiver",
        "InboundSettings",
        "Notification",
        "PayloadError",
        "ReceiverKey",
        "ReplayGuard",
        "parse_notification",
        "push_capable",
        "resolve_keys",
    ],
    "returnbridge.client": [
        "DEFAULT_TIMEOUT_SECONDS",
        "FINAL_STATES",
        "RETRY_SERVICE_CONFIG",
        "ReturnBridgeClient",
        "channel_options",
        "open_channel",
    ],
    "returnbridge.console": ["ConsoleServer", "ConsoleSettings"],
    "returnbridge.connectors": [
        "ChangeBatch",
        "Connector",
        "ConnectorConfig",
        "DocumentRequest",
        "DocumentResult",
        "build_connector",
        "connector_config_union",
        "kinds",
        "parse_connector_config",
    ],
    "returnbridge.gateway": [
        "API_SERVICES",
        "ApiKeyConfig",
        "Authenticator",
        "GrpcServer",
        "GrpcSettings",
        "JwtConfig",
        "REQUEST_ID_HEADER",
        "ROLES",
        "RateLimitConfig",
        "RateLimiter",
        "SecurityConfig",
        "TlsConfig",
        "authorize",
        "build_interceptors",
        "generate_api_key",
        "hash_api_key",
        "parse_section",
        "permissions_for",
        "remaining_timeout",
        "require_tenant_match",
        "server_credentials",
    ],
    "returnbridge.mapping": [
        "ExplainEntry",
        "Mapper",
        "MappingRegistry",
        "check_spec_text",
    ],
    "returnbridge.simulators": [
        "CONTROL_PREFIX",
        "EMBEDDED_TARGETS",
        "FaultInjector",
        "FaultPlan",
        "RunningSimulator",
        "SimulatorKit",
        "SimulatorSet",
        "SimulatorSettings",
        "start_simulators",
    ],
    "returnbridge.domain": [
        "ERPS",
        "STATES",
        "TRANSITIONS",
        "LifecyclePolicy",
        "MoneyPolicy",
        "ReturnPolicy",
        "ReturnPolicyConfig",
        "TextPolicy",
        "admit",
        "allowed_events",
        "strict_violations",
        "ISO_4217",
        "MAX_EXTERNAL_REFERENCE",
        "SYSTEM",
        "DocumentKind",
        "ErpDescriptor",
        "PlannedStep",
        "Principal",
        "ReferenceData",
        "ReferenceDataConfig",
        "Validator",
        "by_alias",
        "current_principal",
        "current_tenant",
        "decode_steps",
        "default_validator",
        "encode_steps",
        "enum_short",
        "enum_value",
        "erp_enum",
        "erp_name",
        "full_validator",
        "line_amount",
        "maybe_principal",
        "minimal_validate",
        "minor_units",
        "new_request_id",
        "quantum",
        "request_id",
        "set_principal",
        "set_request_id",
        "validate_return_order",
    ],
    "returnbridge.routing": [
        "Flow",
        "FlowStep",
        "PlannedStep",
        "Router",
        "RoutingConfig",
        "RoutingSettings",
        "RuleExplanation",
        "load_routing_file",
        "load_routing_text",
    ],
    "returnbridge.delivery": [
        "DeadLetterStore",
        "DeliverySettings",
        "DeliveryWorker",
        "RetryPolicy",
        "add_dlq_commands",
    ],
    "returnbridge.sync": [
        "InventoryStore",
        "PollTarget",
        "PollTargetConfig",
        "Poller",
        "PollerSettings",
        "SyncStateStore",
        "reconciliation_report",
    ],
    "returnbridge.services": [
        "AdminServicer",
        "Intake",
        "InventoryServicer",
        "ReturnsServicer",
    ],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_exports_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(EXPORTS[module])
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_each_package_imports_first_without_cycles(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_section_models() -> None:
    assert RoutingSettings().load().default.target == "netsuite"
    settings = DeliverySettings.model_validate({"streams": {"replicas": 3}, "retry": {"max_attempts": 3}})
    assert settings.streams.replicas == 3 and settings.retry.max_attempts == 3
    with pytest.raises(ValueError, match="ack_wait_seconds must exceed erp_timeout_seconds"):
        DeliverySettings(erp_timeout_seconds=90)


def test_every_package_pins_its_exports() -> None:
    import pkgutil

    import returnbridge

    packages = {
        f"returnbridge.{info.name}"
        for info in pkgutil.iter_modules(returnbridge.__path__)
        if info.ispkg and info.name != "api"
    }
    # audit and observability are pinned in tests/audit/test_exports.py.
    assert packages - {"returnbridge.audit", "returnbridge.observability"} == set(EXPORTS)
