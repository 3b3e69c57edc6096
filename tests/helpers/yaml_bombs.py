"""Hostile YAML for the tests of every loader that reads it (mapping specs, config and routing files)."""

from __future__ import annotations


def laughs(levels: int = 9, fan: int = 10) -> str:
    """The classic alias bomb: ``fan ** levels`` expansions from a few hundred bytes (10^9 by default); its first
    anchor is on line 1."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join(f"*a{i - 1}" for _ in range(fan)) + "]")
    return "\n".join(lines) + f"\nrules: *a{levels}\n"
