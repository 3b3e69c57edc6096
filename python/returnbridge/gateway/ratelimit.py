"""Token buckets per principal and per tenant, and a global cap on in-flight RPCs."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from returnbridge.domain.context import Principal
from returnbridge.errors import RateLimitedError
from returnbridge.gateway.security_config import RateLimitConfig
from returnbridge.gateway.shared_buckets import SharedBuckets

__all__ = ["RateLimiter", "TokenBucket"]

# Retry hint when the concurrency cap, not a bucket, refused the call: slots free up as calls finish.
_CONCURRENCY_RETRY_SECONDS = 0.1


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> TokenBucket:
        return cls(rate=rate, burst=float(burst), tokens=float(burst), updated=now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds until one token is available (0 when one is available now)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


class _Buckets:
    """LRU-bounded buckets by key, so a flood of distinct principals cannot grow memory without limit."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self._rate, self._burst, self._max = rate, burst, max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, key: str, now: float) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket.full(self._rate, self._burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket


class RateLimiter:
    """Admission control for one server process.

    ``admit`` checks the caller's tenant and principal buckets (both must have a token; neither is charged
    otherwise) and holds a concurrency slot for the duration of the ``with`` block.
    """

    def __init__(self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._principals = _Buckets(
            config.principal_rate_per_second, config.principal_burst, config.max_tracked_keys
        )
        self._tenants = _Buckets(config.tenant_rate_per_second, config.tenant_burst, config.max_tracked_keys)
        self._shared = (
            SharedBuckets(
                config.shared_buckets,
                tenant=(config.tenant_rate_per_second, config.tenant_burst),
                principal=(config.principal_rate_per_second, config.principal_burst),
            )
            if config.shared_buckets
            else None
        )
        self._exempt = frozenset(config.concurrency_exempt_methods)
        self.in_flight = 0

    def check_rate(self, principal: Principal) -> None:
        """Charge one token to the principal and its tenant.

        Raises:
            RateLimitedError: either bucket is empty; ``retry_after`` is when both will have a token.
        """
        if not self.config.enabled:
            return
        now = self._clock()
        tenant_key = principal.tenant_id or "-"
        own_key = f"{tenant_key}/{principal.name}"
        if self._shared is not None:
            tenant_wait, own_wait = self._shared.charge(tenant_key, own_key, now)
        else:
            tenant = self._tenants.get(tenant_key, now)
            own = self._principals.get(own_key, now)
            tenant_wait, own_wait = tenant.wait_time(now), own.wait_time(now)
            if tenant_wait == 0 and own_wait == 0:
                tenant.take(now)
                own.take(now)
        if tenant_wait > 0 or own_wait > 0:
            quota = (
                f"tenant:{tenant_key}"
                if tenant_wait >= own_wait
                else f"principal:{tenant_key}/{principal.name}"
            )
            wait = max(tenant_wait, own_wait)
            # Round up to the millisecond so a client sleeping exactly retry_after finds a token.
            raise RateLimitedError(
                f"rate limit exceeded for {quota}", retry_after=math.ceil(wait * 1000) / 1000, quota=quota
            )

    def acquire_slot(self, method: str) -> bool:
        """Take a concurrency slot for ``method``; False when none is needed (exempt method or limits off).

        Raises:
            RateLimitedError: every slot is taken.
        """
        if not self.config.enabled or method in self._exempt:
            return False
        if self.in_flight >= self.config.max_concurrent_rpcs:
            raise RateLimitedError(
                f"server is at its limit of {self.config.max_concurrent_rpcs} concurrent calls",
                retry_after=_CONCURRENCY_RETRY_SECONDS,
                quota="server:concurrent_rpcs",
            )
        self.in_flight += 1
        return True

    def release_slot(self) -> None:
        self.in_flight -= 1

    @contextmanager
    def concurrency_slot(self, method: str) -> Iterator[None]:
        """Hold one of ``max_concurrent_rpcs`` slots while the block runs (exempt methods hold none)."""
        held = self.acquire_slot(method)
        try:
            yield
        finally:
            if held:
                self.release_slot()
