"""ERP document flows: which documents each lifecycle event creates, in order, and what they follow from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from returnbridge.api.v1 import common_pb2, returns_pb2

ErpName = Literal["netsuite", "sap_s4hana", "oracle_fusion", "oracle_ebs"]

ERP_SYSTEMS: dict[str, int] = {
    "netsuite": common_pb2.ERP_SYSTEM_NETSUITE,
    "sap_s4hana": common_pb2.ERP_SYSTEM_SAP_S4HANA,
    "oracle_fusion": common_pb2.ERP_SYSTEM_ORACLE_FUSION,
    "oracle_ebs": common_pb2.ERP_SYSTEM_ORACLE_EBS,
}
ERP_NAMES: dict[int, str] = {value: key for key, value in ERP_SYSTEMS.items()}

# The cross-team contract: each outbound mapping feeds exactly one connector document type.
CONTRACT_DOCUMENT_TYPES: dict[str, str] = {
    "netsuite/return_authorization": "returnAuthorization",
    "netsuite/item_receipt": "itemReceipt",
    "netsuite/credit_memo": "creditMemo",
    "netsuite/cash_refund": "cashRefund",
    "sap/customer_return": "A_CustomerReturn",
    "sap/returns_delivery": "A_ReturnsDeliveryHeader",
    "sap/credit_memo_request": "A_CreditMemoRequest",
    "sap/rfc_customer_return": "BAPI_CUSTOMERRETURN_CREATE",
    "oracle/return_order": "salesOrdersForOrderHub",
    "oracle/receipt": "receivingReceiptRequests",
    "oracle/credit_memo": "receivablesCreditMemos",
    "oracle_ebs/rma": "OE_ORDER_PUB.PROCESS_ORDER",
    "oracle_ebs/credit_memo": "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST",
}


def enum_value(enum: object, prefix: str, name: str) -> int:
    """``"refunded"`` -> ``LIFECYCLE_EVENT_REFUNDED`` value; raises ValueError naming the allowed names."""
    full = prefix + name.strip().upper()
    try:
        return int(enum.Value(full))  # type: ignore[attr-defined]
    except ValueError:
        allowed = [n[len(prefix) :] for n in enum.keys() if not n.endswith("UNSPECIFIED")]  # type: ignore[attr-defined]
        raise ValueError(f"{name!r} is not one of {allowed}") from None


def enum_short(enum: object, prefix: str, value: int) -> str:
    return str(enum.Name(value))[len(prefix) :]  # type: ignore[attr-defined]


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
        expected = CONTRACT_DOCUMENT_TYPES.get(self.mapping)
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


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step as carried in the delivery message header, so workers and replays need no routing config."""

    step: str
    mapping: str
    document_type: str
    source: str = ""
    # "" (posts no amount), "gross" or "net": see FlowStep.posts_amount.
    posts_amount: str = ""

    @classmethod
    def of(cls, step: FlowStep) -> PlannedStep:
        return cls(step.step, step.mapping, step.document_type, step.source, step.amount_basis)


def _basis(value: object) -> str:
    # Messages accepted before amount bases existed carry a bool.
    if value is True:
        return "gross"
    return value if value in ("gross", "net") else ""  # type: ignore[return-value]


def encode_steps(steps: list[PlannedStep]) -> str:
    return json.dumps([[s.step, s.mapping, s.document_type, s.source, s.posts_amount] for s in steps])


def decode_steps(text: str) -> list[PlannedStep]:
    return [PlannedStep(str(a), str(b), str(c), str(d), _basis(e)) for a, b, c, d, e in json.loads(text)]
