"""Tests for returnbridge.services."""
