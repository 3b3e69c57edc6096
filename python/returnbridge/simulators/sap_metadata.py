"""Entity model of the simulated SAP OData services, and the $metadata EDMX documents generated from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

STRING = "Edm.String"
DECIMAL = "Edm.Decimal"
DATETIME = "Edm.DateTime"
DATETIMEOFFSET = "Edm.DateTimeOffset"
INT64 = "Edm.Int64"


@dataclass(frozen=True, slots=True)
class Prop:
    """One entity property; ``creatable=False`` marks SAP's read-only fields (refused on POST)."""

    name: str
    type: str = STRING
    max_length: int = 0
    precision: int = 0
    scale: int = 0
    key: bool = False
    creatable: bool = True
    updatable: bool = True


@dataclass(frozen=True, slots=True)
class Nav:
    """A to-many navigation property (deep insert child collection)."""

    name: str
    target: str  # entity type name
    to_one: bool = False


@dataclass(frozen=True, slots=True)
class EntityType:
    name: str
    props: tuple[Prop, ...]
    navs: tuple[Nav, ...] = ()

    @property
    def keys(self) -> list[str]:
        return [p.name for p in self.props if p.key]

    def prop(self, name: str) -> Prop | None:
        for p in self.props:
            if p.name == name:
                return p
        return None

    def nav(self, name: str) -> Nav | None:
        for n in self.navs:
            if n.name == name:
                return n
        return None


@dataclass(frozen=True, slots=True)
class FunctionImport:
    name: str
    returns: str  # entity type name
    entity_set: str
    params: tuple[tuple[str, str, int], ...]  # (name, edm type, max length)
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    path: str  # as it appears in the URL, e.g. "API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002"
    types: tuple[EntityType, ...]
    sets: dict[str, str]  # entity set -> entity type name
    functions: tuple[FunctionImport, ...] = field(default=())

    def type(self, name: str) -> EntityType:
        for t in self.types:
            if t.name == name:
                return t
        raise KeyError(name)

    def set_type(self, entity_set: str) -> EntityType:
        return self.type(self.sets[entity_set])


def _s(name: str, n: int, **kw: bool) -> Prop:
    return Prop(name, STRING, n, **kw)


def _ro(name: str, n: int) -> Prop:
    return Prop(name, STRING, n, creatable=False, updatable=False)


def _qty(name: str, *, creatable: bool = True) -> Prop:
    return Prop(name, DECIMAL, precision=15, scale=3, creatable=creatable, updatable=creatable)


def _amt(name: str) -> Prop:
    return Prop(name, DECIMAL, precision=16, scale=3, creatable=False, updatable=False)


def _date(name: str, *, creatable: bool = True) -> Prop:
    return Prop(name, DATETIME, precision=0, creatable=creatable, updatable=creatable)


# Lengths follow erp-apis.md 1.1 (OpenAPI specs of the real services).
CUSTOMER_RETURN = EntityType(
    "A_CustomerReturnType",
    (
        Prop("CustomerReturn", STRING, 10, key=True),
        _s("CustomerReturnType", 4),
        _s("SalesOrganization", 4),
        _s("DistributionChannel", 2),
        _s("OrganizationDivision", 2),
        _s("SalesGroup", 3),
        _s("SalesOffice", 4),
        _s("SalesDistrict", 6),
        _s("SoldToParty", 10),
        _s("PurchaseOrderByCustomer", 35),
        _s("CustomerPurchaseOrderType", 4),
        _date("CustomerPurchaseOrderDate"),
        _date("CustomerReturnDate"),
        _date("PricingDate"),
        _date("RequestedDeliveryDate"),
        _s("TransactionCurrency", 5),
        _s("SDDocumentReason", 3),
        _s("ShippingType", 2),
        _s("HeaderBillingBlockReason", 2),
        _s("DeliveryBlockReason", 2),
        _s("IncotermsClassification", 3),
        _s("IncotermsTransferLocation", 28),
        _s("IncotermsLocation1", 70),
        _s("IncotermsLocation2", 70),
        _s("IncotermsVersion", 4),
        _s("CustomerPaymentTerms", 4),
        _s("PaymentMethod", 1),
        _s("ReferenceSDDocument", 10),
        _s("AccountingDocExternalReference", 16),
        _s("AssignmentReference", 18),
        _s("CustomerReturnApprovalReason", 4),
        _s("SalesDocApprovalStatus", 1),
        _date("CreationDate", creatable=False),
        _ro("CreatedByUser", 12),
        _date("LastChangeDate", creatable=False),
        Prop("LastChangeDateTime", DATETIMEOFFSET, precision=7, creatable=False, updatable=False),
        _ro("SenderBusinessSystemName", 60),
        _amt("TotalNetAmount"),
        _ro("RetsMgmtProcess", 10),
        _ro("RetsMgmtProcessingStatus", 1),
        _ro("OverallSDProcessStatus", 1),
        _ro("TotalCreditCheckStatus", 1),
        _ro("OverallSDDocumentRejectionSts", 1),
    ),
    (Nav("to_Item", "A_CustomerReturnItemType"), Nav("to_Partner", "A_CustomerReturnPartnerType")),
)

