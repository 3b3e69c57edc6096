"""The domain core: request context, money and currencies, enum helpers, validation, ERP descriptors, steps,
the return lifecycle, its financial invariants and the per-tenant return policy.

Every layer may import it; it imports nothing of the pipeline (only ``errors`` and the generated API).
"""

from returnbridge.domain.context import (
    SYSTEM,
    Principal,
    current_principal,
    current_tenant,
    maybe_principal,
    new_request_id,
    request_id,
    set_principal,
    set_request_id,
)
from returnbridge.domain.enums import enum_short, enum_value
from returnbridge.domain.erps import ERPS, DocumentKind, ErpDescriptor, by_alias, erp_enum, erp_name
from returnbridge.domain.lifecycle import STATES, TRANSITIONS, admit, allowed_events
from returnbridge.domain.money import ISO_4217, line_amount, minor_units, quantum
from returnbridge.domain.policy import (
    LifecyclePolicy,
    MoneyPolicy,
    ReturnPolicy,
    ReturnPolicyConfig,
    TextPolicy,
)
from returnbridge.domain.steps import PlannedStep, decode_steps, encode_steps
from returnbridge.domain.strict import strict_violations
from returnbridge.domain.validation import (
    MAX_EXTERNAL_REFERENCE,
    ReferenceData,
    ReferenceDataConfig,
    Validator,
    default_validator,
    full_validator,
    minimal_validate,
    validate_return_order,
)

__all__ = [
    "ERPS",
    "ISO_4217",
    "MAX_EXTERNAL_REFERENCE",
    "STATES",
    "SYSTEM",
    "TRANSITIONS",
    "DocumentKind",
    "ErpDescriptor",
    "LifecyclePolicy",
    "MoneyPolicy",
    "PlannedStep",
    "Principal",
    "ReferenceData",
    "ReferenceDataConfig",
    "ReturnPolicy",
    "ReturnPolicyConfig",
    "TextPolicy",
    "Validator",
    "admit",
    "allowed_events",
    "by_alias",
    "current_principal",
    "current_tenant",
    "decode_steps",
    "default_validator",
    "encode_steps",
    "enum_short",
    "enum_value",
    "erp_enum",
    "erp_name",
    "full_validator",
    "line_amount",
    "maybe_principal",
    "minimal_validate",
    "minor_units",
    "new_request_id",
    "quantum",
    "request_id",
    "set_principal",
    "set_request_id",
    "strict_violations",
    "validate_return_order",
]
