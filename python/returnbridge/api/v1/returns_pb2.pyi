import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from returnbridge.api.v1 import common_pb2 as _common_pb2
from returnbridge.api.v1 import sync_pb2 as _sync_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReturnType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETURN_TYPE_UNSPECIFIED: _ClassVar[ReturnType]
    RETURN_TYPE_REFUND: _ClassVar[ReturnType]
    RETURN_TYPE_EXCHANGE: _ClassVar[ReturnType]
    RETURN_TYPE_CREDIT_MEMO: _ClassVar[ReturnType]
    RETURN_TYPE_STORE_CREDIT: _ClassVar[ReturnType]
    RETURN_TYPE_REPLACEMENT: _ClassVar[ReturnType]

class LifecycleEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_EVENT_UNSPECIFIED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_AUTHORIZED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_RECEIVED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_INSPECTED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_DISPOSITIONED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_REFUNDED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_EXCHANGED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_CANCELLED: _ClassVar[LifecycleEvent]
    LIFECYCLE_EVENT_CLOSED: _ClassVar[LifecycleEvent]

class Disposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPOSITION_UNSPECIFIED: _ClassVar[Disposition]
    DISPOSITION_RESTOCK: _ClassVar[Disposition]
    DISPOSITION_REFURBISH: _ClassVar[Disposition]
    DISPOSITION_RETURN_TO_VENDOR: _ClassVar[Disposition]
    DISPOSITION_SCRAP: _ClassVar[Disposition]
    DISPOSITION_DONATE: _ClassVar[Disposition]

class ItemCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_CONDITION_UNSPECIFIED: _ClassVar[ItemCondition]
    ITEM_CONDITION_NEW: _ClassVar[ItemCondition]
    ITEM_CONDITION_OPENED: _ClassVar[ItemCondition]
    ITEM_CONDITION_USED: _ClassVar[ItemCondition]
    ITEM_CONDITION_DAMAGED: _ClassVar[ItemCondition]
    ITEM_CONDITION_DEFECTIVE: _ClassVar[ItemCondition]

class RefundMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFUND_METHOD_UNSPECIFIED: _ClassVar[RefundMethod]
    REFUND_METHOD_ORIGINAL_PAYMENT: _ClassVar[RefundMethod]
    REFUND_METHOD_STORE_CREDIT: _ClassVar[RefundMethod]
    REFUND_METHOD_CASH: _ClassVar[RefundMethod]
    REFUND_METHOD_CHECK: _ClassVar[RefundMethod]
    REFUND_METHOD_GIFT_CARD: _ClassVar[RefundMethod]

class SubmitOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBMIT_OUTCOME_UNSPECIFIED: _ClassVar[SubmitOutcome]
    SUBMIT_OUTCOME_ACCEPTED: _ClassVar[SubmitOutcome]
    SUBMIT_OUTCOME_DUPLICATE: _ClassVar[SubmitOutcome]
