"""What the routed mapping would refuse at delivery is refused at submit, on each ERP route.

A currency or unit of measure that is valid in general (ISO 4217, a known UoM) but missing from the ERP pack's
lookup table passes every generic check, and the pack's lookup fails only when the worker translates it. Submit
runs the same translation (and round-trip check) first, so the RMS is never told ACCEPTED for a return that can
only dead-letter.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import REGISTRY

from dataquality.conftest import Served
from dataquality.returns import ERPS, EV, new_life
from returnbridge.api.v1 import returns_pb2

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _bad_request(error: grpc.aio.AioRpcError) -> error_details_pb2.BadRequest:
    status = status_pb2.Status.FromString(dict(error.trailing_metadata() or ())["grpc-status-details-bin"])
    request = error_details_pb2.BadRequest()
    assert any(d.Unpack(request) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    return request


def _in_currency(order: returns_pb2.ReturnOrder, currency: str) -> None:
    order.currency = currency
    for line in order.lines:
        line.unit_price.currency = line.tax_amount.currency = currency
    for money in (order.tax_total, order.total_amount, order.restocking_fee):
        if money.amount:
            money.currency = currency


# Per route, a value the generic checks accept and the ERP pack's table does not hold.
UNMAPPABLE = {
    "netsuite": ("currency", lambda o: _in_currency(o, "CHF")),
    "sap": ("unit_of_measure", lambda o: [setattr(line, "unit_of_measure", "DZ") for line in o.lines]),
    "oracle": ("currency", lambda o: _in_currency(o, "CHF")),
}


@pytest.mark.parametrize("erp", list(ERPS))
async def test_unmappable_value_is_refused_at_submit_naming_field_and_erp(served: Served, erp: str) -> None:
    life = new_life(erp, "unmappable")
    order = life.order(1, EV.Value("LIFECYCLE_EVENT_AUTHORIZED"))
    field, spoil = UNMAPPABLE[erp]
    spoil(order)
    before = REGISTRY.get_sample_value("rb_rejected_total", {"rule": "erp_mapping"}) or 0.0

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.submit(order)

    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = {v.field: v.description for v in _bad_request(info.value).field_violations}
    assert any(field in name for name in violations), violations
    assert all(f"({erp}/" in text for text in violations.values()), violations
    assert (REGISTRY.get_sample_value("rb_rejected_total", {"rule": "erp_mapping"}) or 0.0) > before
    # Nothing was written: the same version, corrected, is accepted as the return's first.
    assert await served.idempotency_keys(life.return_id) == []
    accepted = await served.submit(life.order(1, EV.Value("LIFECYCLE_EVENT_AUTHORIZED")))
    assert accepted.outcome == returns_pb2.SUBMIT_OUTCOME_ACCEPTED
