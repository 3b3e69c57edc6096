"""Oracle E-Business Suite connector settings and the two document types it creates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import ORACLE_EBS

ERP = ORACLE_EBS.name
RMA = "OE_ORDER_PUB.PROCESS_ORDER"
CREDIT_MEMO = "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST"
DOCUMENT_TYPES = (RMA, CREDIT_MEMO)
SQL_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


class OracleEbsConfig(BaseModel):
    """``kind: oracle_ebs`` connector section (needs the ``oracle`` extra: python-oracledb)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["oracle_ebs"] = "oracle_ebs"
    #: Easy Connect string ``host:port/service_name``.
    dsn: str
    user: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=4, ge=1, le=64)
    pool_increment: int = Field(default=1, ge=1)
    #: Seconds to wait for a free pooled session before DPY-4005.
    pool_wait_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Calls in flight at once against this EBS instance (<= pool_max makes sense).
    max_concurrency: int = Field(default=4, ge=1, le=64)
    #: Per-call database round-trip limit (python-oracledb ``call_timeout``).
    timeout_seconds: float = Field(default=60.0, gt=0)
    #: Operating unit used when the payload names none.
    default_org_id: int | None = None
    #: FND_GLOBAL.APPS_INITIALIZE(user_id, resp_id, resp_appl_id) before each call, when all three are set.
    apps_user_id: int | None = None
    apps_resp_id: int | None = None
    apps_resp_appl_id: int | None = None
    #: Add a BOOK_ORDER action request so RMAs are booked at once.
    book_orders: bool = False

    @model_validator(mode="after")
    def _check(self) -> OracleEbsConfig:
        if not (self.password or self.password_env or self.password_file):
            raise ValueError("needs one of password_env, password_file, password")
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must be <= pool_max")
        return self

    def secret(self) -> str:
        """The password, read now (ConfigError naming the source when it is missing or unreadable)."""
        return read_secret(
            self.password, self.password_env, self.password_file, name="oracle_ebs password"
        ).get_secret_value()
