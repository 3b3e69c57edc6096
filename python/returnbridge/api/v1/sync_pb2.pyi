import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from returnbridge.api.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_STATE_UNSPECIFIED: _ClassVar[SyncState]
    SYNC_STATE_ACCEPTED: _ClassVar[SyncState]
    SYNC_STATE_WAITING: _ClassVar[SyncState]
    SYNC_STATE_IN_PROGRESS: _ClassVar[SyncState]
    SYNC_STATE_RETRYING: _ClassVar[SyncState]
    SYNC_STATE_DELIVERED: _ClassVar[SyncState]
    SYNC_STATE_DEAD_LETTERED: _ClassVar[SyncState]
    SYNC_STATE_DISCARDED: _ClassVar[SyncState]
SYNC_STATE_UNSPECIFIED: SyncState
SYNC_STATE_ACCEPTED: SyncState
SYNC_STATE_WAITING: SyncState
SYNC_STATE_IN_PROGRESS: SyncState
SYNC_STATE_RETRYING: SyncState
SYNC_STATE_DELIVERED: SyncState
SYNC_STATE_DEAD_LETTERED: SyncState
SYNC_STATE_DISCARDED: SyncState

class DocumentSync(_message.Message):
    __slots__ = ("step", "erp", "target", "document_type", "state", "erp_document_id", "attempts", "last_error", "version", "created_at", "updated_at", "delivered_at", "erp_status", "erp_amount", "erp_status_at")
    STEP_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERP_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_FIELD_NUMBER: _ClassVar[int]
    ERP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERP_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ERP_STATUS_AT_FIELD_NUMBER: _ClassVar[int]
    step: str
    erp: _common_pb2.ErpSystem
    target: str
    document_type: str
    state: SyncState
    erp_document_id: str
    attempts: int
    last_error: _common_pb2.ErpError
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    delivered_at: _timestamp_pb2.Timestamp
    erp_status: str
    erp_amount: _common_pb2.Money
    erp_status_at: _timestamp_pb2.Timestamp
    def __init__(self, step: _Optional[str] = ..., erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., target: _Optional[str] = ..., document_type: _Optional[str] = ..., state: _Optional[_Union[SyncState, str]] = ..., erp_document_id: _Optional[str] = ..., attempts: _Optional[int] = ..., last_error: _Optional[_Union[_common_pb2.ErpError, _Mapping]] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., erp_status: _Optional[str] = ..., erp_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., erp_status_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReturnSyncStatus(_message.Message):
    __slots__ = ("tenant_id", "return_id", "rma_number", "latest_version", "state", "documents", "updated_at", "lifecycle_state")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    RMA_NUMBER_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_STATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    return_id: str
    rma_number: str
    latest_version: int
    state: SyncState
    documents: _containers.RepeatedCompositeFieldContainer[DocumentSync]
    updated_at: _timestamp_pb2.Timestamp
    lifecycle_state: str
    def __init__(self, tenant_id: _Optional[str] = ..., return_id: _Optional[str] = ..., rma_number: _Optional[str] = ..., latest_version: _Optional[int] = ..., state: _Optional[_Union[SyncState, str]] = ..., documents: _Optional[_Iterable[_Union[DocumentSync, _Mapping]]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lifecycle_state: _Optional[str] = ...) -> None: ...

class SyncEvent(_message.Message):
    __slots__ = ("sequence", "tenant_id", "return_id", "version", "step", "erp", "document_type", "state", "erp_document_id", "attempt", "error", "occurred_at", "request_id", "erp_status", "erp_amount")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERP_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERP_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    tenant_id: str
    return_id: str
    version: int
    step: str
    erp: _common_pb2.ErpSystem
    document_type: str
    state: SyncState
    erp_document_id: str
    attempt: int
    error: _common_pb2.ErpError
    occurred_at: _timestamp_pb2.Timestamp
    request_id: str
    erp_status: str
    erp_amount: _common_pb2.Money
    def __init__(self, sequence: _Optional[int] = ..., tenant_id: _Optional[str] = ..., return_id: _Optional[str] = ..., version: _Optional[int] = ..., step: _Optional[str] = ..., erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., document_type: _Optional[str] = ..., state: _Optional[_Union[SyncState, str]] = ..., erp_document_id: _Optional[str] = ..., attempt: _Optional[int] = ..., error: _Optional[_Union[_common_pb2.ErpError, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., erp_status: _Optional[str] = ..., erp_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...
