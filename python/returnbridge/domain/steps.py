"""The planned ERP document steps of one return event, as carried in the delivery message header."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["PlannedStep", "decode_steps", "encode_steps"]


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step as carried in the delivery message header, so workers and replays need no routing config."""

    step: str
    mapping: str
    document_type: str
    source: str = ""
    # "" (posts no amount), "gross" or "net": see routing's FlowStep.posts_amount.
    posts_amount: str = ""


def _basis(value: object) -> str:
    # Messages accepted before amount bases existed carry a bool.
    if value is True:
        return "gross"
    return value if isinstance(value, str) and value in ("gross", "net") else ""


def encode_steps(steps: list[PlannedStep]) -> str:
    return json.dumps([[s.step, s.mapping, s.document_type, s.source, s.posts_amount] for s in steps])


def decode_steps(text: str) -> list[PlannedStep]:
    return [PlannedStep(str(a), str(b), str(c), str(d), _basis(e)) for a, b, c, d, e in json.loads(text)]