RETURN_TYPE_UNSPECIFIED: ReturnType
RETURN_TYPE_REFUND: ReturnType
RETURN_TYPE_EXCHANGE: ReturnType
RETURN_TYPE_CREDIT_MEMO: ReturnType
RETURN_TYPE_STORE_CREDIT: ReturnType
RETURN_TYPE_REPLACEMENT: ReturnType
LIFECYCLE_EVENT_UNSPECIFIED: LifecycleEvent
LIFECYCLE_EVENT_AUTHORIZED: LifecycleEvent
LIFECYCLE_EVENT_RECEIVED: LifecycleEvent
LIFECYCLE_EVENT_INSPECTED: LifecycleEvent
LIFECYCLE_EVENT_DISPOSITIONED: LifecycleEvent
LIFECYCLE_EVENT_REFUNDED: LifecycleEvent
LIFECYCLE_EVENT_EXCHANGED: LifecycleEvent
LIFECYCLE_EVENT_CANCELLED: LifecycleEvent
LIFECYCLE_EVENT_CLOSED: LifecycleEvent
DISPOSITION_UNSPECIFIED: Disposition
DISPOSITION_RESTOCK: Disposition
DISPOSITION_REFURBISH: Disposition
DISPOSITION_RETURN_TO_VENDOR: Disposition
DISPOSITION_SCRAP: Disposition
DISPOSITION_DONATE: Disposition
ITEM_CONDITION_UNSPECIFIED: ItemCondition
ITEM_CONDITION_NEW: ItemCondition
ITEM_CONDITION_OPENED: ItemCondition
ITEM_CONDITION_USED: ItemCondition
ITEM_CONDITION_DAMAGED: ItemCondition
ITEM_CONDITION_DEFECTIVE: ItemCondition
REFUND_METHOD_UNSPECIFIED: RefundMethod
REFUND_METHOD_ORIGINAL_PAYMENT: RefundMethod
REFUND_METHOD_STORE_CREDIT: RefundMethod
REFUND_METHOD_CASH: RefundMethod
REFUND_METHOD_CHECK: RefundMethod
REFUND_METHOD_GIFT_CARD: RefundMethod
SUBMIT_OUTCOME_UNSPECIFIED: SubmitOutcome
SUBMIT_OUTCOME_ACCEPTED: SubmitOutcome
SUBMIT_OUTCOME_DUPLICATE: SubmitOutcome

class Customer(_message.Message):
    __slots__ = ("customer_id", "erp_customer_ref", "tier", "name", "email")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ERP_CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    erp_customer_ref: str
    tier: str
    name: str
    email: str
    def __init__(self, customer_id: _Optional[str] = ..., erp_customer_ref: _Optional[str] = ..., tier: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class OriginalOrder(_message.Message):
    __slots__ = ("order_id", "erp_order_ref", "order_date")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ERP_ORDER_REF_FIELD_NUMBER: _ClassVar[int]
    ORDER_DATE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    erp_order_ref: str
    order_date: str
    def __init__(self, order_id: _Optional[str] = ..., erp_order_ref: _Optional[str] = ..., order_date: _Optional[str] = ...) -> None: ...

class ReturnLine(_message.Message):
    __slots__ = ("line_id", "sku", "product_type", "description", "quantity", "unit_of_measure", "unit_price", "serialized", "serial_numbers", "lot_number", "condition", "disposition", "cost_center", "vendor_code", "location", "reason_code", "tax_amount", "original_order_line_id", "custom_fields")
    class CustomFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.CustomValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.CustomValue, _Mapping]] = ...) -> None: ...
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_OF_MEASURE_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    SERIALIZED_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    LOT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    COST_CENTER_FIELD_NUMBER: _ClassVar[int]
    VENDOR_CODE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    TAX_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ORDER_LINE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    sku: str
    product_type: str
    description: str
    quantity: str
    unit_of_measure: str
    unit_price: _common_pb2.Money
    serialized: bool
    serial_numbers: _containers.RepeatedScalarFieldContainer[str]
    lot_number: str
    condition: ItemCondition
    disposition: Disposition
    cost_center: str
    vendor_code: str
    location: _common_pb2.WarehouseLocation
    reason_code: str
    tax_amount: _common_pb2.Money
    original_order_line_id: str
    custom_fields: _containers.MessageMap[str, _common_pb2.CustomValue]
    def __init__(self, line_id: _Optional[str] = ..., sku: _Optional[str] = ..., product_type: _Optional[str] = ..., description: _Optional[str] = ..., quantity: _Optional[str] = ..., unit_of_measure: _Optional[str] = ..., unit_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., serialized: _Optional[bool] = ..., serial_numbers: _Optional[_Iterable[str]] = ..., lot_number: _Optional[str] = ..., condition: _Optional[_Union[ItemCondition, str]] = ..., disposition: _Optional[_Union[Disposition, str]] = ..., cost_center: _Optional[str] = ..., vendor_code: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.WarehouseLocation, _Mapping]] = ..., reason_code: _Optional[str] = ..., tax_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., original_order_line_id: _Optional[str] = ..., custom_fields: _Optional[_Mapping[str, _common_pb2.CustomValue]] = ...) -> None: ...

