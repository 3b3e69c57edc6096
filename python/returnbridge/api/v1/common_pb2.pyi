from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErpSystem(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERP_SYSTEM_UNSPECIFIED: _ClassVar[ErpSystem]
    ERP_SYSTEM_NETSUITE: _ClassVar[ErpSystem]
    ERP_SYSTEM_SAP_S4HANA: _ClassVar[ErpSystem]
    ERP_SYSTEM_ORACLE_FUSION: _ClassVar[ErpSystem]
    ERP_SYSTEM_ORACLE_EBS: _ClassVar[ErpSystem]

class ErrorClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CLASS_UNSPECIFIED: _ClassVar[ErrorClass]
    ERROR_CLASS_TRANSIENT: _ClassVar[ErrorClass]
    ERROR_CLASS_PERMANENT: _ClassVar[ErrorClass]
    ERROR_CLASS_AUTH: _ClassVar[ErrorClass]
ERP_SYSTEM_UNSPECIFIED: ErpSystem
ERP_SYSTEM_NETSUITE: ErpSystem
ERP_SYSTEM_SAP_S4HANA: ErpSystem
ERP_SYSTEM_ORACLE_FUSION: ErpSystem
ERP_SYSTEM_ORACLE_EBS: ErpSystem
ERROR_CLASS_UNSPECIFIED: ErrorClass
ERROR_CLASS_TRANSIENT: ErrorClass
ERROR_CLASS_PERMANENT: ErrorClass
ERROR_CLASS_AUTH: ErrorClass

class Money(_message.Message):
    __slots__ = ("amount", "currency")
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    amount: str
    currency: str
    def __init__(self, amount: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class WarehouseLocation(_message.Message):
    __slots__ = ("site", "sub_location")
    SITE_FIELD_NUMBER: _ClassVar[int]
    SUB_LOCATION_FIELD_NUMBER: _ClassVar[int]
    site: str
    sub_location: str
    def __init__(self, site: _Optional[str] = ..., sub_location: _Optional[str] = ...) -> None: ...

class CustomValue(_message.Message):
    __slots__ = ("string_value", "decimal_value", "int_value", "bool_value", "date_value", "list_value", "struct_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    DECIMAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATE_VALUE_FIELD_NUMBER: _ClassVar[int]
    LIST_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRUCT_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    decimal_value: str
    int_value: int
    bool_value: bool
    date_value: str
    list_value: CustomList
    struct_value: CustomStruct
    def __init__(self, string_value: _Optional[str] = ..., decimal_value: _Optional[str] = ..., int_value: _Optional[int] = ..., bool_value: _Optional[bool] = ..., date_value: _Optional[str] = ..., list_value: _Optional[_Union[CustomList, _Mapping]] = ..., struct_value: _Optional[_Union[CustomStruct, _Mapping]] = ...) -> None: ...

class CustomList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[CustomValue]
    def __init__(self, values: _Optional[_Iterable[_Union[CustomValue, _Mapping]]] = ...) -> None: ...

class CustomStruct(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: CustomValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[CustomValue, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, CustomValue]
    def __init__(self, fields: _Optional[_Mapping[str, CustomValue]] = ...) -> None: ...

class ErpDocumentRef(_message.Message):
    __slots__ = ("erp", "document_type", "document_id", "external_reference", "document_number")
    ERP_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    erp: ErpSystem
    document_type: str
    document_id: str
    external_reference: str
    document_number: str
    def __init__(self, erp: _Optional[_Union[ErpSystem, str]] = ..., document_type: _Optional[str] = ..., document_id: _Optional[str] = ..., external_reference: _Optional[str] = ..., document_number: _Optional[str] = ...) -> None: ...

class ErpError(_message.Message):
    __slots__ = ("erp", "code", "message", "http_status", "error_class")
    ERP_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    erp: ErpSystem
    code: str
    message: str
    http_status: int
    error_class: ErrorClass
    def __init__(self, erp: _Optional[_Union[ErpSystem, str]] = ..., code: _Optional[str] = ..., message: _Optional[str] = ..., http_status: _Optional[int] = ..., error_class: _Optional[_Union[ErrorClass, str]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "field_violations")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...
