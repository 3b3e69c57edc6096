"""SAP OData connector settings and wire rules: the Gateway error body, key literals, numbers, dates."""

from __future__ import annotations

import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge.domain.erps import SAP_S4HANA
from returnbridge.errors import (
    PermanentErpError,
    TransientErpError,
)

ERP = SAP_S4HANA.name


class SapODataConfig(BaseModel):
    """``kind: sap_odata`` -- one S/4HANA system (and client) reached over its A2X OData services."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sap_odata"] = "sap_odata"
    #: Scheme, host and port, e.g. ``https://s4.example.com:44300``; services hang under /sap/opu/odata/sap/.
    base_url: str
    #: Sent as the ``sap-client`` query parameter on every call; None leaves it to the system default.
    sap_client: str | None = "100"
    auth: Literal["basic", "oauth2"] = "basic"
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    #: OAuth 2.0 client credentials (SAP's own endpoint is /sap/bc/sec/oauth2/token).
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_env: str | None = None
    client_secret_file: Path | None = None
    scope: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    #: Requests in flight at once against this system (all flows share it).
    max_concurrency: int = Field(default=8, ge=1, le=256)
    customer_return_service: str = "API_CUSTOMER_RETURN_SRV"
    returns_delivery_service: str = "API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
    credit_memo_request_service: str = "API_CREDIT_MEMO_REQUEST_SRV"
    material_stock_service: str = "API_MATERIAL_STOCK_SRV"
    #: Extra $filter on the stock read, e.g. ``Plant eq 'DAL1' or Plant eq 'RNO2'``.
    stock_filter: str = ""

    @model_validator(mode="after")
    def _credentials_named(self) -> SapODataConfig:
        if self.auth == "basic":
            if not self.username:
                raise ValueError("basic auth needs username")
            if not (self.password or self.password_env or self.password_file):
                raise ValueError("basic auth needs one of password_env, password_file, password")
        else:
            if not (self.token_url and self.client_id):
                raise ValueError("oauth2 needs token_url and client_id")
            if not (self.client_secret or self.client_secret_env or self.client_secret_file):
                raise ValueError("oauth2 needs one of client_secret_env, client_secret_file, client_secret")
        return self


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


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def key_literal(value: str) -> str:
    """A quoted OData key literal, percent-encoded for the URL path ('/' is refused, never routed)."""
    if not value or "/" in value or any(ord(c) < 32 for c in value):
        raise PermanentErpError(f"invalid SAP document key {value!r}", erp=ERP, code="REFERENCE")
    return urllib.parse.quote(quote_literal(value), safe="'")


def numeric_key(value: Any) -> str:
    if not str(value).isdigit():
        raise TransientErpError(
            f"SAP sent a non-numeric serial list key {value!r}", erp=ERP, code="BAD_RESPONSE"
        )
    return str(value)


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
