"""The gRPC service config shipped for clients: retry what is safe to retry, honouring the server's pushback.

``SubmitReturn`` is idempotent by its key (a retry of an accepted event answers DUPLICATE), so UNAVAILABLE (bus
or server away) and RESOURCE_EXHAUSTED (shed by admission control) are retried; the server's
``grpc-retry-pushback-ms`` trailer, sent with every RetryInfo, replaces the backoff for that attempt.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["OWN_CONNECTION", "SERVICE_CONFIG", "channel_options"]

_RETRY: Final = {
    "maxAttempts": 5,
    "initialBackoff": "0.2s",
    "maxBackoff": "10s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
}

SERVICE_CONFIG: Final[dict[str, Any]] = {
    "methodConfig": [
        {
            "name": [
                {"service": "returnbridge.api.v1.ReturnsService", "method": "SubmitReturn"},
                {"service": "returnbridge.api.v1.ReturnsService", "method": "GetReturnStatus"},
                {"service": "returnbridge.api.v1.InventoryService"},
                {"service": "returnbridge.api.v1.TranslationService"},
            ],
            "retryPolicy": _RETRY,
        }
    ],
    # Stop retrying when most calls fail, so a client fleet does not multiply an overload. Each failed attempt costs a
    # token, a success returns 0.1, retries stop below half: 1,000 (gRFC A6's maximum) lets a channel with hundreds
    # of calls in a spike retry the ones admission shed (each with the server's pushback) instead of giving up after
    # 50 (a 10,000-call spike left 1,750 RESOURCE_EXHAUSTED with 100), while a server failing everything still
    # stops a client's retries after 500 failures.
    "retryThrottling": {"maxTokens": 1000, "tokenRatio": 0.1},
}


#: Each channel its own connection. grpc otherwise shares one connection between all channels of a process with
#: equal target and options, so a client opening N channels still lands on one gateway process (``serve`` runs one
#: per core on a shared port and the kernel spreads connections, not calls) and on one HTTP/2 stream budget.
OWN_CONNECTION: Final = ("grpc.use_local_subchannel_pool", 1)


def channel_options() -> list[tuple[str, Any]]:
    """Options for ``grpc.aio.insecure_channel(target, options=...)`` / ``secure_channel``."""
    return [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(SERVICE_CONFIG)), OWN_CONNECTION]
