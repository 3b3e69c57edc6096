"""Conformance harnesses for the Oracle connectors: Fusion REST on the HTTP simulator, EBS on the oracledb stand-in."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

from connectors.harness import ALL_CAPABILITIES, CAP_HTTP, CAP_RETRY_AFTER, with_duplicate_policies
from returnbridge.connectors.base import Connector, DocumentRequest
from returnbridge.connectors.oracle_ebs import RMA, OracleEbsConfig, OracleEbsConnector
from returnbridge.connectors.oracle_fusion import (
    CREDIT_MEMOS,
    ORDERS,
    OracleFusionConfig,
    OracleFusionConnector,
)
from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.oracle import OracleSimConfig, OracleSimulator
from returnbridge.simulators.oracle_db import ORDERS_TABLE, EbsDatabase, StandInDriver

USER, PASSWORD = "integration.user", "Welcome1!"
EBS_USER, EBS_PASSWORD, EBS_DSN = "apps", "apps", "127.0.0.1:1521/EBSDB"


def return_order_payload(
    *, sku: str = "SKU-1001", quantity: Decimal = Decimal("2"), unit_price: Decimal = Decimal("19.99")
) -> dict[str, Any]:
    return {
        "BusinessUnitName": "US1 Business Unit",
        "BuyingPartyNumber": "1001",
        "TransactionTypeCode": "STD",
        "TransactionalCurrencyCode": "USD",
        "CustomerPONumber": "RMA-1001",
        "SubmittedFlag": True,
        "lines": [
            {
                "SourceTransactionLineId": "L1",
                "SourceTransactionLineNumber": "1",
                "TransactionCategoryCode": "RETURN",
                "ProductNumber": sku,
                "OrderedQuantity": quantity,
                "OrderedUOMCode": "Ea",
                "ReturnReasonCode": "DAMAGED",
                "RequestedFulfillmentOrganizationCode": "DAL1",
                "UnitListPrice": unit_price,
                "documentReferences": [
                    {
                        "DocumentReferenceType": "ORIGINAL_SALES_ORDER",
                        "DocumentNumber": "520001",
                        "DocumentLineNumber": "1",
                    }
                ],
            }
        ],
    }


def credit_memo_payload(
    *, quantity: Decimal = Decimal("2"), unit_price: Decimal = Decimal("19.99")
) -> dict[str, Any]:
    return {
        "BusinessUnit": "US1 Business Unit",
        "TransactionSource": "Manual",
        "TransactionType": "Credit Memo",
        "TransactionDate": "2026-11-27",
        "CreditMemoCurrency": "USD",
        "BillToCustomerNumber": "1001",
        "CreditMemoComments": "Return RMA-1001",
        "receivablesCreditMemoLines": [
            {
                "LineNumber": 1,
                "LineDescription": "SKU-1001 returned",
                "ItemNumber": "SKU-1001",
                "LineQuantityCredit": quantity,
                "UnitSellingPrice": -unit_price,
            }
        ],
    }


def rma_payload(
    *, item_id: int = 2001, quantity: Decimal = Decimal("2"), unit_price: Decimal = Decimal("19.99")
) -> dict[str, Any]:
    return {
        "p_header_rec": {
            "org_id": 204,
            "order_type_id": 1436,
            "sold_to_org_id": 1001,
            "transactional_curr_code": "USD",
            "cust_po_number": "RMA-1001",
            "return_reason_code": "DAMAGED",
        },
        "p_line_tbl": [
            {
                "line_category_code": "RETURN",
                "line_type_id": 1437,
                "inventory_item_id": item_id,
                "ordered_quantity": str(quantity),
                "order_quantity_uom": "Ea",
                "ship_from_org_id": 207,
                "subinventory": "RETURNS",
                "return_reason_code": "DAMAGED",
                "unit_selling_price": str(unit_price),
                "orig_sys_line_ref": "L1",
            }
        ],
    }


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=str).encode()


class _FusionHarness:
    """Fusion REST connector against a fresh Oracle HTTP simulator."""

    name = "oracle_fusion"
    document_type = ORDERS
    capabilities = ALL_CAPABILITIES
    write_path_pattern = r"/salesOrdersForOrderHub$"
    stock_sku = "SKU-1001"
    stock_site = "DAL1"
    sim_config = OracleSimConfig()
    upsert = False

    def __init__(self, *, duplicates: str = "refuse") -> None:
        self.duplicates = duplicates
        self.sim = OracleSimulator(dataclasses.replace(self.sim_config, duplicates=duplicates))
        self.running = RunningSimulator(self.sim.app)
        self._connectors: list[Connector] = []

    async def start(self) -> None:
        await self.running.start()

    async def stop(self) -> None:
        self.sim.kit.faults.reset()
        for connector in self._connectors:
            await connector.aclose()
        await self.running.stop()

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> Connector:
        config = OracleFusionConfig(
            base_url=self.running.url,
            username=USER,
            password="wrong" if bad_credentials else PASSWORD,
            timeout_seconds=timeout or 10.0,
        )
        connector = OracleFusionConnector(config)
        self._connectors.append(connector)
        return connector

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        payload = return_order_payload(quantity=quantity, unit_price=unit_price)
        return DocumentRequest(self.document_type, external_reference, _dumps(payload), timeout=timeout)

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        return DocumentRequest(
            self.document_type, external_reference, _dumps(return_order_payload(sku="SKU-9999"))
        )

    async def set_faults(self, plan: dict[str, Any]) -> None:
        self.sim.kit.faults.set(FaultPlan.from_json(plan))

    async def clear_faults(self) -> None:
        self.sim.kit.faults.reset()

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        field = {ORDERS: "SourceTransactionNumber", CREDIT_MEMOS: "PurchaseOrder"}[document_type]
        docs = self.sim.state.documents[document_type].values()
        return sum(1 for d in docs if d.get(field) == external_reference)

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        doc = self.sim.state.documents[document_type][document_id]
        return [(Decimal(ln["OrderedQuantity"]), Decimal(ln["UnitListPrice"])) for ln in doc["lines"]]

    def unknown_document_id(self) -> str:
        return "300000999999"

    async def change_stock(self, sku: str, site: str, delta: Decimal) -> None:
        self.sim.adjust_stock(sku, site, "Stores", delta)

    def inventory_entry(self, record: dict[str, Any]) -> tuple[str, str, Decimal]:
        if record["SubinventoryCode"] != "Stores":
            return (
                record["ItemNumber"],
                f"{record['OrganizationCode']}/{record['SubinventoryCode']}",
                Decimal(record["PrimaryTransactionQuantity"]),
            )
        return record["ItemNumber"], record["OrganizationCode"], Decimal(record["PrimaryTransactionQuantity"])

    def status_entry(self, record: dict[str, Any]) -> tuple[str, str]:
        return record["DocumentId"], record["StatusCode"]


class _FusionCreditMemoHarness(_FusionHarness):
    """AR credit memos, with the simulator answering errors as plain text (older framework versions)."""

    name = "oracle_fusion-credit_memo-text_errors"
    document_type = CREDIT_MEMOS
    write_path_pattern = r"/receivablesCreditMemos$"
    sim_config = OracleSimConfig(error_format="text")

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        payload = credit_memo_payload(quantity=quantity, unit_price=unit_price)
        return DocumentRequest(self.document_type, external_reference, _dumps(payload), timeout=timeout)

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        payload = credit_memo_payload()
        payload["BillToCustomerNumber"] = "9999"
        return DocumentRequest(self.document_type, external_reference, _dumps(payload))

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        doc = self.sim.state.documents[document_type][document_id]
        # A credit's unit price is stored negative; the suite compares magnitudes.
        return [
            (Decimal(ln["LineQuantityCredit"]), -Decimal(ln["UnitSellingPrice"]))
            for ln in doc["receivablesCreditMemoLines"]
        ]


class _EbsHarness:
    """EBS connector against the python-oracledb stand-in sharing the Oracle simulator's state."""

    name = "oracle_ebs"
    document_type = RMA
    # No HTTP status, so no Retry-After to carry; the EBS stand-in refuses a repeated orig_sys_document_ref.
    capabilities = ALL_CAPABILITIES - {CAP_RETRY_AFTER, CAP_HTTP}
    duplicates = "refuse"
    upsert = False
    write_path_pattern = r"^COMMIT$"
    stock_sku = "SKU-1001"
    stock_site = "DAL1"

    def __init__(self) -> None:
        self.sim = OracleSimulator()
        self.db = EbsDatabase(self.sim)
        self._connectors: list[Connector] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.db.set_faults({})
        for connector in self._connectors:
            await connector.aclose()

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> Connector:
        config = OracleEbsConfig(
            dsn=EBS_DSN,
            user=EBS_USER,
            password="wrong" if bad_credentials else EBS_PASSWORD,
            timeout_seconds=timeout or 10.0,
            pool_max=8,
            max_concurrency=8,
        )
        connector = OracleEbsConnector(config, driver=StandInDriver(self.db))
        self._connectors.append(connector)
        return connector

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        payload = rma_payload(quantity=quantity, unit_price=unit_price)
        return DocumentRequest(self.document_type, external_reference, _dumps(payload), timeout=timeout)

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        return DocumentRequest(self.document_type, external_reference, _dumps(rma_payload(item_id=9999)))

    async def set_faults(self, plan: dict[str, Any]) -> None:
        self.db.set_faults(plan)

    async def clear_faults(self) -> None:
        self.db.set_faults({})

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        docs = self.sim.state.documents[ORDERS_TABLE].values()
        return sum(1 for d in docs if d["ORIG_SYS_DOCUMENT_REF"] == external_reference)

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        doc = self.sim.state.documents[ORDERS_TABLE][document_id]
        return [(ln["ORDERED_QUANTITY"], ln["UNIT_SELLING_PRICE"]) for ln in doc["LINES"]]

    def unknown_document_id(self) -> str:
        return "1"

    async def change_stock(self, sku: str, site: str, delta: Decimal) -> None:
        self.sim.adjust_stock(sku, site, "Stores", delta)

    def inventory_entry(self, record: dict[str, Any]) -> tuple[str, str, Decimal]:
        site = record["ORGANIZATION_CODE"]
        if record["SUBINVENTORY_CODE"] != "Stores":
            site = f"{site}/{record['SUBINVENTORY_CODE']}"
        return record["ITEM_NUMBER"], site, Decimal(record["PRIMARY_TRANSACTION_QUANTITY"])

    def status_entry(self, record: dict[str, Any]) -> tuple[str, str]:
        return record["DocumentId"], record["StatusCode"]


HARNESSES = [
    *with_duplicate_policies(_FusionHarness),
    *with_duplicate_policies(_FusionCreditMemoHarness),
    _EbsHarness,
]
