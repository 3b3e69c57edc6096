"""Append-only, hash-chained audit log on JetStream with verification, export and redaction."""
