"""Oracle EBS connector settings and the PL/SQL record fields its blocks may assign."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import ORACLE_EBS

ERP = ORACLE_EBS.name
RMA = "OE_ORDER_PUB.PROCESS_ORDER"
CREDIT_MEMO = "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST"
DOCUMENT_TYPES = (RMA, CREDIT_MEMO)
STATUS_TABLES = {RMA: "OE_ORDER_HEADERS_ALL", CREDIT_MEMO: "RA_CM_REQUESTS_ALL"}


# PL/SQL record fields the blocks may assign, with their kinds ("n" number, int = VARCHAR2 size).
HEADER_FIELDS: dict[str, Any] = {
    "org_id": "n",
    "order_type_id": "n",
    "sold_to_org_id": "n",
    "ship_to_org_id": "n",
    "invoice_to_org_id": "n",
    "price_list_id": "n",
    "transactional_curr_code": 15,
    "cust_po_number": 50,
    "orig_sys_document_ref": 50,
    "return_reason_code": 30,
    "ordered_date": 10,
    "salesrep_id": "n",
    "order_source_id": "n",
}
LINE_FIELDS: dict[str, Any] = {
    "line_category_code": 30,
    "line_type_id": "n",
    "inventory_item_id": "n",
    "ordered_item": 2000,
    "ordered_quantity": "n",
    "order_quantity_uom": 3,
    "ship_from_org_id": "n",
    "subinventory": 10,
    "return_reason_code": 30,
    "return_context": 30,
    "return_attribute1": 240,
    "return_attribute2": 240,
    "unit_selling_price": "n",
    "unit_list_price": "n",
    "orig_sys_line_ref": 50,
    "calculate_price_flag": 1,
    # Line descriptive flexfield (OE_ORDER_LINES_ALL.CONTEXT / ATTRIBUTE1..15): tenant data such as the RMS
    # cost center and vendor code, which EBS has no standard line field for.
    "context": 30,
    **{f"attribute{i}": 240 for i in range(1, 16)},
}
LOT_SERIAL_FIELDS: dict[str, Any] = {
    "line_index": "n",
    "lot_number": 80,
    "from_serial_number": 30,
    "to_serial_number": 30,
    "quantity": "n",
}
ACTION_FIELDS: dict[str, Any] = {"request_type": 30, "entity_code": 30}
CM_PARAMS: dict[str, Any] = {
    "p_customer_trx_id": "n",
    "p_line_credit_flag": 1,
    "p_line_amount": "n",
    "p_tax_amount": "n",
    "p_freight_amount": "n",
    "p_cm_reason_code": 30,
    "p_comments": 240,
    "p_orig_trx_number": 20,
    "p_org_id": "n",
    "p_batch_source_name": 50,
    "p_skip_workflow_flag": 1,
    "p_credit_method_installments": 30,
    "p_credit_method_rules": 30,
    "p_trx_number": 20,
}
CM_LINE_FIELDS: dict[str, Any] = {
    "customer_trx_line_id": "n",
    "extended_amount": "n",
    "quantity_credited": "n",
    "price": "n",
}
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


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
