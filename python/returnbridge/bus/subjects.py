"""Every NATS subject, stream and KV bucket name returnbridge uses; the only place they are built."""

from __future__ import annotations

import re

from returnbridge.errors import ValidationError

# Stream names.
DELIVER_STREAM = "RB_DELIVER"
EVENTS_STREAM = "RB_EVENTS"
DLQ_STREAM = "RB_DLQ"
# Inbound ERP records refused after translation (their own stream: they hold ERP data, not RMS submissions).
INBOUND_DLQ_STREAM = "RB_INBOUND_DLQ"
AUDIT_STREAM = "RB_AUDIT"

# KV bucket names.
IDEMPOTENCY_BUCKET = "rb_idempotency"
SYNC_STATE_BUCKET = "rb_sync_state"
INVENTORY_BUCKET = "rb_inventory"
CURSORS_BUCKET = "rb_cursors"
# RMA number -> return id, per tenant: GetReturnStatus and the console find a return by the RMA people quote.
RMA_INDEX_BUCKET = "rb_rma_index"
# (tenant, serial number) -> the open return holding it (services/serial_claims.py).
SERIALS_BUCKET = "rb_serials"
# Signatures and event ids of ERP notifications seen within the replay window (inbound/replay.py).
INBOUND_SEEN_BUCKET = "rb_inbound_seen"
# Open and recently resolved alert incidents, shared by every process (observability/alerts.py).
INCIDENTS_BUCKET = "rb_incidents"
# JetStream advisory published when a stream elects a new leader (one token: the stream name).
STREAM_LEADER_ELECTED_ALL = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*"

# Subjects each stream captures.
DELIVER_ALL = "rb.deliver.>"
STATUS_ALL = "rb.status.>"
INVENTORY_ALL = "rb.inventory.>"
DOCSTATUS_ALL = "rb.docstatus.>"
DLQ_ALL = "rb.dlq.>"
INBOUND_DLQ_ALL = "rb.inbound_dlq.>"
AUDIT_ALL = "rb.audit.>"

# One subject token: no dots, wildcards or whitespace, so a tenant can never widen a filter.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SEVERITIES = frozenset({"info", "warning", "critical"})


def token(value: str, what: str) -> str:
    """Return ``value`` when it is a safe single subject token, else raise ValidationError naming ``what``."""
    if not _TOKEN.match(value):
        raise ValidationError(f"{what} {value!r} is not a valid subject token ([A-Za-z0-9_-], 1-64 chars)")
    return value


def deliver(target: str, tenant: str) -> str:
    return f"rb.deliver.{token(target, 'target')}.{token(tenant, 'tenant')}"


def deliver_target_filter(target: str) -> str:
    """All tenants' work for one target: the filter of that target's durable consumer."""
    return f"rb.deliver.{token(target, 'target')}.*"


def status(tenant: str) -> str:
    return f"rb.status.{token(tenant, 'tenant')}"


def inventory(tenant: str) -> str:
    return f"rb.inventory.{token(tenant, 'tenant')}"


def docstatus(tenant: str) -> str:
    return f"rb.docstatus.{token(tenant, 'tenant')}"


def dlq(target: str, tenant: str) -> str:
    return f"rb.dlq.{token(target, 'target')}.{token(tenant, 'tenant')}"


def inbound_dlq(target: str, tenant: str) -> str:
    return f"rb.inbound_dlq.{token(target, 'target')}.{token(tenant, 'tenant')}"


def inbound_dlq_tenant_filter(tenant: str) -> str:
    return f"rb.inbound_dlq.*.{token(tenant, 'tenant')}"


def dlq_tenant_filter(tenant: str) -> str:
    return f"rb.dlq.*.{token(tenant, 'tenant')}"


def audit(tenant: str) -> str:
    return f"rb.audit.{token(tenant, 'tenant')}"


def alerts(severity: str) -> str:
    if severity not in SEVERITIES:
        raise ValidationError(f"alert severity {severity!r} is not one of {sorted(SEVERITIES)}")
    return f"rb.alerts.{severity}"


def subject_tenant(subject: str) -> str:
    """The tenant token of a ``rb.<kind>.[<target>.]<tenant>`` subject (always the last token)."""
    return subject.rsplit(".", 1)[-1]


def subject_target(subject: str) -> str:
    """The target token of a ``rb.deliver.<target>.<tenant>`` or ``rb.dlq.<target>.<tenant>`` subject."""
    parts = subject.split(".")
    if len(parts) != 4:
        raise ValidationError(f"subject {subject!r} has no target token")
    return parts[2]


def max_deliveries_advisory(stream: str = DELIVER_STREAM, consumer: str = "*") -> str:
    """JetStream's advisory when a consumer gives up on a message after MaxDeliver deliveries."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"


def deliver_consumer(target: str) -> str:
    """Durable name of the pull consumer all workers of ``target`` share."""
    return f"rb-deliver-{token(target, 'target')}"


# KV keys allow [-/_=.A-Za-z0-9]; anything else is hex-encoded behind a marker so keys stay unique.
_KV_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def kv_token(value: str) -> str:
    """Encode an arbitrary id as one KV key token (dot-free), reversibly."""
    if _KV_SAFE.match(value) and not value.startswith("=x"):
        return value
    return "=x" + value.encode().hex()


def kv_untoken(value: str) -> str:
    if value.startswith("=x"):
        return bytes.fromhex(value[2:]).decode()
    return value


def sync_state_key(tenant: str, return_id: str) -> str:
    return f"{kv_token(tenant)}.{kv_token(return_id)}"


def rma_index_key(tenant: str, rma_number: str) -> str:
    return f"{kv_token(tenant)}.{kv_token(rma_number)}"


def sync_state_tenant_filter(tenant: str) -> str:
    return f"{kv_token(tenant)}.*"


def inventory_key(tenant: str, sku: str, site: str, sub_location: str, target: str) -> str:
    """``tenant.sku.site.sub.target`` with each part encoded; an empty sub-location becomes ``_``.

    The target is part of the key: when several ERPs of one tenant report the same SKU and location,
    each keeps its own level instead of overwriting the other's.
    """
    return ".".join(kv_token(part or "_") for part in (tenant, sku, site, sub_location, target))


def inventory_location_filter(tenant: str, sku: str, site: str, sub_location: str) -> str:
    """Every target's level of one SKU at one location."""
    return ".".join(kv_token(part or "_") for part in (tenant, sku, site, sub_location)) + ".*"


def inventory_tenant_filter(tenant: str) -> str:
    return f"{kv_token(tenant)}.>"


def cursor_key(target: str, kind: str) -> str:
    return f"{kv_token(target)}.{kv_token(kind)}"


def inbound_dlq_state_key(dead_letter_id: int) -> str:
    """REPLAYED / DISCARDED mark of one inbound dead letter (``rb_sync_state``); absent = pending."""
    return f"inbounddlq.{dead_letter_id}"


def posted_key(tenant: str, document_type: str, document_id: str) -> str:
    """Latest ERP-reported status of one document (``rb_sync_state``), read by reconciliation."""
    return f"posted.{kv_token(tenant)}.{kv_token(document_type)}.{kv_token(document_id)}"