CUSTOMER_RETURN_ITEM = EntityType(
    "A_CustomerReturnItemType",
    (
        Prop("CustomerReturn", STRING, 10, key=True),
        Prop("CustomerReturnItem", STRING, 6, key=True),
        _s("HigherLevelItem", 6),
        _s("CustomerReturnItemCategory", 4),
        _s("CustomerReturnItemText", 40),
        _s("Material", 40),
        _s("MaterialByCustomer", 35),
        _qty("RequestedQuantity"),
        _s("RequestedQuantityUnit", 3),
        _s("ProductionPlant", 4),
        _s("StorageLocation", 4),
        _s("ShippingPoint", 4),
        _s("ReturnReason", 3),
        _s("ProfitCenter", 10),
        _s("ReturnsRefundType", 1),
        _s("ReturnsRefundProcgMode", 1),
        _s("ReturnsRefundExtent", 3),
        _s("CustRetItmFollowUpActivity", 4),
        _s("NextPlantForFollowUpActivity", 4),
        _s("RetsMgmtProcessingBlock", 1),
        _s("ReplacementMaterial", 40),
        _qty("ReplacementMaterialQuantity"),
        _s("ReplacementMaterialQtyUnit", 3),
        _s("ReplacementMaterialIsRequested", 1),
        _s("ReplacementMatlSupplyingPlant", 4),
        _s("Supplier", 10),
        _s("SupplierRetMatlAuthzn", 20),
        _s("CustomerRetMatlInspResultCode", 4),
        _s("RetMatlInspResultCode", 4),
        _s("ReturnsMaterialHasBeenReceived", 1),
        _s("ReferenceSDDocument", 10),
        _s("ReferenceSDDocumentItem", 6),
        _s("SalesDocumentRjcnReason", 2),
        _s("ItemBillingBlockReason", 2),
        _amt("NetAmount"),
        _ro("TransactionCurrency", 5),
        _ro("Batch", 10),
        _ro("CustRetMatlAuthzn", 20),
        _ro("ReturnsDocumentStatus", 1),
        _ro("SDProcessStatus", 1),
    ),
    (
        Nav("to_SerialNumber", "A_CustomerReturnSerialNumberType"),
        Nav("to_PricingElement", "A_CustomerReturnItemPrcgElmntType"),
    ),
)

CUSTOMER_RETURN_PRICING = EntityType(
    "A_CustomerReturnItemPrcgElmntType",
    (
        Prop("CustomerReturn", STRING, 10, key=True),
        Prop("CustomerReturnItem", STRING, 6, key=True),
        Prop("PricingProcedureStep", STRING, 3, key=True),
        Prop("PricingProcedureCounter", STRING, 3, key=True),
        _s("ConditionType", 4),
        Prop("ConditionRateValue", DECIMAL, precision=24, scale=9),
        _s("ConditionCurrency", 5),
        Prop("ConditionQuantity", DECIMAL, precision=5, scale=0),
        _s("ConditionQuantityUnit", 3),
    ),
)

CUSTOMER_RETURN_SERIAL = EntityType(
    "A_CustomerReturnSerialNumberType",
    (
        Prop("CustomerReturn", STRING, 10, key=True),
        Prop("CustomerReturnItem", STRING, 6, key=True),
        Prop("SerialNumber", STRING, 18, key=True),
    ),
)

CUSTOMER_RETURN_PARTNER = EntityType(
    "A_CustomerReturnPartnerType",
    (
        Prop("CustomerReturn", STRING, 10, key=True),
        Prop("PartnerFunction", STRING, 2, key=True),
        _s("Customer", 10),
        _s("Supplier", 10),
        _s("Personnel", 8),
        _s("ContactPerson", 10),
    ),
)

