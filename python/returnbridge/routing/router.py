"""Router: evaluates the ordered rules against a ReturnOrder, first match wins, default otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.enums import enum_short
from returnbridge.domain.erps import erp_enum
from returnbridge.domain.steps import PlannedStep
from returnbridge.errors import RoutingError
from returnbridge.routing.flows import planned
from returnbridge.routing.rules import Conditions, RoutingConfig, load_routing_file

DEFAULT_RULE = "default"


@dataclass(frozen=True, slots=True)
class RuleExplanation:
    """How one rule fared: matched, or the conditions that failed (each with the value seen)."""

    rule: str
    matched: bool
    failed: list[str] = field(default_factory=list)


def order_amount(order: returns_pb2.ReturnOrder) -> Decimal:
    """``total_amount`` when set, else sum(quantity * unit price) + tax - restocking fee, exactly."""
    try:
        if order.total_amount.amount:
            return Decimal(order.total_amount.amount)
        total = Decimal(0)
        for line in order.lines:
            if line.quantity and line.unit_price.amount:
                total += Decimal(line.quantity) * Decimal(line.unit_price.amount)
        if order.tax_total.amount:
            total += Decimal(order.tax_total.amount)
        if order.restocking_fee.amount:
            total -= Decimal(order.restocking_fee.amount)
        return total
    except InvalidOperation as exc:
        raise RoutingError(f"return {order.return_id!r} has a non-decimal amount: {exc}") from exc


class Router:
    """Thread-safe and immutable: build once at startup from a RoutingConfig.

    Args:
        config: the validated routing file; None loads the shipped default routes.
    """

    def __init__(self, config: RoutingConfig | None = None) -> None:
        self.config = config if config is not None else load_routing_file()
        self._prefixes = sorted(
            (
                (prefix.upper(), name)
                for name, region in self.config.regions.items()
                for prefix in region.site_prefixes
            ),
            key=lambda item: -len(item[0]),
        )

    def region_of(self, order: returns_pb2.ReturnOrder) -> str:
        custom = order.custom_fields.get(self.config.region_field)
        if custom is not None and custom.WhichOneof("kind") == "string_value" and custom.string_value:
            return custom.string_value
        for line in order.lines:
            site = line.location.site.upper()
            if site:
                return next((name for prefix, name in self._prefixes if site.startswith(prefix)), "")
        return ""

    def _failures(self, when: Conditions, order: returns_pb2.ReturnOrder) -> list[str]:
        failed: list[str] = []
        types = [line.product_type for line in order.lines]
        if when.product_type_any and not any(t in when.product_type_any for t in types):
            failed.append(f"product_type_any {list(when.product_type_any)}: line product types {types}")
        if when.product_type_all and not (types and all(t in when.product_type_all for t in types)):
            failed.append(f"product_type_all {list(when.product_type_all)}: line product types {types}")
        if when.customer_tier and order.customer.tier not in when.customer_tier:
            failed.append(f"customer_tier {list(when.customer_tier)}: got {order.customer.tier!r}")
        if when.return_type:
            got = enum_short(returns_pb2.ReturnType, "RETURN_TYPE_", order.return_type)
            if got not in when.return_type:
                failed.append(f"return_type {list(when.return_type)}: got {got}")
        if when.event:
            got = enum_short(returns_pb2.LifecycleEvent, "LIFECYCLE_EVENT_", order.event)
            if got not in when.event:
                failed.append(f"event {list(when.event)}: got {got}")
        if when.amount_min is not None or when.amount_max is not None:
            amount = order_amount(order)
            if when.amount_min is not None and amount < when.amount_min:
                failed.append(f"amount_min {when.amount_min}: amount {amount}")
            if when.amount_max is not None and amount > when.amount_max:
                failed.append(f"amount_max {when.amount_max}: amount {amount}")
        if when.currency and order.currency not in when.currency:
            failed.append(f"currency {list(when.currency)}: got {order.currency!r}")
        if when.tenant and order.tenant_id not in when.tenant:
            failed.append(f"tenant {list(when.tenant)}: got {order.tenant_id!r}")
        if when.region:
            region = self.region_of(order)
            if region not in when.region:
                failed.append(f"region {list(when.region)}: got {region!r}")
        return failed

    def explain(self, order: returns_pb2.ReturnOrder) -> list[RuleExplanation]:
        """Every rule in order with its failed conditions, up to and including the one that matched."""
        result = []
        for rule in self.config.rules:
            failed = self._failures(rule.when, order)
            result.append(RuleExplanation(rule.name, not failed, failed))
            if not failed:
                return result
        result.append(RuleExplanation(DEFAULT_RULE, True))
        return result

    def plan(self, order: returns_pb2.ReturnOrder) -> tuple[returns_pb2.RouteDecision, list[PlannedStep]]:
        """The route and the ERP steps this event creates, in order."""
        for rule in self.config.rules:
            if not self._failures(rule.when, order):
                rule_name, target_name, lane = rule.name, rule.target, rule.lane
                break
        else:
            rule_name, target_name, lane = DEFAULT_RULE, self.config.default.target, self.config.default.lane
        target = self.config.targets[target_name]
        flow = self.config.flows[target.flow]
        steps = [planned(step) for step in flow.plan(order)]
        decision = returns_pb2.RouteDecision(
            erp=erp_enum(target.erp),  # type: ignore[arg-type]
            target=target_name,
            flow=f"{target.flow}." + ("+".join(s.step for s in steps) if steps else "none"),
            document_types=[s.document_type for s in steps],
            lane=lane,
            rule=rule_name,
        )
        return decision, steps

    def route(self, order: returns_pb2.ReturnOrder) -> returns_pb2.RouteDecision:
        return self.plan(order)[0]
