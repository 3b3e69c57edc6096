"""Client library for RMS developers: a tuned channel and typed helpers over the v1 contract."""

from returnbridge.client.channel import (
    DEFAULT_TIMEOUT_SECONDS,
    RETRY_SERVICE_CONFIG,
    channel_options,
    open_channel,
)
from returnbridge.client.client import FINAL_STATES, ReturnBridgeClient

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "FINAL_STATES",
    "RETRY_SERVICE_CONFIG",
    "ReturnBridgeClient",
    "channel_options",
    "open_channel",
]