CUSTOMER_RETURN_SRV = Service(
    "API_CUSTOMER_RETURN_SRV",
    "API_CUSTOMER_RETURN_SRV",
    (
        CUSTOMER_RETURN,
        CUSTOMER_RETURN_ITEM,
        CUSTOMER_RETURN_SERIAL,
        CUSTOMER_RETURN_PARTNER,
        CUSTOMER_RETURN_PRICING,
    ),
    {
        "A_CustomerReturn": "A_CustomerReturnType",
        "A_CustomerReturnItem": "A_CustomerReturnItemType",
        "A_CustomerReturnSerialNumber": "A_CustomerReturnSerialNumberType",
        "A_CustomerReturnPartner": "A_CustomerReturnPartnerType",
        "A_CustomerReturnItemPrcgElmnt": "A_CustomerReturnItemPrcgElmntType",
    },
)

DELIVERY_HEADER = EntityType(
    "A_ReturnsDeliveryHeaderType",
    (
        Prop("DeliveryDocument", STRING, 10, key=True, creatable=False, updatable=False),
        _ro("DeliveryDocumentType", 4),
        _s("DeliveryDocumentBySupplier", 35),
        _ro("SoldToParty", 10),
        _ro("ShipToParty", 10),
        _ro("ShippingPoint", 4),
        _ro("SalesOrganization", 4),
        _date("ActualGoodsMovementDate"),
        _ro("OverallGoodsMovementStatus", 1),
        _ro("OverallSDProcessStatus", 1),
        _date("CreationDate", creatable=False),
        _date("LastChangeDate", creatable=False),
    ),
    (Nav("to_DeliveryDocumentItem", "A_ReturnsDeliveryItemType"),),
)

DELIVERY_ITEM = EntityType(
    "A_ReturnsDeliveryItemType",
    (
        Prop("DeliveryDocument", STRING, 10, key=True, creatable=False, updatable=False),
        Prop("DeliveryDocumentItem", STRING, 6, key=True, creatable=False, updatable=False),
        _ro("Material", 40),
        _s("Plant", 4),
        _s("StorageLocation", 4),
        _qty("ActualDeliveryQuantity"),
        _s("DeliveryQuantityUnit", 3),
        _s("Batch", 10),
        _s("CostCenter", 10),
        _s("ProfitCenter", 10),
        _s("GLAccount", 10),
        _s("ControllingArea", 4),
        _ro("GoodsMovementType", 3),
        _s("GoodsMovementReasonCode", 4),
        _s("WarehouseStockCategory", 1),
        _ro("GoodsMovementStatus", 1),
        _ro("ReferenceSDDocument", 10),
        _ro("ReferenceSDDocumentItem", 6),
    ),
    (Nav("to_SerialDeliveryItem", "A_ReturnsDeliverySrlNmbrType", to_one=True),),
)

DELIVERY_SERIAL_LIST = EntityType(
    "A_ReturnsDeliverySrlNmbrType",
    (
        Prop("MaintenanceItemObjectList", INT64, key=True, creatable=False, updatable=False),
        _ro("DeliveryDocument", 10),
        _ro("DeliveryDocumentItem", 6),
    ),
    (Nav("to_MaintenanceItemObject", "A_ReturnsDeliveryMaintObjType"),),
)

DELIVERY_MAINT_OBJECT = EntityType(
    "A_ReturnsDeliveryMaintObjType",
    (
        Prop("MaintenanceItemObjectList", INT64, key=True, creatable=False, updatable=False),
        Prop("MaintenanceItemObject", INT64, key=True, creatable=False, updatable=False),
        _s("SerialNumber", 18),
        _s("Material", 40),
        _s("Equipment", 18),
    ),
)

_DATETIME_PARAM = ("ActualGoodsMovementDate", DATETIME, 0)
RETURNS_DELIVERY_SRV = Service(
    "API_CUSTOMER_RETURNS_DELIVERY_SRV",
    "API_CUSTOMER_RETURNS_DELIVERY_SRV;v=0002",
    (DELIVERY_HEADER, DELIVERY_ITEM, DELIVERY_SERIAL_LIST, DELIVERY_MAINT_OBJECT),
    {
        "A_ReturnsDeliveryHeader": "A_ReturnsDeliveryHeaderType",
        "A_ReturnsDeliveryItem": "A_ReturnsDeliveryItemType",
        "A_ReturnsDeliverySrlNmbr": "A_ReturnsDeliverySrlNmbrType",
        "A_ReturnsDeliveryMaintObj": "A_ReturnsDeliveryMaintObjType",
    },
    # The real service also has ReverseGoodsReceipt and putaway actions. Their effects (stock back out,
    # follow-on documents) are not modelled, so they are not declared: a call is a 404 like any unknown
    # segment, never a 5xx that a connector would retry.
    (
        FunctionImport(
            "PostGoodsReceipt",
            "A_ReturnsDeliveryHeaderType",
            "A_ReturnsDeliveryHeader",
            (("DeliveryDocument", STRING, 10), _DATETIME_PARAM),
        ),
    ),
)

