"""What each simulated ERP sends when its data changes, in the shape the real ERP (or its iPaaS) sends.

SAP: a CloudEvents 1.0 structured-mode JSON business event, as S/4HANA's event channel / SAP Event Mesh
deliver it to a webhook (``type`` ``sap.s4.beh.<object>.v1.<Object>.<Action>.v1``, ``data`` the keys only).
NetSuite: the JSON a user event script (``afterSubmit``) posts with ``N/https``: record type, internal id and
the script context's event type. Oracle Fusion: a business event as an Oracle Integration flow forwards it
(``eventName`` and a ``payload`` of keys). docs/inbound.md lists every shape with an example.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = ["ORACLE_EVENT_NAMES", "SAP_EVENT_TYPES", "build_payload"]

# Object names follow S/4HANA's business event catalog; the stock event name is unconfirmed (S/4HANA raises
# material document events for goods movements), see docs/inbound.md.
SAP_EVENT_TYPES = {
    "A_CustomerReturn": ("customerreturn", "CustomerReturn", "CustomerReturn"),
    "A_CreditMemoRequest": ("creditmemorequest", "CreditMemoRequest", "CreditMemoRequest"),
    "A_ReturnsDeliveryHeader": ("customerreturnsdelivery", "CustomerReturnsDelivery", "DeliveryDocument"),
    "A_BillingDocument": ("billingdocument", "BillingDocument", "BillingDocument"),
}
SAP_STOCK_EVENT = ("materialstock", "MaterialStock")

ORACLE_EVENT_NAMES = {
    "salesOrdersForOrderHub": ("Order Status Updated", "HeaderId"),
    "receivablesCreditMemos": ("Receivables Credit Memo Updated", "CustomerTransactionId"),
    "receivingReceiptRequests": ("Receipt Created", "HeaderInterfaceId"),
}
ORACLE_STOCK_EVENT = "Inventory On Hand Updated"


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sap(kind: str, key: str, at: float, created: bool) -> dict[str, Any] | None:
    if kind == "stock":
        material, plant, storage_location = ([*key.split("|"), "", "", ""])[:3]
        obj, name = SAP_STOCK_EVENT
        data: dict[str, Any] = {"Material": material, "Plant": plant, "StorageLocation": storage_location}
    else:
        doc_type, _, doc_id = key.partition("/")
        known = SAP_EVENT_TYPES.get(doc_type)
        if known is None:
            return None
        obj, name, key_field = known
        data = {key_field: doc_id}
    action = "Created" if created else "Changed"
    return {
        "specversion": "1.0",
        "type": f"sap.s4.beh.{obj}.v1.{name}.{action}.v1",
        "source": "/default/sap.s4.beh/RB1CLNT100",
        "id": str(uuid.uuid4()),
        "time": _iso(at),
        "datacontenttype": "application/json",
        "data": data,
    }


def _netsuite(kind: str, key: str, at: float, created: bool) -> dict[str, Any] | None:
    if kind == "stock":
        sku, location, _ = ([*key.split("|"), "", "", ""])[:3]
        record_type, record_id, extra = "inventoryitem", sku, {"location": location}
    else:
        doc_type, _, record_id = key.partition("/")
        # SuiteScript's record.Type values are the REST record names in lower case.
        record_type, extra = doc_type.lower(), {}
    return {
        "notificationId": str(uuid.uuid4()),
        "eventType": "create" if created else "edit",
        "recordType": record_type,
        "id": record_id,
        "timestamp": _iso(at),
        **extra,
    }


def _oracle(kind: str, key: str, at: float, created: bool) -> dict[str, Any] | None:
    if kind == "stock":
        item, org, subinventory = ([*key.split("|"), "", "", ""])[:3]
        name = ORACLE_STOCK_EVENT
        payload: dict[str, Any] = {
            "ItemNumber": item,
            "OrganizationCode": org,
            "SubinventoryCode": subinventory,
        }
    else:
        doc_type, _, doc_id = key.partition("/")
        known = ORACLE_EVENT_NAMES.get(doc_type)
        if known is None:  # the EBS stand-in's tables: EBS does not raise Fusion business events
            return None
        name, key_field = known
        payload = {key_field: doc_id}
    return {"eventId": str(uuid.uuid4()), "eventName": name, "eventTime": _iso(at), "payload": payload}


_BUILDERS = {"sap": _sap, "netsuite": _netsuite, "oracle": _oracle}


def build_payload(simulator: str, kind: str, key: str, at: float, *, created: bool) -> dict[str, Any] | None:
    """The notification for one change-feed entry of ``simulator``; None when that ERP raises no event for it.

    Args:
        simulator: "sap", "netsuite" or "oracle" (the kit's name).
        kind: the change feed's kind, "stock" or "document".
        key: ``sku|site|sub`` for stock, ``<document type>/<id>`` for documents.
        at: when the change happened (unix seconds).
        created: the first change of this key since the simulator started (an ERP's "created" event).
    """
    builder = _BUILDERS.get(simulator)
    return None if builder is None else builder(kind, key, at, created)
