"""The EBS stand-in's database: tables and column rules, seeded invoices, faults, shared per simulator."""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.oracle import (
    OracleSimulator,
)
from returnbridge.simulators.oracle_db_errors import (
    OperationalError,
    _raise,
)

# -- the database -------------------------------------------------------------------------------------

ORDERS_TABLE = "OE_ORDER_HEADERS_ALL"
CM_TABLE = "RA_CM_REQUESTS_ALL"
OPERATING_UNITS = {204: "US1 Business Unit", 205: "UK1 Business Unit"}
ORDER_TYPES = {1436: "Mixed"}
LINE_TYPES = {1437: "Return (Receipt)", 1438: "Return (Credit only)"}
# The interface tables' column sizes, kept here on purpose rather than shared with connectors/oracle_ebs_config:
# the stand-in checks the connector, so a wrong size there must not silently become the stand-in's too.
_HEADER_FIELDS = {
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
    "operation": 30,
}
_LINE_FIELDS = {
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
    "operation": 30,
    # Line descriptive flexfield: context and ATTRIBUTE1..15 of OE_ORDER_LINES_ALL.
    "context": 30,
    **{f"attribute{i}": 240 for i in range(1, 16)},
}
_LOT_SERIAL_FIELDS = {
    "line_index": "n",
    "lot_number": 80,
    "from_serial_number": 30,
    "to_serial_number": 30,
    "quantity": "n",
    "operation": 30,
}
_ACTION_FIELDS = {"request_type": 30, "entity_code": 30, "entity_id": "n"}
_CM_PARAMS = {
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
    "p_api_version": "n",
    "p_init_msg_list": 1,
    "p_commit": 1,
    "p_validation_level": "n",
}
_CM_LINE_FIELDS = {
    "customer_trx_line_id": "n",
    "extended_amount": "n",
    "quantity_credited": "n",
    "price": "n",
}
_ATTR_FIELDS = {"attribute_category": 30, **{f"attribute{i}": 150 for i in range(1, 16)}}


@dataclass
class Invoice:
    customer_trx_id: int
    trx_number: str
    customer: str
    org_id: int
    currency: str
    # customer_trx_line_id -> (item, quantity invoiced, unit price)
    lines: dict[int, tuple[str, Decimal, Decimal]]
    credited: dict[int, Decimal] = field(default_factory=dict)


def _seed_invoices() -> dict[int, Invoice]:
    # Invoice 10001 has enough lines for any canonical return (lines 100011.. in return-line order).
    skus = [f"SKU-{n}" for n in range(1001, 1009)]
    big = {100010 + i: (skus[(i - 1) % len(skus)], Decimal(1000), Decimal("19.99")) for i in range(1, 501)}
    return {
        10001: Invoice(10001, "INV-10001", "1001", 204, "USD", big),
        10002: Invoice(
            10002, "INV-10002", "1002", 204, "USD", {100021: ("SKU-1003", Decimal(10), Decimal("7.25"))}
        ),
    }


class EbsDatabase:
    """The EBS schema the stand-in serves, sharing documents, stock and ledger with an OracleSimulator."""

    def __init__(
        self,
        simulator: OracleSimulator | None = None,
        *,
        user: str = "APPS",
        password: str = "apps",
        service: str = "EBSDB",
    ) -> None:
        self.simulator = simulator or OracleSimulator()
        self.user = user
        self.password = password
        self.service = service
        self.lock = threading.RLock()
        self.executed: list[tuple[str, dict[str, Any]]] = []
        self.invoices = _seed_invoices()
        self.plan = FaultPlan()
        self._rng = random.Random()
        self._pattern: re.Pattern[str] | None = None
        self.unexpected_errors = 0
        self._ids = 0
        self._released = threading.Event()
        self.simulator.kit.on_reset.append(lambda _state: self._reset())

    def _reset(self) -> None:
        with self.lock:
            self.invoices = _seed_invoices()
            self.executed.clear()
            self.set_faults({})

    @property
    def state(self) -> Any:
        return self.simulator.state

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def set_faults(self, plan: dict[str, Any]) -> None:
        """Install a fault plan (same fields as the HTTP simulators' ``PUT /_sim/faults``)."""
        parsed = FaultPlan.from_json(plan)
        with self.lock:
            self.plan = parsed
            self._rng = random.Random(parsed.seed)
            self._pattern = re.compile(parsed.path_pattern) if parsed.path_pattern else None
        # Wake any call blocked by an earlier hang plan.
        self._released.set()
        self._released = threading.Event()

    def _latency(self, sql: str) -> float:
        """Seconds this statement takes (``latency_ms_min``/``max`` of the plan, for matching SQL)."""
        with self.lock:
            plan = self.plan
            if plan.latency_ms_max <= 0 or (self._pattern is not None and not self._pattern.search(sql)):
                return 0.0
            return self._rng.uniform(plan.latency_ms_min, plan.latency_ms_max) / 1000

    def _fault(self, sql: str) -> str | None:
        """The fault to inject for this statement (None = run normally); counts against ``remaining``."""
        with self.lock:
            plan = self.plan
            if plan.remaining is not None and plan.remaining <= 0:
                return None
            if self._pattern is not None and not self._pattern.search(sql):
                return None
            fault: str | None = None
            if plan.hang:
                fault = "hang"
            elif plan.outage:
                fault = "outage"
            elif plan.error_rate and self._rng.random() < plan.error_rate:
                fault = f"status_{self._rng.choice(plan.error_statuses)}"
            elif plan.commit_then_drop_rate and self._rng.random() < plan.commit_then_drop_rate:
                fault = "commit_then_drop"
            if fault is not None and plan.remaining is not None:
                plan.remaining -= 1
            return fault

    def connect_fault(self) -> None:
        with self.lock:
            outage = self.plan.outage and (self.plan.remaining is None or self.plan.remaining > 0)
        if outage:
            _raise(
                OperationalError,
                "DPY-6005",
                "cannot connect to database (CONNECTION_ID=sim).",
                recoverable=True,
            )

    def now(self) -> datetime:
        return datetime.fromisoformat(self.simulator.now())


def shared_database(simulator: OracleSimulator) -> EbsDatabase:
    """The one EbsDatabase over ``simulator`` (created on first use), so every stand-in driver sees one EBS."""
    database = getattr(simulator, "_ebs_database", None)
    if not isinstance(database, EbsDatabase):
        database = EbsDatabase(simulator)
        setattr(simulator, "_ebs_database", database)  # noqa: B010 - not a declared dataclass field
    return database
