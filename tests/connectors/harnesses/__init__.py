"""Connector harness modules; each exposes ``HARNESSES``, discovered by tests/connectors/test_conformance.py."""
