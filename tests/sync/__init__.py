"""Tests for returnbridge.sync."""
