"""Tests for returnbridge.delivery."""
