"""Conformance harnesses for the SAP connectors: OData against the HTTP simulator, RFC against its stand-in."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from connectors.harness import (
    ALL_CAPABILITIES,
    CAP_AUTH,
    CAP_COMMIT_THEN_DROP,
    CAP_HANG,
    CAP_INVENTORY,
    CAP_STATUS_CHANGES,
    with_duplicate_policies,
)
from returnbridge.connectors.base import Connector, DocumentRequest
from returnbridge.connectors.sap_odata import SapODataConfig, SapODataConnector
from returnbridge.connectors.sap_rfc import SapRfcConfig, SapRfcConnector
from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.sap import SapSimulator, SapSimulatorConfig, build_simulator
from returnbridge.simulators.sap_rfc import Connection

USER, PASSWORD = "RB_API_USER", "Welcome1!"


def customer_return_payload(
    *, material: str = "SKU-1001", quantity: Decimal = Decimal("2"), unit_price: Decimal = Decimal("19.99")
) -> dict[str, Any]:
    return {
        "CustomerReturnType": "CBAR",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "OrganizationDivision": "00",
        "SoldToParty": "10100001",
        "TransactionCurrency": "USD",
        "SDDocumentReason": "R01",
        "to_Item": [
            {
                "CustomerReturnItem": "10",
                "Material": material,
                "RequestedQuantity": str(quantity),
                "RequestedQuantityUnit": "EA",
                "ProductionPlant": "DAL1",
                "StorageLocation": "RET1",
                "ReturnReason": "101",
                "to_PricingElement": [
                    {
                        "ConditionType": "PR00",
                        "ConditionRateValue": str(unit_price),
                        "ConditionCurrency": "USD",
                    }
                ],
            }
        ],
    }


class _SapHarnessBase:
    document_type = "A_CustomerReturn"
    stock_sku = "SKU-1001"
    stock_site = "DAL1"
    upsert = False

    def __init__(self, *, duplicates: str = "accept") -> None:
        self.duplicates = duplicates
        self.sim: SapSimulator = build_simulator(SapSimulatorConfig(duplicates=duplicates))  # type: ignore[arg-type]
        self._connectors: list[Connector] = []

    async def set_faults(self, plan: dict[str, Any]) -> None:
        self.sim.kit.faults.set(FaultPlan.from_json(plan))

    async def clear_faults(self) -> None:
        self.sim.kit.faults.reset()

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        docs = self.sim.kit.state.documents[document_type].values()
        return sum(
            1 for d in docs if external_reference and d.get("PurchaseOrderByCustomer") == external_reference
        )

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        doc = self.sim.kit.state.documents[document_type][document_id]
        lines = []
        for item in doc["to_Item"]:
            rate = next(
                p["ConditionRateValue"] for p in item["to_PricingElement"] if p["ConditionType"] == "PR00"
            )
            lines.append((Decimal(item["RequestedQuantity"]), Decimal(rate)))
        return lines

    def unknown_document_id(self) -> str:
        return "69999999"

    async def change_stock(self, sku: str, site: str, delta: Decimal) -> None:
        self.sim.kit.state.adjust_stock(sku, site, "0001", delta)

    def inventory_entry(self, record: dict[str, Any]) -> tuple[str, str, Decimal]:
        return record["Material"], record["Plant"], Decimal(record["MatlWrhsStkQtyInMatlBaseUnit"])

    def status_entry(self, record: dict[str, Any]) -> tuple[str, str]:
        return record["SDDocument"], record["OverallSDProcessStatus"]

    async def _close_connectors(self) -> None:
        for connector in self._connectors:
            await connector.aclose()
        self._connectors.clear()


class SapODataHarness(_SapHarnessBase):
    """``sap_odata`` with basic auth, CSRF and session cookies against the OData simulator."""

    name = "sap_odata"
    capabilities = ALL_CAPABILITIES
    write_path_pattern = r"/API_CUSTOMER_RETURN_SRV/A_CustomerReturn$"

    def __init__(self, *, duplicates: str = "accept") -> None:
        super().__init__(duplicates=duplicates)
        self.running: RunningSimulator | None = None

    async def start(self) -> None:
        self.running = await RunningSimulator(self.sim.app).start()

    async def stop(self) -> None:
        await self._close_connectors()
        if self.running is not None:
            await self.running.stop()

    async def set_faults(self, plan: dict[str, Any]) -> None:
        # The lookup before a create reads the same path the create writes; only the write may be dropped.
        if plan.get("commit_then_drop_rate") and not plan.get("methods"):
            plan = {**plan, "methods": ["POST"]}
        await super().set_faults(plan)

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> Connector:
        assert self.running is not None
        config = SapODataConfig(
            base_url=self.running.url,
            username=USER,
            password=SecretStr("wrong" if bad_credentials else PASSWORD),
            timeout=timeout or 5.0,
        )
        connector = SapODataConnector(config)
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
        payload = customer_return_payload(quantity=quantity, unit_price=unit_price)
        return DocumentRequest(
            document_type=self.document_type,
            external_reference=external_reference,
            payload=json.dumps(payload).encode(),
            timeout=timeout,
        )

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        payload = customer_return_payload(material="SKU-9999")
        return DocumentRequest(self.document_type, external_reference, json.dumps(payload).encode())


def rfc_customer_return_payload(
    *, material: str = "SKU-1001", quantity: Decimal = Decimal("2"), unit_price: Decimal = Decimal("19.99")
) -> dict[str, Any]:
    header = {
        "DOC_TYPE": "CBAR",
        "SALES_ORG": "1710",
        "DISTR_CHAN": "10",
        "DIVISION": "00",
        "ORD_REASON": "R01",
        "CURRENCY": "USD",
    }
    item = {
        "ITM_NUMBER": "000010",
        "MATERIAL": material,
        "PLANT": "DAL1",
        "STORE_LOC": "RET1",
        "TARGET_QTY": str(quantity),
        "TARGET_QU": "EA",
    }
    return {
        "RETURN_HEADER_IN": header,
        "RETURN_HEADER_INX": {"UPDATEFLAG": "I", **dict.fromkeys(header, "X")},
        "RETURN_ITEMS_IN": [item],
        "RETURN_ITEMS_INX": [{"UPDATEFLAG": "I", **dict.fromkeys(item, "X"), "ITM_NUMBER": "000010"}],
        "RETURN_PARTNERS": [{"PARTN_ROLE": "AG", "PARTN_NUMB": "10100001"}],
        "RETURN_SCHEDULES_IN": [{"ITM_NUMBER": "000010", "SCHED_LINE": "0001", "REQ_QTY": str(quantity)}],
        "RETURN_CONDITIONS_IN": [
            {"ITM_NUMBER": "000010", "COND_TYPE": "PR00", "COND_VALUE": str(unit_price), "CURRENCY": "USD"}
        ],
    }


class SapRfcHarness(_SapHarnessBase):
    """``sap_rfc`` through the pyrfc stand-in, which works on the same simulator state (no HTTP, no pyrfc)."""

    name = "sap_rfc"
    document_type = "BAPI_CUSTOMERRETURN_CREATE"
    capabilities = frozenset({CAP_AUTH, CAP_COMMIT_THEN_DROP, CAP_INVENTORY, CAP_STATUS_CHANGES, CAP_HANG})
    write_path_pattern = r"^BAPI_TRANSACTION_COMMIT$"

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._close_connectors()

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> Connector:
        config = SapRfcConfig(
            ashost="127.0.0.1",
            client="100",
            user=USER,
            password=SecretStr("wrong" if bad_credentials else PASSWORD),
            timeout=timeout or 5.0,
        )
        logon = {"user": USER, "passwd": "wrong" if bad_credentials else PASSWORD, "client": "100"}
        connector = SapRfcConnector(
            config, connection_factory=lambda: Connection(backend=self.sim.backend, **logon)
        )
        self._connectors.append(connector)
        return connector

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        return await super().count_documents("A_CustomerReturn", external_reference)

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        return await super().stored_lines("A_CustomerReturn", document_id)

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        payload = rfc_customer_return_payload(quantity=quantity, unit_price=unit_price)
        return DocumentRequest(
            self.document_type, external_reference, json.dumps(payload).encode(), timeout=timeout
        )

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        payload = rfc_customer_return_payload(material="SKU-9999")
        return DocumentRequest(self.document_type, external_reference, json.dumps(payload).encode())


HARNESSES: list[Any] = [*with_duplicate_policies(SapODataHarness), *with_duplicate_policies(SapRfcHarness)]
