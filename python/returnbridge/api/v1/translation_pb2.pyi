from returnbridge.api.v1 import returns_pb2 as _returns_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TranslateRequest(_message.Message):
    __slots__ = ("mapping_id", "return_order", "erp_payload", "explain")
    MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ORDER_FIELD_NUMBER: _ClassVar[int]
    ERP_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    mapping_id: str
    return_order: _returns_pb2.ReturnOrder
    erp_payload: bytes
    explain: bool
    def __init__(self, mapping_id: _Optional[str] = ..., return_order: _Optional[_Union[_returns_pb2.ReturnOrder, _Mapping]] = ..., erp_payload: _Optional[bytes] = ..., explain: _Optional[bool] = ...) -> None: ...

class TranslationProblem(_message.Message):
    __slots__ = ("rule", "path", "message")
    RULE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    path: str
    message: str
    def __init__(self, rule: _Optional[str] = ..., path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ExplainEntry(_message.Message):
    __slots__ = ("output_path", "rule", "input_path")
    OUTPUT_PATH_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    INPUT_PATH_FIELD_NUMBER: _ClassVar[int]
    output_path: str
    rule: str
    input_path: str
    def __init__(self, output_path: _Optional[str] = ..., rule: _Optional[str] = ..., input_path: _Optional[str] = ...) -> None: ...

class TranslateResponse(_message.Message):
    __slots__ = ("output", "content_type", "explain")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    output: bytes
    content_type: str
    explain: _containers.RepeatedCompositeFieldContainer[ExplainEntry]
    def __init__(self, output: _Optional[bytes] = ..., content_type: _Optional[str] = ..., explain: _Optional[_Iterable[_Union[ExplainEntry, _Mapping]]] = ...) -> None: ...

class TranslateBatchRequest(_message.Message):
    __slots__ = ("mapping_id", "return_orders", "erp_payloads")
    MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    RETURN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    ERP_PAYLOADS_FIELD_NUMBER: _ClassVar[int]
    mapping_id: str
    return_orders: _containers.RepeatedCompositeFieldContainer[_returns_pb2.ReturnOrder]
    erp_payloads: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, mapping_id: _Optional[str] = ..., return_orders: _Optional[_Iterable[_Union[_returns_pb2.ReturnOrder, _Mapping]]] = ..., erp_payloads: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TranslateResult(_message.Message):
    __slots__ = ("index", "output", "problems")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    index: int
    output: bytes
    problems: _containers.RepeatedCompositeFieldContainer[TranslationProblem]
    def __init__(self, index: _Optional[int] = ..., output: _Optional[bytes] = ..., problems: _Optional[_Iterable[_Union[TranslationProblem, _Mapping]]] = ...) -> None: ...

class TranslateBatchResponse(_message.Message):
    __slots__ = ("results", "content_type", "failed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TranslateResult]
    content_type: str
    failed: int
    def __init__(self, results: _Optional[_Iterable[_Union[TranslateResult, _Mapping]]] = ..., content_type: _Optional[str] = ..., failed: _Optional[int] = ...) -> None: ...
