"""OData v2 protocol pieces of the SAP connector: Gateway error bodies, key quoting, exact-number and date checks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from returnbridge.domain.erps import SAP_S4HANA
from returnbridge.errors import (
    PermanentErpError,
)

ERP = SAP_S4HANA.name


def parse_odata_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) of an SAP Gateway error; the innererror's detail messages are appended."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return str(response.status_code), text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(response.status_code), response.text[:500]
    code = str(error.get("code", ""))
    message = error.get("message", "")
    text = str(message.get("value", "")) if isinstance(message, dict) else str(message)
    details = (error.get("innererror") or {}).get("errordetails") or []
    extra = [
        f"{d.get('code', '')}: {d.get('message', '')}"
        for d in details
        if isinstance(d, dict) and d.get("message") and d.get("message") != text
    ]
    if extra:
        text = f"{text} ({'; '.join(extra)})"
    return code, text


def quote_key(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_no_json_numbers(value: Any, path: str = "$") -> None:
    """SAP wants decimals as strings; a JSON number in the mapper output is a pack bug, not an ERP issue."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_no_json_numbers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_no_json_numbers(v, f"{path}[{i}]")
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        raise PermanentErpError(
            f"payload {path} is a JSON number; SAP OData expects decimals as strings", erp=ERP, code="PAYLOAD"
        )


def entity_record(entity: dict[str, Any]) -> dict[str, Any]:
    """The entity's own properties: no __metadata, no deferred or expanded navigation properties."""
    return {k: v for k, v in entity.items() if k != "__metadata" and not isinstance(v, dict | list)}


def date_ms(value: Any) -> int | None:
    if isinstance(value, str) and value.startswith("/Date(") and value.endswith(")/"):
        digits = value[6:-2].split("+")[0]
        if digits.lstrip("-").isdigit():
            return int(digits)
    return None
