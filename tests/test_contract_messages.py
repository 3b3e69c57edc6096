"""Every v1 contract message survives a serialize/parse round trip; money stays exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from returnbridge.api.v1 import admin_pb2, common_pb2, inventory_pb2, returns_pb2, sync_pb2, translation_pb2

MODULES = (common_pb2, returns_pb2, sync_pb2, inventory_pb2, translation_pb2, admin_pb2)


def _all_message_classes() -> list[type[Message]]:
    classes: list[type[Message]] = []
    for module in MODULES:
        for name in module.DESCRIPTOR.message_types_by_name:
            classes.append(getattr(module, name))
    return classes


def _scalar(field: FieldDescriptor) -> object:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return "välue-✓"
    if kind == FieldDescriptor.TYPE_BYTES:
        return b"\x00\xffbytes"
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        raise AssertionError(f"float field {field.full_name} in the contract")
    return 7


def _fill(message: Message, depth: int = 0) -> None:
    """Give every field a non-default value: scalars, nested messages, lists and maps (bounded depth)."""
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and field.containing_oneof.fields[0] is not field:
            continue  # one member per oneof, else they overwrite each other
        nested = field.message_type
        if nested is not None and nested.GetOptions().map_entry:
            target = getattr(message, field.name)
            value_field = nested.fields_by_name["value"]
            if value_field.message_type is None:
                target["k"] = _scalar(value_field)
            elif depth < 3:
                _fill(target["k"], depth + 1)
        elif field.is_repeated:
            container = getattr(message, field.name)
            if nested is None:
                container.append(_scalar(field))
            elif depth < 3:
                _fill(container.add(), depth + 1)
        elif nested is not None:
            if depth < 3:
                _fill(getattr(message, field.name), depth + 1)
        else:
            setattr(message, field.name, _scalar(field))


@pytest.mark.parametrize("cls", _all_message_classes(), ids=lambda c: c.DESCRIPTOR.full_name)
def test_round_trip(cls: type[Message]) -> None:
    message = cls()
    _fill(message)
    if message.DESCRIPTOR.fields:
        assert message.ListFields(), f"{cls.DESCRIPTOR.full_name} was not filled"
    wire = message.SerializeToString(deterministic=True)
    again = cls.FromString(wire)
    assert again == message
    assert again.SerializeToString(deterministic=True) == wire
    as_json = json_format.MessageToJson(message, preserving_proto_field_name=True)
    assert json_format.Parse(as_json, cls()) == message


def test_no_float_or_double_anywhere_in_the_contract() -> None:
    for cls in _all_message_classes():
        for field in cls.DESCRIPTOR.fields:
            assert field.type not in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT), (
                field.full_name
            )


def test_money_stays_exact_through_the_wire() -> None:
    a = common_pb2.Money(amount="0.10", currency="USD")
    b = common_pb2.Money(amount="0.20", currency="USD")
    order = returns_pb2.ReturnOrder(return_id="R-1", currency="USD", restocking_fee=a, tax_total=b)
    parsed = returns_pb2.ReturnOrder.FromString(order.SerializeToString())
    total = Decimal(parsed.restocking_fee.amount) + Decimal(parsed.tax_total.amount)
    assert str(total) == "0.30"
    assert float(a.amount) + float(b.amount) != 0.30  # why the contract never uses floats


def test_custom_fields_keep_their_types() -> None:
    value = common_pb2.CustomValue(
        struct_value=common_pb2.CustomStruct(
            fields={
                "warranty": common_pb2.CustomValue(bool_value=True),
                "weight": common_pb2.CustomValue(decimal_value="12.500"),
                "tags": common_pb2.CustomValue(
                    list_value=common_pb2.CustomList(values=[common_pb2.CustomValue(string_value="fragile")])
                ),
                "shipped": common_pb2.CustomValue(date_value="2026-11-01"),
                "count": common_pb2.CustomValue(int_value=-3),
            }
        )
    )
    line = returns_pb2.ReturnLine(line_id="1", custom_fields={"extra": value})
    parsed = returns_pb2.ReturnLine.FromString(line.SerializeToString())
    fields = parsed.custom_fields["extra"].struct_value.fields
    assert fields["weight"].decimal_value == "12.500"
    assert fields["warranty"].WhichOneof("kind") == "bool_value"
    assert fields["tags"].list_value.values[0].string_value == "fragile"
    assert fields["count"].int_value == -3
