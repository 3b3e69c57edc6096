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

class DeadLetterState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_STATE_UNSPECIFIED: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_PENDING: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_REPLAYED: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_DISCARDED: _ClassVar[DeadLetterState]

class ReconciliationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECONCILIATION_STATUS_UNSPECIFIED: _ClassVar[ReconciliationStatus]
    RECONCILIATION_STATUS_MATCHED: _ClassVar[ReconciliationStatus]
    RECONCILIATION_STATUS_MISSING_IN_ERP: _ClassVar[ReconciliationStatus]
    RECONCILIATION_STATUS_AMOUNT_MISMATCH: _ClassVar[ReconciliationStatus]
    RECONCILIATION_STATUS_UNEXPECTED_IN_ERP: _ClassVar[ReconciliationStatus]
    RECONCILIATION_STATUS_PENDING: _ClassVar[ReconciliationStatus]
DEAD_LETTER_STATE_UNSPECIFIED: DeadLetterState
DEAD_LETTER_STATE_PENDING: DeadLetterState
DEAD_LETTER_STATE_REPLAYED: DeadLetterState
DEAD_LETTER_STATE_DISCARDED: DeadLetterState
RECONCILIATION_STATUS_UNSPECIFIED: ReconciliationStatus
RECONCILIATION_STATUS_MATCHED: ReconciliationStatus
RECONCILIATION_STATUS_MISSING_IN_ERP: ReconciliationStatus
RECONCILIATION_STATUS_AMOUNT_MISMATCH: ReconciliationStatus
RECONCILIATION_STATUS_UNEXPECTED_IN_ERP: ReconciliationStatus
RECONCILIATION_STATUS_PENDING: ReconciliationStatus

class DeadLetter(_message.Message):
    __slots__ = ("id", "tenant_id", "return_id", "version", "step", "erp", "target", "document_type", "reason", "error", "attempts", "dead_lettered_at", "payload_digest", "state", "payload")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    id: int
    tenant_id: str
    return_id: str
    version: int
    step: str
    erp: _common_pb2.ErpSystem
    target: str
    document_type: str
    reason: str
    error: _common_pb2.ErpError
    attempts: int
    dead_lettered_at: _timestamp_pb2.Timestamp
    payload_digest: str
    state: DeadLetterState
    payload: bytes
    def __init__(self, id: _Optional[int] = ..., tenant_id: _Optional[str] = ..., return_id: _Optional[str] = ..., version: _Optional[int] = ..., step: _Optional[str] = ..., erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., target: _Optional[str] = ..., document_type: _Optional[str] = ..., reason: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.ErpError, _Mapping]] = ..., attempts: _Optional[int] = ..., dead_lettered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payload_digest: _Optional[str] = ..., state: _Optional[_Union[DeadLetterState, str]] = ..., payload: _Optional[bytes] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("erp", "return_id", "include_resolved", "page_size", "page_token")
    ERP_FIELD_NUMBER: _ClassVar[int]
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    erp: _common_pb2.ErpSystem
    return_id: str
    include_resolved: bool
    page_size: int
    page_token: str
    def __init__(self, erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., return_id: _Optional[str] = ..., include_resolved: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeadLetterRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class ReplayDeadLetterRequest(_message.Message):
    __slots__ = ("id", "comment")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    id: int
    comment: str
    def __init__(self, id: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class ReplayDeadLetterResponse(_message.Message):
    __slots__ = ("dead_letter", "stream_sequence")
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    dead_letter: DeadLetter
    stream_sequence: int
    def __init__(self, dead_letter: _Optional[_Union[DeadLetter, _Mapping]] = ..., stream_sequence: _Optional[int] = ...) -> None: ...

class DiscardDeadLetterRequest(_message.Message):
    __slots__ = ("id", "comment")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    id: int
    comment: str
    def __init__(self, id: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class ValidateMappingRequest(_message.Message):
    __slots__ = ("spec_yaml", "file_name", "base_mapping_id")
    SPEC_YAML_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    spec_yaml: str
    file_name: str
    base_mapping_id: str
    def __init__(self, spec_yaml: _Optional[str] = ..., file_name: _Optional[str] = ..., base_mapping_id: _Optional[str] = ...) -> None: ...

class MappingProblem(_message.Message):
    __slots__ = ("file", "line", "rule", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    rule: str
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ValidateMappingResponse(_message.Message):
    __slots__ = ("valid", "problems", "rule_count")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    RULE_COUNT_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[MappingProblem]
    rule_count: int
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[MappingProblem, _Mapping]]] = ..., rule_count: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("sequence", "occurred_at", "actor", "tenant_id", "action", "object_type", "object_id", "before_digest", "after_digest", "details", "request_id", "prev_hash", "hash")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    AFTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    occurred_at: _timestamp_pb2.Timestamp
    actor: str
    tenant_id: str
    action: str
    object_type: str
    object_id: str
    before_digest: str
    after_digest: str
    details: _containers.ScalarMap[str, str]
    request_id: str
    prev_hash: str
    hash: str
    def __init__(self, sequence: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., tenant_id: _Optional[str] = ..., action: _Optional[str] = ..., object_type: _Optional[str] = ..., object_id: _Optional[str] = ..., before_digest: _Optional[str] = ..., after_digest: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class QueryAuditRequest(_message.Message):
    __slots__ = ("since", "until", "action", "object_id", "page_size", "page_token")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    action: str
    object_id: str
    page_size: int
    page_token: str
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ..., object_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class QueryAuditResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditProblem(_message.Message):
    __slots__ = ("sequence", "kind", "detail")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    kind: str
    detail: str
    def __init__(self, sequence: _Optional[int] = ..., kind: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("intact", "entries_checked", "problems")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    entries_checked: int
    problems: _containers.RepeatedCompositeFieldContainer[AuditProblem]
    def __init__(self, intact: _Optional[bool] = ..., entries_checked: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[AuditProblem, _Mapping]]] = ...) -> None: ...

class ReconciliationRequest(_message.Message):
    __slots__ = ("erp", "since")
    ERP_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    erp: _common_pb2.ErpSystem
    since: _timestamp_pb2.Timestamp
    def __init__(self, erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReconciliationLine(_message.Message):
    __slots__ = ("return_id", "document_type", "erp_document_id", "expected", "erp_posted", "status")
    RETURN_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ERP_DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    ERP_POSTED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    return_id: str
    document_type: str
    erp_document_id: str
    expected: _common_pb2.Money
    erp_posted: _common_pb2.Money
    status: ReconciliationStatus
    def __init__(self, return_id: _Optional[str] = ..., document_type: _Optional[str] = ..., erp_document_id: _Optional[str] = ..., expected: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., erp_posted: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[ReconciliationStatus, str]] = ...) -> None: ...

class ReconciliationReport(_message.Message):
    __slots__ = ("tenant_id", "erp", "generated_at", "lines", "expected_totals", "posted_totals", "balanced")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ERP_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_TOTALS_FIELD_NUMBER: _ClassVar[int]
    POSTED_TOTALS_FIELD_NUMBER: _ClassVar[int]
    BALANCED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    erp: _common_pb2.ErpSystem
    generated_at: _timestamp_pb2.Timestamp
    lines: _containers.RepeatedCompositeFieldContainer[ReconciliationLine]
    expected_totals: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    posted_totals: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    balanced: bool
    def __init__(self, tenant_id: _Optional[str] = ..., erp: _Optional[_Union[_common_pb2.ErpSystem, str]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lines: _Optional[_Iterable[_Union[ReconciliationLine, _Mapping]]] = ..., expected_totals: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., posted_totals: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., balanced: _Optional[bool] = ...) -> None: ...
