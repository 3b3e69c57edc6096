import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from returnbridge.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InventoryLevel(_message.Message):
    __slots__ = ("tenant_id", "sku", "location", "on_hand", "available", "reserved", "in_inspection", "unit_of_measure", "as_of", "source_erp", "target")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    IN_INSPECTION_FIELD_NUMBER: _ClassVar[int]
    UNIT_OF_MEASURE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ERP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    sku: str
    location: _common_pb2.WarehouseLocation
    on_hand: str
    available: str
    reserved: str
    in_inspection: str
    unit_of_measure: str
    as_of: _timestamp_pb2.Timestamp
    source_erp: _common_pb2.ErpSystem
    target: str
    def __init__(self, tenant_id: _Optional[str] = ..., sku: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.WarehouseLocation, _Mapping]] = ..., on_hand: _Optional[str] = ..., available: _Optional[str] = ..., reserved: _Optional[str] = ..., in_inspection: _Optional[str] = ..., unit_of_measure: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., target: _Optional[str] = ...) -> None: ...

class DocumentStatus(_message.Message):
    __slots__ = ("tenant_id", "erp", "document_type", "document_id", "external_reference", "status", "erp_status", "amount", "as_of", "return_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERP_STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    erp: _common_pb2.ErpSystem
    document_type: str
    document_id: str
    external_reference: str
    status: str
    erp_status: str
    amount: _common_pb2.Money
    as_of: _timestamp_pb2.Timestamp
    return_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., document_type: _Optional[str] = ..., document_id: _Optional[str] = ..., external_reference: _Optional[str] = ..., status: _Optional[str] = ..., erp_status: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., return_id: _Optional[str] = ...) -> None: ...

class GetInventoryRequest(_message.Message):
    __slots__ = ("sku", "location", "target")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    sku: str
    location: _common_pb2.WarehouseLocation
    target: str
    def __init__(self, sku: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.WarehouseLocation, _Mapping]] = ..., target: _Optional[str] = ...) -> None: ...

class ListInventoryRequest(_message.Message):
    __slots__ = ("skus", "sites", "page_size", "page_token")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedScalarFieldContainer[str]
    sites: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, skus: _Optional[_Iterable[str]] = ..., sites: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListInventoryResponse(_message.Message):
    __slots__ = ("levels", "next_page_token")
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    levels: _containers.RepeatedCompositeFieldContainer[InventoryLevel]
    next_page_token: str
    def __init__(self, levels: _Optional[_Iterable[_Union[InventoryLevel, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchInventoryRequest(_message.Message):
    __slots__ = ("skus", "sites", "include_snapshot")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedScalarFieldContainer[str]
    sites: _containers.RepeatedScalarFieldContainer[str]
    include_snapshot: bool
    def __init__(self, skus: _Optional[_Iterable[str]] = ..., sites: _Optional[_Iterable[str]] = ..., include_snapshot: _Optional[bool] = ...) -> None: ...

class InventoryUpdate(_message.Message):
    __slots__ = ("sequence", "level")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    level: InventoryLevel
    def __init__(self, sequence: _Optional[int] = ..., level: _Optional[_Union[InventoryLevel, _Mapping]] = ...) -> None: ...
