"""Entity model of the simulated inventory and billing services: material documents and billing documents."""

from __future__ import annotations

from returnbridge.simulators.sap_metadata import (
    DATETIME,
    DECIMAL,
    STRING,
    EntityType,
    FunctionImport,
    Nav,
    Prop,
    Service,
)

BOOLEAN = "Edm.Boolean"
MATDOC_PATH = "API_MATERIAL_DOCUMENT_SRV"
BILLING_PATH = "API_BILLING_DOCUMENT_SRV"
MATDOC, MATDOC_ITEM, BILLING = "A_MaterialDocumentHeader", "A_MaterialDocumentItem", "A_BillingDocument"


def _s(name: str, n: int) -> Prop:
    return Prop(name, STRING, n)


def _ro(name: str, n: int) -> Prop:
    return Prop(name, STRING, n, creatable=False, updatable=False)


def _key(name: str, n: int) -> Prop:
    # Keys of a new document are assigned by the number range; a client value is refused on create.
    return Prop(name, STRING, n, key=True, creatable=False, updatable=False)


# Property names follow the SAP Cloud SDK's MaterialDocumentHeaderType / MaterialDocumentItemType.
MATERIAL_DOCUMENT_HEADER = EntityType(
    "A_MaterialDocumentHeaderType",
    (
        _key("MaterialDocumentYear", 4),
        _key("MaterialDocument", 10),
        _ro("InventoryTransactionType", 2),
        Prop("DocumentDate", DATETIME, precision=0),
        Prop("PostingDate", DATETIME, precision=0),
        Prop("CreationDate", DATETIME, precision=0, creatable=False, updatable=False),
        _ro("CreatedByUser", 12),
        _s("MaterialDocumentHeaderText", 25),
        _s("ReferenceDocument", 16),
        _s("GoodsMovementCode", 2),
    ),
    (Nav("to_MaterialDocumentItem", "A_MaterialDocumentItemType"),),
)

MATERIAL_DOCUMENT_ITEM = EntityType(
    "A_MaterialDocumentItemType",
    (
        _key("MaterialDocumentYear", 4),
        _key("MaterialDocument", 10),
        _key("MaterialDocumentItem", 4),
        _s("Material", 40),
        _s("Plant", 4),
        _s("StorageLocation", 4),
        _s("Batch", 10),
        _s("GoodsMovementType", 3),
        _s("InventoryStockType", 2),
        _s("InventorySpecialStockType", 1),
        _s("GoodsMovementReasonCode", 4),
        _s("CostCenter", 10),
        _s("GLAccount", 10),
        _s("IssuingOrReceivingPlant", 4),
        _s("IssuingOrReceivingStorageLoc", 4),
        _s("EntryUnit", 3),
        Prop("QuantityInEntryUnit", DECIMAL, precision=13, scale=3),
        _ro("MaterialBaseUnit", 3),
        Prop("QuantityInBaseUnit", DECIMAL, precision=13, scale=3, creatable=False, updatable=False),
        _s("MaterialDocumentItemText", 50),
        Prop("GoodsMovementIsCancelled", BOOLEAN, creatable=False, updatable=False),
        _ro("ReversedMaterialDocument", 10),
    ),
)

MATERIAL_DOCUMENT_SRV = Service(
    MATDOC_PATH,
    MATDOC_PATH,
    (MATERIAL_DOCUMENT_HEADER, MATERIAL_DOCUMENT_ITEM),
    {MATDOC: "A_MaterialDocumentHeaderType", MATDOC_ITEM: "A_MaterialDocumentItemType"},
)

BILLING_DOCUMENT = EntityType(
    "A_BillingDocumentType",
    (
        _key("BillingDocument", 10),
        _ro("SDDocumentCategory", 4),
        _ro("BillingDocumentCategory", 1),
        _ro("BillingDocumentType", 4),
        _ro("SalesOrganization", 4),
        _ro("SoldToParty", 10),
        _ro("PurchaseOrderByCustomer", 35),
        _ro("ReferenceSDDocument", 10),
        Prop("BillingDocumentDate", DATETIME, precision=0, creatable=False, updatable=False),
        Prop("BillingDocumentIsCancelled", BOOLEAN, creatable=False, updatable=False),
        _ro("CancelledBillingDocument", 10),
        Prop("TotalNetAmount", DECIMAL, precision=16, scale=3, creatable=False, updatable=False),
        _ro("TransactionCurrency", 5),
        _ro("AccountingPostingStatus", 1),
    ),
)

BILLING_DOCUMENT_SRV = Service(
    BILLING_PATH,
    BILLING_PATH,
    (BILLING_DOCUMENT,),
    {BILLING: "A_BillingDocumentType"},
    # Cancel answers the complex type CancelResult (billing document, cancellation document, message).
    (FunctionImport("Cancel", "CancelResult", "", (("BillingDocument", STRING, 10),)),),
)

MM_SERVICES: dict[str, Service] = {s.path: s for s in (MATERIAL_DOCUMENT_SRV, BILLING_DOCUMENT_SRV)}
