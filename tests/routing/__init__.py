"""Tests for returnbridge.routing."""