class RefundDetails(_message.Message):
    __slots__ = ("method", "amount", "payment_reference")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    method: RefundMethod
    amount: _common_pb2.Money
    payment_reference: str
    def __init__(self, method: _Optional[_Union[RefundMethod, str]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., payment_reference: _Optional[str] = ...) -> None: ...

class ExchangeItem(_message.Message):
    __slots__ = ("sku", "quantity", "unit_of_measure", "unit_price", "ship_from")
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_OF_MEASURE_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    SHIP_FROM_FIELD_NUMBER: _ClassVar[int]
    sku: str
    quantity: str
    unit_of_measure: str
    unit_price: _common_pb2.Money
    ship_from: _common_pb2.WarehouseLocation
    def __init__(self, sku: _Optional[str] = ..., quantity: _Optional[str] = ..., unit_of_measure: _Optional[str] = ..., unit_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., ship_from: _Optional[_Union[_common_pb2.WarehouseLocation, _Mapping]] = ...) -> None: ...

class ExchangeDetails(_message.Message):
    __slots__ = ("items", "replacement_order_id", "price_difference")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REPLACEMENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ExchangeItem]
    replacement_order_id: str
    price_difference: _common_pb2.Money
    def __init__(self, items: _Optional[_Iterable[_Union[ExchangeItem, _Mapping]]] = ..., replacement_order_id: _Optional[str] = ..., price_difference: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class ReturnOrder(_message.Message):
    __slots__ = ("return_id", "tenant_id", "rma_number", "version", "return_type", "event", "reason_code", "customer", "original_order", "currency", "lines", "refund", "exchange", "restocking_fee", "tax_total", "total_amount", "created_at", "updated_at", "event_time", "erp_references", "custom_fields", "notes")
    class CustomFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.CustomValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.CustomValue, _Mapping]] = ...) -> None: ...
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RMA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RETURN_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_ORDER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    RESTOCKING_FEE_FIELD_NUMBER: _ClassVar[int]
    TAX_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TOTAL_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ERP_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    return_id: str
    tenant_id: str
    rma_number: str
    version: int
    return_type: ReturnType
    event: LifecycleEvent
    reason_code: str
    customer: Customer
    original_order: OriginalOrder
    currency: str
    lines: _containers.RepeatedCompositeFieldContainer[ReturnLine]
    refund: RefundDetails
    exchange: ExchangeDetails
    restocking_fee: _common_pb2.Money
    tax_total: _common_pb2.Money
    total_amount: _common_pb2.Money
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    event_time: _timestamp_pb2.Timestamp
    erp_references: _containers.RepeatedCompositeFieldContainer[_common_pb2.ErpDocumentRef]
    custom_fields: _containers.MessageMap[str, _common_pb2.CustomValue]
    notes: str
    def __init__(self, return_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., rma_number: _Optional[str] = ..., version: _Optional[int] = ..., return_type: _Optional[_Union[ReturnType, str]] = ..., event: _Optional[_Union[LifecycleEvent, str]] = ..., reason_code: _Optional[str] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., original_order: _Optional[_Union[OriginalOrder, _Mapping]] = ..., currency: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReturnLine, _Mapping]]] = ..., refund: _Optional[_Union[RefundDetails, _Mapping]] = ..., exchange: _Optional[_Union[ExchangeDetails, _Mapping]] = ..., restocking_fee: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., tax_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., total_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., erp_references: _Optional[_Iterable[_Union[_common_pb2.ErpDocumentRef, _Mapping]]] = ..., custom_fields: _Optional[_Mapping[str, _common_pb2.CustomValue]] = ..., notes: _Optional[str] = ...) -> None: ...

