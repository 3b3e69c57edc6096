"""Append-only, hash-chained audit log on JetStream with verification, export and redaction."""

from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.export import export_audit
from returnbridge.audit.log import AuditLog, AuditPage
from returnbridge.audit.redact import RedactingFilter, install_log_redaction, redact_mapping, redact_text
from returnbridge.audit.service import AuditQueries
from returnbridge.audit.verify import ChainProblem, VerifyReport, verify_entries, verify_jsonl, verify_stream

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditPage",
    "AuditQueries",
    "ChainProblem",
    "RedactingFilter",
    "VerifyReport",
    "export_audit",
    "install_log_redaction",
    "redact_mapping",
    "redact_text",
    "verify_entries",
    "verify_jsonl",
    "verify_stream",
]
