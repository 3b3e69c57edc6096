"""NetSuite simulator settings: its own module so the record book and the server both read it without a cycle."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NetSuiteSimulatorConfig", "OAuth2ClientConfig", "TbaToken"]


class TbaToken(BaseModel):
    consumer_key: str
    secret: str


class OAuth2ClientConfig(BaseModel):
    client_id: str
    certificate_id: str
    public_key_pem: str


class NetSuiteSimulatorConfig(BaseModel):
    """Simulator settings; the defaults are what ``returnbridge serve`` runs with (never production secrets)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = "1234567"
    #: OAuth 1.0a realm; default: account id upper case with "-" -> "_" (sandbox "1234567_SB1").
    realm: str | None = None
    consumers: dict[str, str] = Field(default_factory=lambda: {"rb-sim-consumer": "rb-sim-consumer-secret"})
    tokens: dict[str, TbaToken] = Field(
        default_factory=lambda: {
            "rb-sim-token": TbaToken(consumer_key="rb-sim-consumer", secret="rb-sim-token-secret")
        }
    )
    oauth2_clients: list[OAuth2ClientConfig] = Field(default_factory=list)
    access_token_lifetime: int = Field(default=3600, ge=1)
    timestamp_max_age: int = Field(default=300, ge=1)
    #: How far a timestamp may lag the newest one seen for the token (requests race each other).
    timestamp_backward_tolerance: int = Field(default=5, ge=0)
    #: Status of a new return authorization (unconfirmed which one an account uses: it is a preference).
    ra_initial_status: Literal["Pending Receipt", "Pending Approval"] = "Pending Receipt"
    #: Requests in flight across the account (0 = unlimited); developer accounts allow 5.
    concurrency_limit: int = Field(default=5, ge=0)
    #: What an over-limit request gets (REST status and body are unconfirmed).
    concurrency_status: int = 429
    concurrency_error_code: str = "CONCURRENCY_LIMIT_EXCEEDED"
    concurrency_retry_after: int | None = 1
    duplicate_error_code: str = "DUP_RCRD"
    #: A second record of a type with an existing externalId (POST, transform, PATCH): "refuse" (NetSuite:
    #: external ids are unique per record type) or "accept" (store it, so a missing lookup shows up as a
    #: duplicate). PUT eid:<id> is an upsert either way.
    duplicates: Literal["refuse", "accept"] = "refuse"
    #: X-NetSuite-PropertyNameValidation when a request sends none: "Error" refuses unknown fields (the
    #: account default is not documented in our sources; the stricter choice is the default).
    property_name_validation: Literal["Error", "Warning", "Ignore"] = "Error"
    require_prefer_transient: bool = True
    field_lengths: dict[str, int] = Field(
        default_factory=lambda: {
            "externalId": 255,
            "memo": 999,
            "otherRefNum": 45,
            "description": 999,
            "custom": 300,
            "receiptInventoryNumber": 255,
        }
    )
    suiteql_max_limit: int = 1000
    seed: bool = True

    def resolved_realm(self) -> str:
        return self.realm or self.account_id.replace("-", "_").upper()
