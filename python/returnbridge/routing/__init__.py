"""Routing: which target, flow and lane each return event goes to (rules in YAML, first match wins)."""

from returnbridge.domain.steps import PlannedStep
from returnbridge.routing.flows import Flow, FlowStep
from returnbridge.routing.router import Router, RuleExplanation
from returnbridge.routing.rules import RoutingConfig, RoutingSettings, load_routing_file, load_routing_text

__all__ = [
    "Flow",
    "FlowStep",
    "PlannedStep",
    "Router",
    "RoutingConfig",
    "RoutingSettings",
    "RuleExplanation",
    "load_routing_file",
    "load_routing_text",
]
