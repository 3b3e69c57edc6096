"""Reconciliation: expected credits/refunds from sync state against amounts the ERP reports as posted."""

from __future__ import annotations

import time
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from returnbridge.api.v1 import admin_pb2, common_pb2
from returnbridge.bus import subjects
from returnbridge.bus.kv import get_json, keys_matching
from returnbridge.sync.status import SyncStateStore


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


async def _posted(status: SyncStateStore, tenant: str, doc: dict[str, Any]) -> dict[str, str] | None:
    """What the ERP last reported as posted for the document; a credit voided in the ERP posts nothing."""
    if not doc["erp_document_id"]:
        return None
    record, _ = await get_json(
        status.kv, subjects.posted_key(tenant, doc["document_type"], doc["erp_document_id"])
    )
    if record is not None and record.get("status") == "voided":
        return {"amount": "0", "currency": record.get("currency") or ""}
    if record is None or not record.get("amount"):
        return None
    return {"amount": record["amount"], "currency": record["currency"]}


async def reconciliation_report(
    status: SyncStateStore, tenant: str, *, erp: int = 0, since: float = 0.0
) -> admin_pb2.ReconciliationReport:
    """One line per credit/refund document of the tenant's returns (optionally one ERP, created since)."""
    keys = await keys_matching(status.kv, subjects.sync_state_tenant_filter(tenant))
    lines: list[admin_pb2.ReconciliationLine] = []
    expected_totals: dict[str, Decimal] = defaultdict(Decimal)
    posted_totals: dict[str, Decimal] = defaultdict(Decimal)
    balanced = True
    for key in sorted(keys):
        tenant_token, return_token = key.split(".", 1)
        record = await status.get(subjects.kv_untoken(tenant_token), subjects.kv_untoken(return_token))
        if record is None or record["tenant_id"] != tenant:
            continue
        for doc in sorted(record["documents"].values(), key=lambda d: (d["version"], d["step"])):
            expected = doc.get("expected_amount")
            if not expected or (erp and doc["erp"] != erp) or doc["created_at"] < since:
                continue
            line = admin_pb2.ReconciliationLine(
                return_id=record["return_id"],
                document_type=doc["document_type"],
                erp_document_id=doc["erp_document_id"],
                expected=common_pb2.Money(**expected),
            )
            if doc.get("erp_status") == "voided":
                # Voided in the ERP after delivery: nothing is posted any more, a drift the RMS must see.
                posted: dict[str, str] | None = {"amount": "0", "currency": expected["currency"]}
            else:
                reported = await _posted(status, tenant, doc)
                voided = reported is not None and reported["amount"] == "0"
                posted = reported if voided else doc.get("posted_amount") or reported
            if posted:
                line.erp_posted.CopyFrom(common_pb2.Money(**posted))
            want = _decimal(expected["amount"])
            if doc["state"] != "DELIVERED":
                line.status = admin_pb2.RECONCILIATION_STATUS_PENDING
            else:
                if want is not None:
                    expected_totals[expected["currency"]] += want
                got = _decimal(posted["amount"]) if posted else None
                if got is not None and posted:
                    # ERPs post credits with either sign; the magnitude is what must agree.
                    posted_totals[posted["currency"]] += abs(got)
                if not posted:
                    line.status = admin_pb2.RECONCILIATION_STATUS_MISSING_IN_ERP
                    balanced = False
                elif (
                    not posted
                    or got is None
                    or want is None
                    or abs(got) != want
                    or posted["currency"] != expected["currency"]
                ):
                    line.status = admin_pb2.RECONCILIATION_STATUS_AMOUNT_MISMATCH
                    balanced = False
                else:
                    line.status = admin_pb2.RECONCILIATION_STATUS_MATCHED
            lines.append(line)
    generated = Timestamp()
    generated.FromNanoseconds(int(time.time() * 1e9))
    report = admin_pb2.ReconciliationReport(
        tenant_id=tenant,
        erp=erp,  # type: ignore[arg-type]
        generated_at=generated,
        lines=lines,
        expected_totals=[
            common_pb2.Money(amount=str(v), currency=c) for c, v in sorted(expected_totals.items())
        ],
        posted_totals=[common_pb2.Money(amount=str(v), currency=c) for c, v in sorted(posted_totals.items())],
        balanced=balanced and dict(expected_totals) == dict(posted_totals),
    )
    return report