CREDIT_MEMO_REQUEST = EntityType(
    "A_CreditMemoRequestType",
    (
        Prop("CreditMemoRequest", STRING, 10, key=True),
        _s("CreditMemoRequestType", 4),
        _s("SalesOrganization", 4),
        _s("DistributionChannel", 2),
        _s("OrganizationDivision", 2),
        _s("SoldToParty", 10),
        _s("PurchaseOrderByCustomer", 35),
        _date("CreditMemoRequestDate"),
        _s("TransactionCurrency", 5),
        _s("SDDocumentReason", 3),
        _date("PricingDate"),
        _s("CustomerAccountAssignmentGroup", 2),
        _s("HeaderBillingBlockReason", 2),
        _s("ReferenceSDDocument", 10),
        _amt("TotalNetAmount"),
        _ro("OverallSDProcessStatus", 1),
        # Order-related billing status: C once billed, A again after the billing document was cancelled.
        _ro("OverallOrdReltdBillgStatus", 1),
        _date("CreationDate", creatable=False),
        Prop("LastChangeDateTime", DATETIMEOFFSET, precision=7, creatable=False, updatable=False),
    ),
    (Nav("to_Item", "A_CreditMemoRequestItemType"),),
)

CREDIT_MEMO_REQUEST_ITEM = EntityType(
    "A_CreditMemoRequestItemType",
    (
        Prop("CreditMemoRequest", STRING, 10, key=True),
        Prop("CreditMemoRequestItem", STRING, 6, key=True),
        _s("CreditMemoRequestItemCategory", 4),
        _s("Material", 40),
        _qty("RequestedQuantity"),
        _s("RequestedQuantityUnit", 3),
        _s("Plant", 4),
        _s("Batch", 10),
        _s("ProfitCenter", 10),
        _s("WBSElement", 24),
        _s("MatlAccountAssignmentGroup", 2),
        _s("ReferenceSDDocument", 10),
        _s("ReferenceSDDocumentItem", 6),
        _amt("NetAmount"),
        _ro("TransactionCurrency", 5),
    ),
    (Nav("to_PricingElement", "A_CreditMemoReqItemPrcgElmntType"),),
)

CREDIT_MEMO_PRICING = EntityType(
    "A_CreditMemoReqItemPrcgElmntType",
    (
        Prop("CreditMemoRequest", STRING, 10, key=True),
        Prop("CreditMemoRequestItem", STRING, 6, key=True),
        Prop("PricingProcedureStep", STRING, 3, key=True),
        Prop("PricingProcedureCounter", STRING, 3, key=True),
        _s("ConditionType", 4),
        Prop("ConditionRateValue", DECIMAL, precision=24, scale=9),
        _s("ConditionCurrency", 5),
        Prop("ConditionQuantity", DECIMAL, precision=5, scale=0),
        _s("ConditionQuantityUnit", 3),
    ),
)

CREDIT_MEMO_REQUEST_SRV = Service(
    "API_CREDIT_MEMO_REQUEST_SRV",
    "API_CREDIT_MEMO_REQUEST_SRV",
    (CREDIT_MEMO_REQUEST, CREDIT_MEMO_REQUEST_ITEM, CREDIT_MEMO_PRICING),
    {
        "A_CreditMemoRequest": "A_CreditMemoRequestType",
        "A_CreditMemoRequestItem": "A_CreditMemoRequestItemType",
    },
)

MATL_STOCK = EntityType(
    "A_MatlStkInAcctModType",
    (
        Prop("Material", STRING, 40, key=True),
        Prop("Plant", STRING, 4, key=True),
        Prop("StorageLocation", STRING, 4, key=True),
        Prop("Batch", STRING, 10, key=True),
        Prop("Supplier", STRING, 10, key=True),
        Prop("Customer", STRING, 10, key=True),
        Prop("WBSElementInternalID", STRING, 24, key=True),
        Prop("SDDocument", STRING, 10, key=True),
        Prop("SDDocumentItem", STRING, 6, key=True),
        Prop("InventorySpecialStockType", STRING, 1, key=True),
        Prop("InventoryStockType", STRING, 2, key=True),
        _ro("MaterialBaseUnit", 3),
        Prop(
            "MatlWrhsStkQtyInMatlBaseUnit", DECIMAL, precision=31, scale=14, creatable=False, updatable=False
        ),
    ),
)

