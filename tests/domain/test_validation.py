"""ReturnOrder validation: a table of bad inputs with their exact field violations, reference data, tenancy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.domain.context import Principal, set_principal
from returnbridge.domain.money import ISO_4217
from returnbridge.domain.validation import (
    ReferenceData,
    ReferenceDataConfig,
    refuse_server_owned,
    validate_return_order,
    validate_submit_request,
)
from returnbridge.errors import AuthError, ConfigError, ValidationError

R = returns_pb2
REF = ReferenceData(
    locations=frozenset({"DAL1", "RNO2"}),
    cost_centers=frozenset({"CC-100"}),
    vendor_codes=frozenset({"V-200"}),
    skus=frozenset({"SKU-1", "SKU-2", "SKU-X"}),
)


def money(amount: str, currency: str = "") -> common_pb2.Money:
    return common_pb2.Money(amount=amount, currency=currency)


def good_order() -> R.ReturnOrder:
    return R.ReturnOrder(
        return_id="ret-1",
        rma_number="RMA-0001",
        version=1,
        return_type=R.RETURN_TYPE_REFUND,
        event=R.LIFECYCLE_EVENT_AUTHORIZED,
        currency="USD",
        lines=[
            R.ReturnLine(
                line_id="1", sku="SKU-1", quantity="2", unit_of_measure="EA", unit_price=money("10.25", "USD"),
                serialized=True, serial_numbers=["SN1", "SN2"], cost_center="CC-100",
                location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
            ),
            R.ReturnLine(
                line_id="2", sku="SKU-2", quantity="1.5", unit_of_measure="KG", unit_price=money("3.33"),
                tax_amount=money("0.50"),
            ),
        ],
        tax_total=money("0.50"),
        restocking_fee=money("1.00"),
        # 2 x 10.25 + round(1.5 x 3.33 = 4.995) 5.00 + 0.50 - 1.00
        total_amount=money("25.00"),
        event_time=Timestamp(seconds=1_795_000_000),
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _caller() -> Iterator[None]:
    set_principal(Principal(name="rms", tenant_id="acme", roles=frozenset({"submitter"})))
    yield
    set_principal(None)


def _violations(order: R.ReturnOrder, reference: ReferenceData = REF) -> list[tuple[str, str]]:
    try:
        validate_return_order(order, reference)
    except ValidationError as exc:
        return [(v.field, v.description) for v in exc.violations]
    return []


def test_good_order_passes() -> None:
    assert _violations(good_order()) == []


def _set(path: Callable[[R.ReturnOrder], None]) -> R.ReturnOrder:
    order = good_order()
    path(order)
    return order


def _line(index: int, **fields: object) -> Callable[[R.ReturnOrder], None]:
    def apply(order: R.ReturnOrder) -> None:
        line = order.lines[index]
        for name, value in fields.items():
            if isinstance(value, list):
                del getattr(line, name)[:]
                getattr(line, name).extend(value)
            elif isinstance(value, common_pb2.Money | common_pb2.WarehouseLocation):
                getattr(line, name).CopyFrom(value)
            else:
                setattr(line, name, value)

    return apply


def _clear(*names: str) -> Callable[[R.ReturnOrder], None]:
    def apply(order: R.ReturnOrder) -> None:
        for name in names:
            order.ClearField(name)

    return apply


def _attr(**fields: object) -> Callable[[R.ReturnOrder], None]:
    def apply(order: R.ReturnOrder) -> None:
        for name, value in fields.items():
            if isinstance(value, common_pb2.Money):
                getattr(order, name).CopyFrom(value)
            else:
                setattr(order, name, value)

    return apply


BAD_INPUTS: list[tuple[str, Callable[[R.ReturnOrder], None], list[str]]] = [
    (
        "required header fields",
        _clear("return_id", "rma_number", "version", "return_type", "event", "currency"),
        [
            "return_order.return_id", "return_order.rma_number", "return_order.version", "return_order.return_type",
            "return_order.event", "return_order.currency",
            # Without a currency no Money can be checked against it.
            "return_order.lines[0].unit_price.currency",
        ],
    ),
    ("unknown currency", _attr(currency="XYZ"), ["return_order.currency", "return_order.lines[0].unit_price.currency"]),
    ("lower-case currency", _attr(currency="usd"), ["return_order.currency", "return_order.lines[0].unit_price.currency"]),
    ("no lines", _clear("lines", "total_amount", "tax_total"), ["return_order.lines"]),
    ("rma too long for external reference", _attr(rma_number="R" * 34), ["return_order.rma_number"]),
    ("too many decimals for USD", _line(0, unit_price=money("10.255")), [ "return_order.lines[0].unit_price.amount"]),
    ("JPY has no minor units", _attr(currency="JPY", total_amount=money("25")), [
        "return_order.lines[0].unit_price.amount", "return_order.lines[0].unit_price.currency",
        "return_order.lines[1].unit_price.amount", "return_order.lines[1].tax_amount.amount",
        "return_order.restocking_fee.amount", "return_order.tax_total.amount",
    ]),
    ("money in another currency", _line(1, unit_price=money("3.33", "EUR")), ["return_order.lines[1].unit_price.currency"]),
    ("malformed decimal", _line(0, unit_price=money("1e3")), ["return_order.lines[0].unit_price.amount"]),
    ("float-looking decimal", _line(1, quantity="1.5 "), ["return_order.lines[1].quantity"]),
    ("negative price", _line(1, unit_price=money("-3.33")), ["return_order.lines[1].unit_price.amount"]),
    ("zero quantity", _line(1, quantity="0"), ["return_order.lines[1].quantity"]),
    ("quantity decimals", _line(1, quantity="1.0001"), ["return_order.lines[1].quantity"]),
    ("missing line fields", _line(1, line_id="", sku="", quantity="", unit_of_measure=""), [
        "return_order.lines[1].line_id", "return_order.lines[1].sku", "return_order.lines[1].quantity",
        "return_order.lines[1].unit_of_measure",
    ]),
    ("serial count", _line(0, serial_numbers=["SN1"]), ["return_order.lines[0].serial_numbers"]),
    ("serialized fractional", _line(0, quantity="1.5"), ["return_order.lines[0].quantity"]),
    ("duplicate serial in line", _line(0, serial_numbers=["SN1", "SN1"]), ["return_order.lines[0].serial_numbers[1]"]),
    ("duplicate serial across lines", _line(1, quantity="1", serial_numbers=["SN2"]), [
        "return_order.lines[1].serial_numbers[0]", "return_order.total_amount",
    ]),
    ("duplicate line id", _line(1, line_id="1"), ["return_order.lines[1].line_id"]),
    ("unknown sku", _line(1, sku="SKU-404"), ["return_order.lines[1].sku"]),
    ("unknown location", _line(0, location=common_pb2.WarehouseLocation(site="NOWHERE")), ["return_order.lines[0].location.site"]),
    ("unknown cost center", _line(0, cost_center="CC-999"), ["return_order.lines[0].cost_center"]),
    ("unknown vendor", _line(0, vendor_code="V-999"), ["return_order.lines[0].vendor_code"]),
    ("return to vendor without vendor", _line(1, disposition=R.DISPOSITION_RETURN_TO_VENDOR), ["return_order.lines[1].vendor_code"]),
    ("total disagrees", _attr(total_amount=money("25.01")), ["return_order.total_amount"]),
    ("tax total disagrees with lines", _attr(tax_total=money("0.60"), total_amount=money("25.10")), ["return_order.tax_total"]),
    ("empty unit price", _line(1, unit_price=common_pb2.Money()), ["return_order.lines[1].unit_price.amount"]),
    ("total without prices", lambda o: o.lines[1].ClearField("unit_price"), ["return_order.lines[1].unit_price", "return_order.total_amount"]),
    ("exchanged needs exchange type and items", _attr(event=R.LIFECYCLE_EVENT_EXCHANGED), [
        "return_order.return_type", "return_order.exchange.items",
    ]),
    ("refunded needs refund details", _attr(event=R.LIFECYCLE_EVENT_REFUNDED), ["return_order.refund"]),
    ("refunded with exchange type", _attr(event=R.LIFECYCLE_EVENT_REFUNDED, return_type=R.RETURN_TYPE_EXCHANGE), [
        "return_order.return_type", "return_order.refund",
    ]),
    ("dispositioned needs dispositions", _attr(event=R.LIFECYCLE_EVENT_DISPOSITIONED), [
        "return_order.lines[0].disposition", "return_order.lines[1].disposition",
    ]),
    ("control characters", _attr(return_id="ret\n1"), ["return_order.return_id"]),
    ("bad order date", lambda o: setattr(o.original_order, "order_date", "2026-13-01"), [
        "return_order.original_order.order_date",
    ]),
    ("compact order date", lambda o: setattr(o.original_order, "order_date", "20261101"), [
        "return_order.original_order.order_date",
    ]),
    ("bad custom decimal", lambda o: o.custom_fields["weight"].CopyFrom(common_pb2.CustomValue(decimal_value="1,5")), [
        "return_order.custom_fields['weight']",
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "fields"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_report_every_violation(
    mutate: Callable[[R.ReturnOrder], None], fields: list[str]
) -> None:
    assert [f for f, _ in _violations(_set(mutate))] == fields


def test_all_violations_at_once_with_descriptions() -> None:
    order = good_order()
    order.version = 0
    order.lines[0].sku = "SKU-404"
    order.lines[1].quantity = "-1"
    assert _violations(order) == [
        ("return_order.version", "must be greater than 0"),
        ("return_order.lines[0].sku", "unknown SKU 'SKU-404'"),
        ("return_order.lines[1].quantity", "must be greater than 0"),
    ]


def test_valid_refund_exchange_and_cancel_events() -> None:
    refund = good_order()
    refund.event = R.LIFECYCLE_EVENT_REFUNDED
    refund.refund.CopyFrom(R.RefundDetails(method=R.REFUND_METHOD_ORIGINAL_PAYMENT, amount=money("25.00")))
    assert _violations(refund) == []
    refund.refund.amount.amount = "0"
    assert _violations(refund) == [("return_order.refund.amount.amount", "must be greater than 0")]

    exchange = good_order()
    exchange.event = R.LIFECYCLE_EVENT_EXCHANGED
    exchange.return_type = R.RETURN_TYPE_REPLACEMENT
    exchange.exchange.items.add(sku="SKU-X", quantity="1", unit_of_measure="EA", unit_price=money("9.99"))
    exchange.exchange.price_difference.CopyFrom(money("-0.26"))
    assert _violations(exchange) == []
    exchange.exchange.items.add(sku="SKU-404", quantity="0")
    assert [f for f, _ in _violations(exchange)] == [
        "return_order.exchange.items[1].sku",
        "return_order.exchange.items[1].quantity",
        "return_order.exchange.items[1].unit_of_measure",
    ]

    cancel = R.ReturnOrder(
        return_id="ret-1", rma_number="RMA-1", version=3, return_type=R.RETURN_TYPE_REFUND,
        event=R.LIFECYCLE_EVENT_CANCELLED, currency="EUR", event_time=Timestamp(seconds=1_795_000_000),
    )  # fmt: skip
    assert _violations(cancel) == []


def test_empty_reference_sets_are_not_checked() -> None:
    order = good_order()
    order.lines[0].sku = "ANY-SKU"
    order.lines[0].cost_center = "ANY"
    assert _violations(order, ReferenceData()) == []


def test_reference_data_yaml_with_tenant_overrides(tmp_path: Path) -> None:
    path = tmp_path / "reference.yaml"
    path.write_text(
        "skus: [SKU-1, SKU-2]\nlocations: [DAL1]\ncurrencies: {XTS: 2}\n"
        "tenants:\n  acme:\n    skus: [SKU-1]\n  beta:\n    cost_centers: [CC-1]\n"
    )
    data = ReferenceData.from_config(ReferenceDataConfig(file=path, vendor_codes=["V-200"]))
    assert data.skus == {"SKU-1", "SKU-2"} and data.vendor_codes == {"V-200"} and data.currencies["XTS"] == 2
    assert data.for_tenant("acme").skus == {"SKU-1"} and data.for_tenant("acme").locations == {"DAL1"}
    assert data.for_tenant("beta").skus == {"SKU-1", "SKU-2"} and data.for_tenant("zeta") is data
    order = good_order()
    order.lines[0].location.site = "DAL1"
    # The caller is tenant acme: SKU-2 is not in acme's list.
    assert [f for f, _ in _violations(order, data)] == ["return_order.lines[1].sku"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("skus: SKU-1\n", "skus must be a list"),
        ("colours: [red]\n", "unknown keys ['colours']"),
        ("currencies: {usd: 2}\n", "3-letter"),
        ("currencies: {XTS: 9}\n", "minor units"),
        ("tenants: {acme: {skus: [A], extra: []}}\n", "tenants.acme: unknown keys"),
        ("[1, 2\n", "invalid YAML"),
    ],
)
def test_bad_reference_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ref.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        ReferenceData.from_yaml(path)
    with pytest.raises(ConfigError, match="cannot read"):
        ReferenceData.from_yaml(tmp_path / "missing.yaml")


def test_iso_4217_minor_units() -> None:
    assert (ISO_4217["USD"], ISO_4217["JPY"], ISO_4217["KWD"], ISO_4217["CLF"]) == (2, 0, 3, 4)
    assert len(ISO_4217) > 150


def test_server_owned_fields_are_refused() -> None:
    order = good_order()
    refuse_server_owned(order)
    order.tenant_id = "acme"
    refuse_server_owned(order)
    order.tenant_id = "beta"
    order.erp_references.add(document_type="creditMemo", document_id="42")
    with pytest.raises(ValidationError) as info:
        refuse_server_owned(order)
    assert [v.field for v in info.value.violations] == [
        "return_order.erp_references",
        "return_order.tenant_id",
    ]
    set_principal(None)
    with pytest.raises(AuthError):
        refuse_server_owned(order)


def test_submit_request_combines_all_checks() -> None:
    order = good_order()
    order.erp_references.add(document_id="1")
    order.version = 0
    with pytest.raises(ValidationError) as info:
        validate_submit_request(R.SubmitReturnRequest(return_order=order, client_reference="c" * 129), REF)
    assert [v.field for v in info.value.violations] == [
        "return_order.erp_references",
        "return_order.version",
        "client_reference",
    ]
    with pytest.raises(ValidationError) as info:
        validate_submit_request(R.SubmitReturnRequest(), REF)
    assert [v.field for v in info.value.violations] == ["return_order"]


def test_shared_canonical_samples_are_valid() -> None:
    from mapping.samples import build_return

    for kwargs in (
        {"lines": 1},
        {"lines": 50, "seed": 7},
        {"lines": 5, "unicode": True},
        {"lines": 3, "max_length": True},
        {"lines": 2, "currency": "EUR"},
    ):
        order = build_return(**kwargs)  # type: ignore[arg-type]
        assert _violations(order, ReferenceData()) == [], kwargs


@given(
    lines=st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("0.001"), max_value=Decimal("999"), places=3),
            st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
            st.decimals(min_value=Decimal("0"), max_value=Decimal("999"), places=2),
        ),
        min_size=1,
        max_size=20,
    ),
    fee=st.decimals(min_value=Decimal("0"), max_value=Decimal("50"), places=2),
)
@settings(max_examples=60, deadline=None)
def test_total_rule_property(lines: list[tuple[Decimal, Decimal, Decimal]], fee: Decimal) -> None:
    """A total computed with the documented rule passes; one minor unit off fails on total_amount only."""
    order = R.ReturnOrder(
        return_id="r", rma_number="RMA-1", version=1, return_type=R.RETURN_TYPE_REFUND,
        event=R.LIFECYCLE_EVENT_AUTHORIZED, currency="EUR", restocking_fee=money(str(fee)),
        event_time=Timestamp(seconds=1_795_000_000),
    )  # fmt: skip
    expected = -fee
    for index, (quantity, price, tax) in enumerate(lines):
        order.lines.add(
            line_id=str(index), sku="SKU-1", quantity=str(quantity), unit_of_measure="KG",
            unit_price=money(str(price)), tax_amount=money(str(tax)),
        )  # fmt: skip
        expected += (quantity * price).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) + tax
    # A fee above the goods value would make a negative total, which is refused on its own.
    assume(expected >= 0)
    order.total_amount.CopyFrom(money(str(expected)))
    assert _violations(order, ReferenceData()) == []
    order.total_amount.amount = str(expected + Decimal("0.01"))
    assert [f for f, _ in _violations(order, ReferenceData())] == ["return_order.total_amount"]
