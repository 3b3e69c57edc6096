"""Operability: Prometheus metrics and alerting (webhook + NATS)."""