MATERIAL_STOCK_SRV = Service(
    "API_MATERIAL_STOCK_SRV",
    "API_MATERIAL_STOCK_SRV",
    (MATL_STOCK,),
    {"A_MatlStkInAcctMod": "A_MatlStkInAcctModType"},
)

SERVICES: dict[str, Service] = {
    s.path: s
    for s in (CUSTOMER_RETURN_SRV, RETURNS_DELIVERY_SRV, CREDIT_MEMO_REQUEST_SRV, MATERIAL_STOCK_SRV)
}


def edmx(service: Service) -> str:
    """The service's $metadata document (OData v2 EDMX with SAP annotations)."""
    ns = service.name
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"'
        ' xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' xmlns:sap="http://www.sap.com/Protocols/SAPData">',
        '<edmx:DataServices m:DataServiceVersion="2.0">',
        f'<Schema Namespace="{ns}" xml:lang="en" sap:schema-version="1"'
        ' xmlns="http://schemas.microsoft.com/ado/2008/09/edm">',
    ]
    associations: list[tuple[str, EntityType, Nav]] = []
    for et in service.types:
        out.append(f'<EntityType Name="{et.name}" sap:content-version="1">')
        out.append("<Key>" + "".join(f'<PropertyRef Name="{k}"/>' for k in et.keys) + "</Key>")
        for p in et.props:
            out.append(_property_xml(p))
        for nav in et.navs:
            assoc = f"assoc_{et.name}_{nav.name}"
            associations.append((assoc, et, nav))
            out.append(
                f'<NavigationProperty Name="{nav.name}" Relationship="{ns}.{assoc}"'
                f' FromRole="FromRole_{assoc}" ToRole="ToRole_{assoc}"/>'
            )
        out.append("</EntityType>")
    for assoc, et, nav in associations:
        out.append(
            f'<Association Name="{assoc}" sap:content-version="1">'
            f'<End Type="{ns}.{et.name}" Multiplicity="1" Role="FromRole_{assoc}"/>'
            f'<End Type="{ns}.{nav.target}" Multiplicity="{"0..1" if nav.to_one else "*"}" Role="ToRole_{assoc}"/>'
            "</Association>"
        )
    out.append(
        f'<EntityContainer Name="{ns}_Entities" m:IsDefaultEntityContainer="true" sap:supported-formats="atom json xlsx">'
    )
    type_to_set = {t: s for s, t in service.sets.items()}
    for set_name, type_name in service.sets.items():
        out.append(f'<EntitySet Name="{set_name}" EntityType="{ns}.{type_name}" sap:content-version="1"/>')
    for assoc, et, nav in associations:
        if et.name in type_to_set and nav.target in type_to_set:
            out.append(
                f'<AssociationSet Name="{assoc}_Set" Association="{ns}.{assoc}" sap:creatable="false"'
                ' sap:updatable="false" sap:deletable="false" sap:content-version="1">'
                f'<End EntitySet="{type_to_set[et.name]}" Role="FromRole_{assoc}"/>'
                f'<End EntitySet="{type_to_set[nav.target]}" Role="ToRole_{assoc}"/>'
                "</AssociationSet>"
            )
    for fi in service.functions:
        out.append(
            f'<FunctionImport Name="{fi.name}" ReturnType="{ns}.{fi.returns}" EntitySet="{fi.entity_set}"'
            f' m:HttpMethod="{fi.method}">'
        )
        for name, typ, length in fi.params:
            max_len = f' MaxLength="{length}"' if length else ""
            precision = ' Precision="0"' if typ == DATETIME else ""
            out.append(f'<Parameter Name="{name}" Type="{typ}" Mode="In"{max_len}{precision}/>')
        out.append("</FunctionImport>")
    out.append("</EntityContainer>")
    out.append("</Schema></edmx:DataServices></edmx:Edmx>")
    return "\n".join(out)


def _property_xml(p: Prop) -> str:
    attrs = [f"Name={quoteattr(p.name)}", f"Type={quoteattr(p.type)}"]
    attrs.append('Nullable="false"' if p.key else 'Nullable="true"')
    if p.type == STRING and p.max_length:
        attrs.append(f'MaxLength="{p.max_length}"')
    if p.type == DECIMAL:
        attrs.append(f'Precision="{p.precision}" Scale="{p.scale}"')
    if p.type in (DATETIME, DATETIMEOFFSET):
        attrs.append(f'Precision="{p.precision}"')
        if p.type == DATETIME:
            attrs.append('sap:display-format="Date"')
    if not p.creatable:
        attrs.append('sap:creatable="false"')
    if not p.updatable:
        attrs.append('sap:updatable="false"')
    return f"<Property {' '.join(attrs)}/>"
