"""The submit path's validation seam: gateway checks plus the pipeline's own invariants."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.validation import ReferenceData, full_validator, minimal_validate
from returnbridge.errors import ValidationError


def _cancel() -> returns_pb2.ReturnOrder:
    return returns_pb2.ReturnOrder(
        return_id="R9", tenant_id="acme", rma_number="RMA-9", version=4, currency="USD",
        return_type=returns_pb2.RETURN_TYPE_REFUND, event=returns_pb2.LIFECYCLE_EVENT_CANCELLED,
        event_time=Timestamp(seconds=1_795_000_000),
    )  # fmt: skip


def test_cancel_without_lines_passes_both_layers() -> None:
    minimal_validate(_cancel())
    full_validator(ReferenceData())(_cancel())


def test_other_events_still_need_lines() -> None:
    order = _cancel()
    order.event = returns_pb2.LIFECYCLE_EVENT_RECEIVED
    with pytest.raises(ValidationError) as info:
        minimal_validate(order)
    assert [v.field for v in info.value.violations] == ["return_order.lines"]
