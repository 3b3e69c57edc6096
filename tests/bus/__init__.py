"""Tests for returnbridge.bus."""
