"""Sync state and events per return, and the ERP -> RMS inventory/status poller."""
