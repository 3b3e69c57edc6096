"""The NATS link: whether it is up, and which failures mean "the bus is unreachable" (UNAVAILABLE, not INTERNAL)."""

from __future__ import annotations

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient

from returnbridge.errors import BusUnavailableError

__all__ = ["BUS_FAILURES", "NO_LEADER_ERR_CODES", "as_bus_unavailable", "require_link"]

#: What nats.py raises when the server cannot be reached or does not answer in time.
BUS_FAILURES: tuple[type[BaseException], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.FlushTimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.js.errors.ServiceUnavailableError,
    # js.publish turns "no responders" into this: the subject's stream has no leader (an election in a cluster).
    # The leader-loss chaos run answered 150-247 submissions INTERNAL through it before it was listed here.
    nats.js.errors.NoStreamResponseError,
)

#: JetStream API errors (by ``err_code``) that a cluster answers while it has no leader for the asset or the
#: meta layer: transient, a retry after the election succeeds. A 503 of any kind is transient too.
NO_LEADER_ERR_CODES: frozenset[int] = frozenset(
    {
        10008,  # JSClusterNotAvailErr: JetStream system temporarily unavailable (no quorum)
        10009,  # JSClusterNotLeaderErr: JetStream cluster can not handle request (not the leader)
    }
)


def require_link(nc: NatsClient) -> None:
    """Refuse at once while the link is down: nats.py would buffer the request and time out seconds later.

    Raises:
        BusUnavailableError: the client is disconnected or reconnecting.
    """
    if not nc.is_connected:
        raise BusUnavailableError("the message bus is unreachable; nothing was accepted, retry shortly")


def as_bus_unavailable(exc: BaseException) -> BusUnavailableError | None:
    """The BusUnavailableError an exception amounts to, or None when it is something else."""
    if isinstance(exc, BusUnavailableError):
        return exc
    if isinstance(exc, BUS_FAILURES) or _leaderless(exc):
        return BusUnavailableError(
            f"the message bus did not answer ({type(exc).__name__}); retry with the same idempotency key"
        )
    return None


def _leaderless(exc: BaseException) -> bool:
    """A JetStream API error saying the cluster cannot serve the request until an election completes."""
    if not isinstance(exc, nats.js.errors.APIError):
        return False
    return exc.code == 503 or exc.err_code in NO_LEADER_ERR_CODES
