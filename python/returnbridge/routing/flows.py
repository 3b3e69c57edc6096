"""ERP document flows: which documents each lifecycle event creates, in order, and what they follow from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.enums import enum_short, enum_value
from returnbridge.domain.erps import ERPS, contract_document_type
from returnbridge.domain.steps import PlannedStep


def _known_erp(value: str) -> str:
    if value not in ERPS:
        raise ValueError(f"unknown ERP {value!r}; known: {sorted(ERPS)}")
    return value


#: An ERP family name from ``domain/erps.py``.
ErpName = Annotated[str, AfterValidator(_known_erp)]


class FlowStep(BaseModel):
    """One ERP document an event creates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    mapping: str
    document_type: str
    # Step whose ERP document id this one needs (transform source / reference document).
    source: str = ""
    # Only for these refund methods (empty = any), e.g. NetSuite credit memo vs cash refund.
    refund_methods: tuple[str, ...] = ()
    # Credits/refunds: the amount reconciliation expects the ERP to post. "gross" (or true) = the RMS refund
    # (lines + tax - restocking fee); "net" = the line subtotal, for ERPs whose document carries the net value
    # only (SAP's credit memo request; a Fusion AR credit memo whose tax is computed at posting).
    posts_amount: Literal[False, True, "gross", "net"] = False

    @property
    def amount_basis(self) -> str:
        """ "" (no amount), "gross" or "net"."""
        return "gross" if self.posts_amount is True else (self.posts_amount or "")

    @field_validator("refund_methods")
    @classmethod
    def _methods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for method in value:
            enum_value(returns_pb2.RefundMethod, "REFUND_METHOD_", method)
        return tuple(m.upper() for m in value)

    @model_validator(mode="after")
    def _contract(self) -> FlowStep:
        expected = contract_document_type(self.mapping)
        if expected is not None and expected != self.document_type:
            raise ValueError(
                f"mapping {self.mapping!r} feeds document type {expected!r}, not {self.document_type!r}"
            )
        return self

    def applies(self, order: returns_pb2.ReturnOrder) -> bool:
        if not self.refund_methods:
            return True
        method = enum_short(returns_pb2.RefundMethod, "REFUND_METHOD_", order.refund.method)
        return method in self.refund_methods


class Flow(BaseModel):
    """The documents of one ERP's return process, per lifecycle event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    erp: ErpName
    events: dict[str, tuple[FlowStep, ...]]

    @field_validator("events")
    @classmethod
    def _events(cls, value: dict[str, tuple[FlowStep, ...]]) -> dict[str, tuple[FlowStep, ...]]:
        normalized = {}
        for name, steps in value.items():
            enum_value(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", name)
            normalized[name.upper()] = steps
        return normalized

    @model_validator(mode="after")
    def _sources(self) -> Flow:
        names = {step.step for steps in self.events.values() for step in steps}
        for steps in self.events.values():
            for step in steps:
                if step.source and step.source not in names:
                    raise ValueError(f"step {step.step!r} names unknown source step {step.source!r}")
        return self

    def plan(self, order: returns_pb2.ReturnOrder) -> list[FlowStep]:
        event = enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)
        return [step for step in self.events.get(event, ()) if step.applies(order)]


def planned(step: FlowStep) -> PlannedStep:
    """The header form of a flow step."""
    return PlannedStep(step.step, step.mapping, step.document_type, step.source, step.amount_basis)
