"""Delivery: workers that translate and deliver each accepted event to its ERP exactly once, plus the DLQ."""

from returnbridge.delivery.dlq import DeadLetterStore
from returnbridge.delivery.dlq_cli import add_dlq_commands
from returnbridge.delivery.retry import RetryPolicy
from returnbridge.delivery.worker import DeliverySettings, DeliveryWorker

__all__ = ["DeadLetterStore", "DeliverySettings", "DeliveryWorker", "RetryPolicy", "add_dlq_commands"]
