"""Per-tenant return policy: the lifecycle's legitimate exceptions, money bounds and the text rule (YAML ``returns``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LifecyclePolicy", "MoneyPolicy", "ReturnPolicy", "ReturnPolicyConfig", "TextPolicy"]


class LifecyclePolicy(BaseModel):
    """Exceptions to the strict lifecycle (README "Return lifecycle"); everything off means strict.

    The customer tier is the one recorded at authorization, so a later event cannot promote itself.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Refund-on-authorization ("advance refund"): REFUNDED straight from AUTHORIZED for these tiers.
    refund_before_receipt_tiers: frozenset[str] = frozenset()
    # Advance exchange: EXCHANGED straight from AUTHORIZED (the replacement ships before the return arrives).
    exchange_before_receipt_tiers: frozenset[str] = frozenset()
    # Several RECEIVED events (partial receipts) until every authorized unit is in. Off: one RECEIVED takes every
    # authorized unit. Turn on only for routes whose flow takes several receipts (SAP's has one returns
    # delivery per customer return, so a second receipt, or a partial one, cannot post there).
    partial_receipts: bool = False
    # CANCELLED after goods were received (they must then be handled outside the return).
    cancel_after_receipt: bool = False


class MoneyPolicy(BaseModel):
    """Bounds of the financial invariants (README "Financial invariants")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Tax is refunded with the goods: refund/credit <= value received + its tax - fees. Off: tax is not refunded.
    refund_includes_tax: bool = True
    # Restocking fee at most this share of the line value of the event (0.25 = 25 %).
    max_restocking_fee_ratio: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    # Tax at most this share of the line value (per line and in total).
    max_tax_ratio: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)


class TextPolicy(BaseModel):
    """What happens to control characters (C0, DEL, C1) in text (README "Text hygiene")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # refuse: INVALID_ARGUMENT naming the field. strip: remove them from free text (notes, descriptions, names,
    # custom text values); identifiers and codes are always refused, since changing one changes what it names.
    control_characters: Literal["refuse", "strip"] = "refuse"


class ReturnPolicy(BaseModel):
    """The policy of one tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lifecycle: LifecyclePolicy = LifecyclePolicy()
    money: MoneyPolicy = MoneyPolicy()
    text: TextPolicy = TextPolicy()


class ReturnPolicyConfig(ReturnPolicy):
    """The ``returns`` config section: the default policy plus whole-policy replacements per tenant."""

    tenants: dict[str, ReturnPolicy] = Field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> ReturnPolicy:
        """The tenant's own policy where it has one, else the default."""
        own = self.tenants.get(tenant_id)
        if own is not None:
            return own
        return ReturnPolicy(lifecycle=self.lifecycle, money=self.money, text=self.text)
