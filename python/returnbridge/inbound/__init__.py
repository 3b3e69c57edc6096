"""ERP -> RMS by push: an authenticated webhook receiver whose notifications wake the poller."""

from returnbridge.inbound.keys import resolve_keys
from returnbridge.inbound.payloads import Notification, PayloadError, parse_notification, push_capable
from returnbridge.inbound.receiver import PATH, HintSink, InboundReceiver, ReceiverKey
from returnbridge.inbound.replay import ReplayGuard
from returnbridge.inbound.settings import InboundKey, InboundSettings

__all__ = [
    "PATH",
    "HintSink",
    "InboundKey",
    "InboundReceiver",
    "InboundSettings",
    "Notification",
    "PayloadError",
    "ReceiverKey",
    "ReplayGuard",
    "parse_notification",
    "push_capable",
    "resolve_keys",
]
