"""Each ERP described once: enum value, names, pack folders, connector kinds, document types, inbound mappings.

Routing, delivery, sync, the DLQ CLI and the round-trip check read these descriptors; adding an ERP means one
descriptor here, a connector, a pack folder and a simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from returnbridge.api.v1 import common_pb2

__all__ = [
    "ERPS",
    "NETSUITE",
    "ORACLE_EBS",
    "ORACLE_FUSION",
    "SAP_S4HANA",
    "DocumentKind",
    "ErpDescriptor",
    "by_alias",
    "carried_fields",
    "contract_document_type",
    "erp_enum",
    "erp_name",
]


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """One outbound mapping and the ERP document it feeds (the cross-team contract: exactly one type)."""

    mapping: str
    document_type: str
    # Canonical header and line fields the document carries and its ``<mapping>_in`` echo reads back
    # (names as in ``mapping/roundtrip.py``); the delivery worker verifies them before calling the ERP.
    header_fields: tuple[str, ...] = ()
    line_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ErpDescriptor:
    """What the pipeline knows about one ERP family."""

    name: str
    enum_value: int
    # Other names operators type for it (CLI flags).
    aliases: tuple[str, ...]
    # Mapping pack folders under ``mapping/packs/`` holding its specs.
    pack_folders: tuple[str, ...]
    # Registered connector kinds (``connectors/registry.py``) that talk to it.
    connector_kinds: tuple[str, ...]
    documents: tuple[DocumentKind, ...]
    # (inventory level mapping, document status mapping) the poller reads it with; None: not polled.
    inbound: tuple[str, str] | None = None


_NS_LINES: Final = ("line_id", "sku", "quantity", "price", "tax", "cost_center", "vendor_code", "site")
_ORDER_LINES: Final = (
    "line_id", "sku", "quantity", "price", "cost_center", "vendor_code", "site", "sub_location", "original_line",
)  # fmt: skip

NETSUITE: Final = ErpDescriptor(
    name="netsuite",
    enum_value=common_pb2.ERP_SYSTEM_NETSUITE,
    aliases=(),
    pack_folders=("netsuite",),
    connector_kinds=("netsuite",),
    documents=(
        DocumentKind(
            "netsuite/return_authorization",
            "returnAuthorization",
            ("rma_number", "return_id", "customer", "currency", "original_order", "restocking_fee"),
            (
                "line_id",
                "sku",
                "quantity",
                "price",
                "tax",
                "serials",
                "cost_center",
                "vendor_code",
                "site",
                "lot",
            ),
        ),
        DocumentKind(
            "netsuite/item_receipt",
            "itemReceipt",
            ("return_id",),
            ("line_id", "sku", "quantity", "serials", "cost_center", "vendor_code", "site", "lot"),
        ),
        DocumentKind(
            "netsuite/credit_memo",
            "creditMemo",
            ("return_id", "customer", "restocking_fee", "tax_total", "refund_amount"),
            _NS_LINES,
        ),
        DocumentKind(
            "netsuite/cash_refund",
            "cashRefund",
            ("return_id", "restocking_fee", "tax_total", "refund_amount"),
            _NS_LINES,
        ),
    ),
    inbound=("netsuite/inventory_level", "netsuite/document_status"),
)

SAP_S4HANA: Final = ErpDescriptor(
    name="sap_s4hana",
    enum_value=common_pb2.ERP_SYSTEM_SAP_S4HANA,
    aliases=("sap",),
    pack_folders=("sap",),
    connector_kinds=("sap_odata", "sap_rfc"),
    documents=(
        DocumentKind(
            "sap/customer_return",
            "A_CustomerReturn",
            ("customer", "currency", "original_order"),
            ("sku", "quantity", "serials", "vendor_rtv", "site", "sub_location", "original_line"),
        ),
        DocumentKind(
            "sap/returns_delivery",
            "A_ReturnsDeliveryHeader",
            (),
            ("quantity", "serials", "cost_center", "site", "sub_location", "lot"),
        ),
        DocumentKind(
            "sap/credit_memo_request",
            "A_CreditMemoRequest",
            ("customer", "currency"),
            ("sku", "quantity", "price", "site"),
        ),
        # REF_DOC_IT is NUMC(6): the original line id comes back zero-padded, so it is not compared.
        DocumentKind(
            "sap/rfc_customer_return",
            "BAPI_CUSTOMERRETURN_CREATE",
            ("currency", "customer", "original_order"),
            ("sku", "quantity", "site", "sub_location", "lot"),
        ),
    ),
    inbound=("sap/material_stock", "sap/document_status"),
)

ORACLE_FUSION: Final = ErpDescriptor(
    name="oracle_fusion",
    enum_value=common_pb2.ERP_SYSTEM_ORACLE_FUSION,
    aliases=(),
    pack_folders=("oracle",),
    connector_kinds=("oracle_fusion",),
    documents=(
        DocumentKind(
            "oracle/return_order",
            "salesOrdersForOrderHub",
            ("rma_number", "customer", "currency", "original_order_by_line"),
            _ORDER_LINES,
        ),
        DocumentKind(
            "oracle/receipt",
            "receivingReceiptRequests",
            ("customer",),
            ("line_id", "sku", "quantity", "serials", "site", "sub_location", "lot"),
        ),
        DocumentKind(
            "oracle/credit_memo",
            "receivablesCreditMemos",
            ("customer", "currency"),
            ("sku", "quantity", "price"),
        ),
    ),
    inbound=("oracle/onhand", "oracle/document_status"),
)

ORACLE_EBS: Final = ErpDescriptor(
    name="oracle_ebs",
    enum_value=common_pb2.ERP_SYSTEM_ORACLE_EBS,
    aliases=(),
    pack_folders=("oracle_ebs",),
    connector_kinds=("oracle_ebs",),
    documents=(
        DocumentKind(
            "oracle_ebs/rma",
            "OE_ORDER_PUB.PROCESS_ORDER",
            ("rma_number", "customer", "currency", "original_order_by_line"),
            _ORDER_LINES,
        ),
        DocumentKind(
            "oracle_ebs/credit_memo", "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST", (), ("quantity", "price")
        ),
    ),
)

#: Every ERP family by its name, in enum order.
ERPS: Final[Mapping[str, ErpDescriptor]] = MappingProxyType(
    {erp.name: erp for erp in (NETSUITE, SAP_S4HANA, ORACLE_FUSION, ORACLE_EBS)}
)
_BY_ENUM: Final = MappingProxyType({erp.enum_value: erp for erp in ERPS.values()})
_BY_ALIAS: Final = MappingProxyType(
    {alias: erp for erp in ERPS.values() for alias in (erp.name, *erp.aliases)}
)
_DOCUMENTS: Final = MappingProxyType({doc.mapping: doc for erp in ERPS.values() for doc in erp.documents})


def erp_enum(name: str) -> int:
    """``"sap_s4hana"`` -> ``ERP_SYSTEM_SAP_S4HANA``; 0 (unspecified) for an unknown name."""
    erp = ERPS.get(name)
    return erp.enum_value if erp is not None else common_pb2.ERP_SYSTEM_UNSPECIFIED


def erp_name(value: int, default: str = "") -> str:
    """``ERP_SYSTEM_SAP_S4HANA`` -> ``"sap_s4hana"``; ``default`` for an unknown value."""
    erp = _BY_ENUM.get(value)
    return erp.name if erp is not None else default


def by_alias(name: str) -> ErpDescriptor | None:
    """The ERP a name or alias (``"sap"``) stands for."""
    return _BY_ALIAS.get(name)


def contract_document_type(mapping_id: str) -> str | None:
    """The document type a shipped outbound mapping feeds; None for a mapping outside the contract."""
    doc = _DOCUMENTS.get(mapping_id)
    return doc.document_type if doc is not None else None


def carried_fields(mapping_id: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(header fields, line fields) the document of ``mapping_id`` carries; None outside the contract."""
    doc = _DOCUMENTS.get(mapping_id)
    return (doc.header_fields, doc.line_fields) if doc is not None else None