class SubmitReturnRequest(_message.Message):
    __slots__ = ("return_order", "client_reference")
    RETURN_ORDER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    return_order: ReturnOrder
    client_reference: str
    def __init__(self, return_order: _Optional[_Union[ReturnOrder, _Mapping]] = ..., client_reference: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("erp", "target", "flow", "document_types", "lane", "rule")
    ERP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    erp: _common_pb2.ErpSystem
    target: str
    flow: str
    document_types: _containers.RepeatedScalarFieldContainer[str]
    lane: str
    rule: str
    def __init__(self, erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., target: _Optional[str] = ..., flow: _Optional[str] = ..., document_types: _Optional[_Iterable[str]] = ..., lane: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class SubmitReturnResponse(_message.Message):
    __slots__ = ("tenant_id", "return_id", "version", "outcome", "stream_sequence", "accepted_at", "route", "idempotency_key", "client_reference", "adjustments")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    return_id: str
    version: int
    outcome: SubmitOutcome
    stream_sequence: int
    accepted_at: _timestamp_pb2.Timestamp
    route: RouteDecision
    idempotency_key: str
    client_reference: str
    adjustments: _containers.RepeatedCompositeFieldContainer[FieldAdjustment]
    def __init__(self, tenant_id: _Optional[str] = ..., return_id: _Optional[str] = ..., version: _Optional[int] = ..., outcome: _Optional[_Union[SubmitOutcome, str]] = ..., stream_sequence: _Optional[int] = ..., accepted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., client_reference: _Optional[str] = ..., adjustments: _Optional[_Iterable[_Union[FieldAdjustment, _Mapping]]] = ...) -> None: ...

class FieldAdjustment(_message.Message):
    __slots__ = ("field", "erp", "mapping", "erp_field", "original_length", "written_length", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_LENGTH_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    erp: str
    mapping: str
    erp_field: str
    original_length: int
    written_length: int
    description: str
    def __init__(self, field: _Optional[str] = ..., erp: _Optional[str] = ..., mapping: _Optional[str] = ..., erp_field: _Optional[str] = ..., original_length: _Optional[int] = ..., written_length: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class SubmitReturnResult(_message.Message):
    __slots__ = ("client_reference", "return_id", "version", "accepted", "error")
    CLIENT_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    client_reference: str
    return_id: str
    version: int
    accepted: SubmitReturnResponse
    error: _common_pb2.ItemError
    def __init__(self, client_reference: _Optional[str] = ..., return_id: _Optional[str] = ..., version: _Optional[int] = ..., accepted: _Optional[_Union[SubmitReturnResponse, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.ItemError, _Mapping]] = ...) -> None: ...

class GetReturnStatusRequest(_message.Message):
    __slots__ = ("return_id", "rma_number")
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    RMA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    return_id: str
    rma_number: str
    def __init__(self, return_id: _Optional[str] = ..., rma_number: _Optional[str] = ...) -> None: ...

class WatchSyncEventsRequest(_message.Message):
    __slots__ = ("return_ids", "erps", "states", "after_sequence", "from_beginning")
    RETURN_IDS_FIELD_NUMBER: _ClassVar[int]
    ERPS_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    return_ids: _containers.RepeatedScalarFieldContainer[str]
    erps: _containers.RepeatedScalarFieldContainer[_common_pb2.ErpSystem]
    states: _containers.RepeatedScalarFieldContainer[_sync_pb2.SyncState]
    after_sequence: int
    from_beginning: bool
    def __init__(self, return_ids: _Optional[_Iterable[str]] = ..., erps: _Optional[_Iterable[_Union[_common_pb2.ErpSystem, str]]] = ..., states: _Optional[_Iterable[_Union[_sync_pb2.SyncState, str]]] = ..., after_sequence: _Optional[int] = ..., from_beginning: _Optional[bool] = ...) -> None: ...
