"""The target's circuit breaker: an ERP outage longer than the retry budget pauses delivery instead of
dead-lettering everything in flight, spares the down ERP, and delivery resumes as soon as the ERP answers."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from connectors.harnesses.sap import SapODataHarness
from delivery.pipeline_harness import Pipeline, fast_settings
from mapping.samples import build_return
from returnbridge.api.v1 import returns_pb2
from returnbridge.bus.consumer import ConsumerSettings
from returnbridge.delivery.breaker import Breaker, BreakerSettings
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import TransientErpError
from returnbridge.mapping import MappingRegistry
from returnbridge.observability.metrics import REGISTRY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def never_called() -> None:
    raise AssertionError("no probe expected")


async def test_it_opens_after_failures_in_a_row_and_time_without_an_answer() -> None:
    clock = Clock()
    breaker = Breaker("sap", BreakerSettings(failures=3, open_after_seconds=10.0), never_called, clock)
    for _ in range(20):
        breaker.answered()
    for _ in range(5):
        breaker.failed()
    assert not breaker.is_open  # many failures, but the last answer was just now, and most calls answered
    clock.now += 10.0
    breaker.answered()  # one answer (a 429, a refusal, nothing found) starts both counts again
    clock.now += 10.0
    breaker.failed()
    breaker.failed()
    assert not breaker.is_open  # long enough without an answer, not enough failures
    breaker.failed()
    assert breaker.is_open
    assert REGISTRY.get_sample_value("rb_erp_breaker_open", {"target": "sap"}) == 1
    breaker.answered()
    assert not breaker.is_open
    assert REGISTRY.get_sample_value("rb_erp_breaker_open", {"target": "sap"}) == 0
    await breaker.close()


async def test_an_erp_that_answers_one_call_in_ten_opens_it_though_never_quiet() -> None:
    clock = Clock()
    settings = BreakerSettings(failures=10, open_after_seconds=1000.0, failure_ratio=0.8, window_seconds=10.0)
    breaker = Breaker("sap", settings, never_called, clock)
    breaker.answered()
    for _ in range(9):
        clock.now += 0.1
        breaker.failed()
    assert not breaker.is_open  # 9 of 10 failed: fewer than `failures`
    clock.now += 0.1
    breaker.answered()
    clock.now += 0.1
    breaker.failed()
    assert breaker.is_open  # 10 of 12 failed in the window
    await breaker.close()
    # A stopped worker pauses nothing: the gauge (and the console, the alert rule) must not say "down" for it.
    assert REGISTRY.get_sample_value("rb_erp_breaker_open", {"target": "sap"}) == 0


@pytest.mark.parametrize("error_rate", [0.2, 0.5])
def test_an_error_rate_the_retry_budget_rides_out_never_opens_it(error_rate: float) -> None:
    clock = Clock()
    breaker = Breaker("sap", BreakerSettings(), never_called, clock)
    every = round(1 / error_rate)
    for call in range(5000):  # 500 calls a second for 10 s
        clock.now += 0.002
        if call % every == 0:
            breaker.failed()
        else:
            breaker.answered()
        assert not breaker.is_open, call


async def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    settings = BreakerSettings(failures=10, open_after_seconds=1000.0, window_seconds=10.0)
    breaker = Breaker("sap", settings, never_called, clock)
    for _ in range(9):
        breaker.failed()
    clock.now += 12.0
    for _ in range(9):
        breaker.failed()
    assert not breaker.is_open  # 18 failures in a row, never 10 in one window (and quiet for < 1000 s)
    breaker.failed()
    assert breaker.is_open
    await breaker.close()


async def test_the_failures_that_opened_it_do_not_open_it_again_once_it_closed() -> None:
    clock = Clock()
    breaker = Breaker("sap", BreakerSettings(open_after_seconds=1000.0), never_called, clock)
    for _ in range(10):
        breaker.failed()
    assert breaker.is_open
    breaker.answered()  # the probe's answer
    breaker.failed()
    assert not breaker.is_open  # 11 of 12 failed in the window, but those before the answer are forgotten
    await breaker.close()


def test_a_disabled_breaker_never_opens() -> None:
    clock = Clock()
    breaker = Breaker(
        "sap", BreakerSettings(enabled=False, failures=1, open_after_seconds=0.0), never_called, clock
    )
    for _ in range(100):
        breaker.failed()
        clock.now += 1.0
    assert not breaker.is_open


async def test_while_open_it_probes_every_interval_until_an_answer() -> None:
    probes: list[float] = []

    async def probe() -> None:
        probes.append(time.monotonic())
        if len(probes) < 3:
            breaker.failed()
            raise TransientErpError("still down", erp="sap_s4hana", http_status=503)
        breaker.answered()

    breaker = Breaker("sap", BreakerSettings(failures=1, open_after_seconds=0.0, probe_seconds=0.05), probe)
    await asyncio.sleep(0.2)
    assert probes == []  # closed: no probing
    breaker.failed()
    assert breaker.is_open
    assert await breaker.wait_closed(timeout=5.0)
    assert len(probes) == 3
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(probes)), probes
    await breaker.close()


async def test_a_probe_that_fails_for_another_reason_than_the_erp_resumes_delivery() -> None:
    """A connector bug in the look-up must not keep the target paused for good."""

    async def buggy_probe() -> None:
        raise KeyError("a connector bug")

    settings = BreakerSettings(failures=1, open_after_seconds=0.0, probe_seconds=0.05)
    breaker = Breaker("sap", settings, buggy_probe)
    breaker.failed()
    assert breaker.is_open
    assert await breaker.wait_closed(timeout=5.0)
    await breaker.close()


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


RETURNS = 24
MAX_ATTEMPTS = 5


async def test_an_outage_longer_than_the_retry_budget_dead_letters_nothing(
    pipeline: Pipeline, registry: MappingRegistry
) -> None:
    """SAP answers 503 for 6 s; the retry budget is ~1.5 s (5 attempts from 0.1 s, doubling). Without the
    breaker every return ends in the DLQ (test_no_silent_drop.py); with it, delivery pauses after a few
    attempts, a probe finds SAP back, and every return is posted once, none dead-lettered."""
    intake = pipeline.routed_intake("sap")

    def unreachable_reports() -> list[dict[str, object]]:
        return [a for a in pipeline.alerter.alerts if a["kind"] == "erp_unreachable"]

    harness = SapODataHarness()
    await harness.start()
    try:
        await harness.set_faults({"outage": True, "retry_after": 0})
        settings = fast_settings(
            retry=RetryPolicy(base_delay=0.1, max_delay=2.0, jitter=0.0, max_attempts=MAX_ATTEMPTS),
            consumer=ConsumerSettings(ack_wait_seconds=10.0, max_deliver=40),
            breaker=BreakerSettings(failures=3, open_after_seconds=0.2, probe_seconds=0.3),
        )
        await pipeline.start_connector_worker("sap", harness.connector(timeout=2.0), registry, settings)
        set_principal(Principal(name="rms", tenant_id="acme"))
        orders = [
            build_return(1, seed=40 + i, serialized_every=0, version=1, erp="sap") for i in range(RETURNS)
        ]
        for order in orders:
            await intake.submit(returns_pb2.SubmitReturnRequest(return_order=order))
        await asyncio.sleep(3.0)
        reported = len(unreachable_reports())
        await asyncio.sleep(3.0)
        # Paused, the failed probes still report the outage: erp_unreachable pages once it lasts long enough.
        assert len(unreachable_reports()) > reported
        outage_requests = harness.sim.kit.faults.injected.get("outage", 0)
        await harness.clear_faults()
        back = time.monotonic()

        await pipeline.wait_documents("acme", orders, "DELIVERED", timeout=30)
        resumed_after = time.monotonic() - back
        for order in orders:
            doc = await pipeline.only_document("acme", order.return_id)
            assert doc["attempts"] < MAX_ATTEMPTS, doc  # the pause spent none of the budget
            assert await harness.count_documents("A_CustomerReturn", f"{order.rma_number}-1") == 1
    finally:
        await harness.stop()
    assert not [a for a in pipeline.alerter.alerts if a["kind"] == "dead_letter"]
    # The down ERP saw a few attempts per return and then a probe every 0.3 s, not 5 attempts per return.
    assert outage_requests < RETURNS * MAX_ATTEMPTS, outage_requests
    # Resumed on the first probe after SAP was back, not after the backoff the attempts had grown.
    assert resumed_after < 10.0, resumed_after
