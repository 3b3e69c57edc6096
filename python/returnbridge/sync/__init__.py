"""Sync state and events per return, the ERP -> RMS inventory/status poller, and reconciliation."""

from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig
from returnbridge.sync.reconciliation import reconciliation_report
from returnbridge.sync.status import SyncStateStore

__all__ = [
    "InventoryStore",
    "PollTarget",
    "PollTargetConfig",
    "Poller",
    "PollerSettings",
    "SyncStateStore",
    "reconciliation_report",
]
