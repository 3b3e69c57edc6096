"""Pins the public names of the audit and observability packages."""

from __future__ import annotations

import returnbridge.audit
import returnbridge.observability


def test_audit_exports() -> None:
    assert sorted(returnbridge.audit.__all__) == [
        "AuditEntry", "AuditLog", "AuditPage", "AuditQueries", "ChainProblem", "RedactingFilter", "VerifyReport",
        "export_audit", "install_log_redaction", "redact_mapping", "redact_text", "verify_entries", "verify_jsonl",
        "verify_stream",
    ]  # fmt: skip
    for name in returnbridge.audit.__all__:
        assert getattr(returnbridge.audit, name)


def test_observability_exports() -> None:
    assert sorted(returnbridge.observability.__all__) == [
        "AlertConfig", "Alerter", "MonitorConfig", "QueueMonitor", "count_api_call", "count_erp_call", "count_processing", "observe_sync_latency",
        "set_dlq_size", "set_queue_depth", "start_metrics_server",
    ]  # fmt: skip
    for name in returnbridge.observability.__all__:
        assert getattr(returnbridge.observability, name)
