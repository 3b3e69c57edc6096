"""Requests whose bytes do not decode: INVALID_ARGUMENT before authentication, no traceback, logged sparingly.

grpc.aio answers a failing request deserializer with UNKNOWN, the decoder's class name and a logged traceback per
call, so anonymous garbage could fill the log. Instead the outermost interceptor installs a deserializer that turns
any decode failure (bad wire format, invalid UTF-8 in a string, nesting past the decoder's recursion limit) into a
``MalformedRequest`` marker, and the call is refused with a plain ``ValidationError``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from google.protobuf.message import DecodeError

from returnbridge.errors import FieldViolation, ValidationError

__all__ = ["RULE_MALFORMED", "MalformedLog", "MalformedRequest", "refusal", "tolerant"]

#: The rule a malformed submission is counted under (``rb_rejected_total``).
RULE_MALFORMED: Final = "request.malformed"

log = logging.getLogger(__name__)


class MalformedRequest:
    """Stands in for a request message that failed to decode."""

    __slots__ = ()


_MALFORMED: Final = MalformedRequest()


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning the ``MalformedRequest`` marker instead of raising on bad bytes."""
    if deserializer is None:
        return None

    def run(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, RecursionError, UnicodeDecodeError, ValueError):
            return _MALFORMED

    return run


def refusal(method: str) -> ValidationError:
    """The error a malformed request is answered with (no decoder names, no offsets into the bytes)."""
    description = "is not a valid protobuf encoding of this RPC's request message"
    return ValidationError(
        f"malformed request for {method}: {description}",
        [FieldViolation("request", description, rule=RULE_MALFORMED)],
    )


class MalformedLog:
    """Logs malformed requests at most once per peer host per ``interval`` seconds, with the count since.

    The table of peers is bounded (oldest forgotten first), so a flood from many addresses cannot grow it.
    """

    def __init__(self, interval: float = 60.0, max_peers: int = 4096) -> None:
        self.interval = interval
        self.max_peers = max_peers
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def host_of(peer: str) -> str:
        """``ipv4:10.0.0.1:5123`` -> ``ipv4:10.0.0.1``: one entry per host, whatever port it comes from."""
        head, _, tail = peer.rpartition(":")
        return head if head and tail.isdigit() else peer

    def note(self, peer: str, method: str) -> bool:
        """Count one malformed request; returns True when this one was logged."""
        host = self.host_of(peer)[:128]
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._seen.pop(host, (float("-inf"), 0))
            if now - last < self.interval:
                self._seen[host] = (last, suppressed + 1)
                return False
            self._seen[host] = (now, 0)
            while len(self._seen) > self.max_peers:
                self._seen.popitem(last=False)
        more = f" (+{suppressed} more since the last report)" if suppressed else ""
        log.warning("malformed request from %s to %s refused%s", host, method, more)
        return True
