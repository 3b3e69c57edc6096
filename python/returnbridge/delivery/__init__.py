"""Delivery: workers that translate and deliver each accepted event to its ERP exactly once, plus the DLQ."""
