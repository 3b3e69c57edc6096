"""Reference data requests are checked against: ISO 4217 currencies, and known locations, cost centers, vendors, SKUs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from returnbridge.errors import ConfigError
from returnbridge.gateway.security_config import ReferenceDataConfig

__all__ = ["ISO_4217", "ReferenceData"]

# Active ISO 4217 codes -> minor units (decimal places). Most currencies use 2; the exceptions are listed.
_ZERO_DECIMALS: Final = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMALS: Final = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DECIMALS: Final = "CLF UYW"
_TWO_DECIMALS: Final = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE "
    "CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL "
    "HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR "
    "MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK "
    "SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD "
    "XCG YER ZAR ZMW ZWG"
)

ISO_4217: Final[Mapping[str, int]] = MappingProxyType(
    {
        **dict.fromkeys(_TWO_DECIMALS.split(), 2),
        **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
        **dict.fromkeys(_THREE_DECIMALS.split(), 3),
        **dict.fromkeys(_FOUR_DECIMALS.split(), 4),
    }
)

_SET_KEYS: Final = (
    "locations",
    "cost_centers",
    "vendor_codes",
    "skus",
    "customer_tiers",
    "product_types",
    "reason_codes",
    "serial_controlled_skus",
    "lot_controlled_skus",
)


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """Known codes; an empty set means "not checked". ``tenants`` holds per-tenant replacements of the sets."""

    locations: frozenset[str] = frozenset()
    cost_centers: frozenset[str] = frozenset()
    vendor_codes: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()
    customer_tiers: frozenset[str] = frozenset()
    product_types: frozenset[str] = frozenset()
    reason_codes: frozenset[str] = frozenset()
    serial_controlled_skus: frozenset[str] = frozenset()
    lot_controlled_skus: frozenset[str] = frozenset()
    currencies: Mapping[str, int] = field(default_factory=lambda: ISO_4217)
    tenants: Mapping[str, ReferenceData] = field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> ReferenceData:
        """The sets that apply to ``tenant_id``: its own where it has them, the global ones otherwise."""
        return self.tenants.get(tenant_id, self)

    @classmethod
    def from_config(cls, config: ReferenceDataConfig) -> ReferenceData:
        """Inline lists from the config, merged with (and overridden per key by) the YAML file if one is named.

        Raises:
            ConfigError: the file is unreadable or malformed; the message names the file and key.
        """
        base = cls(**{key: frozenset(getattr(config, key)) for key in _SET_KEYS})  # type: ignore[arg-type]
        if config.file is None:
            return base
        return base._merge_file(config.file)

    @classmethod
    def from_yaml(cls, path: Path) -> ReferenceData:
        return cls()._merge_file(path)

    def _merge_file(self, path: Path) -> ReferenceData:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"reference data {path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"reference data {path}: invalid YAML: {exc}") from exc
        if raw is None:
            return self
        if not isinstance(raw, dict):
            raise ConfigError(f"reference data {path}: top level must be a mapping")
        unknown = sorted(set(raw) - {*_SET_KEYS, "currencies", "tenants"})
        if unknown:
            raise ConfigError(f"reference data {path}: unknown keys {unknown}")
        merged = _apply_sets(self, raw, f"{path}")
        currencies = dict(self.currencies)
        for code, digits in (raw.get("currencies") or {}).items():
            if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
                raise ConfigError(
                    f"reference data {path}: currencies: {code!r} is not a 3-letter upper-case code"
                )
            if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= 4:
                raise ConfigError(f"reference data {path}: currencies.{code}: minor units must be 0..4")
            currencies[code] = digits
        merged = replace(merged, currencies=MappingProxyType(currencies))
        tenants_raw = raw.get("tenants") or {}
        if not isinstance(tenants_raw, dict):
            raise ConfigError(f"reference data {path}: tenants must map tenant ids to sets")
        tenants = dict(self.tenants)
        for tenant, sets in tenants_raw.items():
            if not isinstance(sets, dict):
                raise ConfigError(f"reference data {path}: tenants.{tenant} must be a mapping")
            extra = sorted(set(sets) - set(_SET_KEYS))
            if extra:
                raise ConfigError(f"reference data {path}: tenants.{tenant}: unknown keys {extra}")
            tenants[str(tenant)] = replace(_apply_sets(merged, sets, f"{path}: tenants.{tenant}"), tenants={})
        return replace(merged, tenants=MappingProxyType(tenants))


def _apply_sets(base: ReferenceData, raw: Mapping[str, Any], where: str) -> ReferenceData:
    values: dict[str, frozenset[str]] = {}
    for key in _SET_KEYS:
        if key not in raw:
            continue
        items = raw[key] or []
        if not isinstance(items, list) or not all(
            isinstance(i, str | int) and not isinstance(i, bool) for i in items
        ):
            raise ConfigError(f"reference data {where}: {key} must be a list of codes")
        values[key] = frozenset(str(i) for i in items)
    return replace(base, **values)  # type: ignore[arg-type]
