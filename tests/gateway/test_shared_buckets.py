"""The token buckets ``serve``'s gateway processes share (gateway/shared_buckets.py): the limits of the port."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from gateway.support import FakeClock
from gateway.support import principal as _principal
from returnbridge.errors import RateLimitedError
from returnbridge.gateway.ratelimit import RateLimiter
from returnbridge.gateway.security_config import RateLimitConfig
from returnbridge.gateway.shared_buckets import SharedBuckets, create_table


def _config(table: Path, **limits: float) -> RateLimitConfig:
    return RateLimitConfig(shared_buckets=str(table), **limits)  # type: ignore[arg-type]


def test_two_limiters_on_one_table_share_the_burst(tmp_path: Path) -> None:
    table = create_table(tmp_path / "buckets", 64)
    clock = FakeClock()
    config = _config(table, principal_rate_per_second=2, principal_burst=3, tenant_burst=100)
    first, second = RateLimiter(config, clock=clock), RateLimiter(config, clock=clock)
    first.check_rate(_principal())
    second.check_rate(_principal())
    first.check_rate(_principal())
    with pytest.raises(RateLimitedError) as info:
        second.check_rate(_principal())
    assert info.value.retry_after == 0.5 and info.value.quota == "principal:acme/rms"
    # Another principal of the tenant has its own bucket; time refills the shared one for both processes.
    second.check_rate(_principal("other"))
    clock.now += 0.5
    second.check_rate(_principal())
    with pytest.raises(RateLimitedError):
        first.check_rate(_principal())


def test_a_refusal_charges_neither_bucket(tmp_path: Path) -> None:
    table = create_table(tmp_path / "buckets", 64)
    clock = FakeClock()
    config = _config(
        table, principal_rate_per_second=1, principal_burst=5, tenant_rate_per_second=1, tenant_burst=4
    )
    limiters = [RateLimiter(config, clock=clock) for _ in range(2)]
    for index, name in enumerate("abcd"):
        limiters[index % 2].check_rate(_principal(name))
    with pytest.raises(RateLimitedError) as info:
        limiters[0].check_rate(_principal("e"))
    assert info.value.quota == "tenant:acme" and info.value.retry_after == 1.0
    limiters[1].check_rate(_principal("x", tenant="beta"))
    clock.now += 1.0
    # "e" was refused without losing a principal token, and the tenant refilled exactly one.
    limiters[1].check_rate(_principal("e"))
    with pytest.raises(RateLimitedError):
        limiters[0].check_rate(_principal("f"))


def test_the_table_forgets_the_least_recently_used_key_and_keeps_its_size(tmp_path: Path) -> None:
    table = create_table(tmp_path / "buckets", 20)
    size = table.stat().st_size
    limiter = RateLimiter(
        _config(table, principal_rate_per_second=0.0001, principal_burst=1, tenant_burst=10_000),
        clock=FakeClock(step=0.001),
    )
    limiter.check_rate(_principal("first"))
    with pytest.raises(RateLimitedError):
        limiter.check_rate(_principal("first"))
    for index in range(40):
        limiter.check_rate(_principal(f"p{index}"))
    # "first" was the oldest bucket when the table filled up: it starts again full.
    limiter.check_rate(_principal("first"))
    assert table.stat().st_size == size


def _charge_many(table: str, attempts: int, results: multiprocessing.Queue[int]) -> None:
    limiter = RateLimiter(
        RateLimitConfig(
            shared_buckets=table, principal_rate_per_second=0.0001, principal_burst=30, tenant_burst=1000
        )
    )
    passed = 0
    for _ in range(attempts):
        try:
            limiter.check_rate(_principal())
            passed += 1
        except RateLimitedError:
            pass
    results.put(passed)


def test_processes_charging_at_once_pass_the_burst_exactly_once(tmp_path: Path) -> None:
    table = create_table(tmp_path / "buckets", 64)
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = ctx.Queue()
    workers = [ctx.Process(target=_charge_many, args=(str(table), 200, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    passed = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(passed) == 30, passed


def test_a_file_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.write_bytes(b"x" * 25)
    with pytest.raises(ValueError, match="not a rate-limit table"):
        SharedBuckets(odd, tenant=(1.0, 1.0), principal=(1.0, 1.0))
