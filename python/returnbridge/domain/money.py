"""Money rules: ISO 4217 currencies with their minor units, and rounding a line amount to them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final

__all__ = ["DEFAULT_MINOR_UNITS", "ISO_4217", "line_amount", "minor_units", "quantum"]

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
# Places assumed for a currency outside the table: the common case, so a sum is still exact to the cent.
DEFAULT_MINOR_UNITS: Final = 2


def minor_units(currency: str, table: Mapping[str, int] = ISO_4217) -> int:
    """Decimal places of ``currency`` (DEFAULT_MINOR_UNITS when unknown)."""
    return table.get(currency, DEFAULT_MINOR_UNITS)


def quantum(places: int) -> Decimal:
    """``Decimal("0.01")`` for 2 places, ``Decimal("1")`` for 0: the step amounts are rounded to."""
    return Decimal(1).scaleb(-places)


def line_amount(quantity: Decimal, unit_price: Decimal, places: int) -> Decimal:
    """quantity x unit price rounded half-up to ``places``: the one rounding rule of every line total."""
    return (quantity * unit_price).quantize(quantum(places), rounding=ROUND_HALF_UP)
