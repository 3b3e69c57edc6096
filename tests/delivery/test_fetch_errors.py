"""A pull that fails with a server error (no consumer leader during an election) does not stop the worker."""

from __future__ import annotations

from typing import Any

import pytest
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from delivery.pipeline_harness import Pipeline, fast_settings, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.domain.context import Principal, set_principal


async def test_fetch_failing_with_503_is_retried_and_the_return_delivered(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a pull request gets while its consumer has no leader (the leader-loss scenario in tests/chaos):
    # nats-py raises it from fetch, which once ended the worker's loop for good.
    real_fetch = JetStreamContext.PullSubscription.fetch
    failures = {"left": 3}

    async def flaky_fetch(self: JetStreamContext.PullSubscription, *args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ServiceUnavailableError(code=503, description="No Responders")
        return await real_fetch(self, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext.PullSubscription, "fetch", flaky_fetch)
    set_principal(Principal(name="rms", tenant_id="acme"))
    await pipeline.start_worker("netsuite", fast_settings())
    await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order("F1")))

    async def delivered() -> None:
        record = await pipeline.status.get("acme", "F1")
        assert record is not None
        assert [d["state"] for d in record["documents"].values()] == ["DELIVERED"], record

    await assert_eventually(delivered, timeout=30)
    assert failures["left"] == 0
