"""Reads an ERP's notification in its own shape and says what changed: inventory, document status, or both.

The receiver trusts none of it for routing (tenant and target come from the signing key); a notification
only tells the poller which feed to read now, and gives the event id (replay) and the change time (latency).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from returnbridge import exactjson

__all__ = ["Notification", "PayloadError", "parse_notification", "push_capable"]

INVENTORY, STATUS = "inventory", "status"
_MAX_ID = 128

# sap.s4.beh.<object>.v1.<Object>.<Action>.v1 -> what the object's change moves.
_SAP_TYPE = re.compile(r"^sap\.s4\.beh\.([a-z0-9]+)\.v\d+\.[A-Za-z0-9]+\.[A-Za-z]+\.v\d+$")
_SAP_OBJECTS = {
    "materialstock": (INVENTORY,),
    "materialdocument": (INVENTORY,),
    "customerreturnsdelivery": (INVENTORY, STATUS),
    "customerreturn": (STATUS,),
    "creditmemorequest": (STATUS,),
    "billingdocument": (STATUS,),
}
# SuiteScript record.Type values (lower case) a user event script is deployed on.
_NETSUITE_RECORDS = {
    "inventoryitem": (INVENTORY,),
    "inventoryadjustment": (INVENTORY,),
    "inventorytransfer": (INVENTORY,),
    "itemreceipt": (INVENTORY, STATUS),
    "returnauthorization": (STATUS,),
    "creditmemo": (STATUS,),
    "cashrefund": (STATUS,),
    "customerrefund": (STATUS,),
    "salesorder": (STATUS,),
}
_NETSUITE_EVENTS = frozenset(
    {"create", "edit", "xedit", "delete", "approve", "cancel", "reject", "pack", "ship"}
)
_ORACLE_EVENTS = {
    "Inventory On Hand Updated": (INVENTORY,),
    "Inventory Transaction Created": (INVENTORY,),
    "Receipt Created": (INVENTORY, STATUS),
    "Order Status Updated": (STATUS,),
    "Sales Order Notification": (STATUS,),
    "Receivables Credit Memo Created": (STATUS,),
    "Receivables Credit Memo Updated": (STATUS,),
}


class PayloadError(Exception):
    """A body that is not the ERP's notification shape (``bad_payload``) or names an event we do not read
    (``unsupported_event``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Notification:
    event_id: str
    kinds: tuple[str, ...]
    occurred_at: float | None  # unix seconds of the ERP-side change, when the payload says
    event: str  # the event type / record type / event name, for logs


def _field(body: dict[str, Any], name: str, where: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError("bad_payload", f"{where}: field {name!r} must be a non-empty string")
    if len(value) > _MAX_ID:
        raise PayloadError("bad_payload", f"{where}: field {name!r} is longer than {_MAX_ID} characters")
    try:
        # JSON's \ud800 escapes decode to lone surrogates, which no id can hold (the replay marks encode it).
        value.encode()
    except UnicodeEncodeError:
        raise PayloadError("bad_payload", f"{where}: field {name!r} is not valid Unicode") from None
    return value


def _time(body: dict[str, Any], name: str, where: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError("bad_payload", f"{where}: field {name!r} must be an RFC 3339 timestamp")
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError("bad_payload", f"{where}: field {name!r} is not an RFC 3339 timestamp") from None
    if stamp.tzinfo is None:
        raise PayloadError("bad_payload", f"{where}: field {name!r} needs a UTC offset")
    return stamp.timestamp()


def _sap(body: dict[str, Any]) -> Notification:
    where = "SAP business event (CloudEvents 1.0)"
    if body.get("specversion") != "1.0":
        raise PayloadError("bad_payload", f"{where}: 'specversion' must be \"1.0\" (structured mode JSON)")
    event_type = _field(body, "type", where)
    _field(body, "source", where)
    match = _SAP_TYPE.match(event_type)
    kinds = _SAP_OBJECTS.get(match.group(1)) if match else None
    if kinds is None:
        raise PayloadError(
            "unsupported_event", f"{where}: event type {event_type!r} is not one returnbridge reads"
        )
    if not isinstance(body.get("data", {}), dict):
        raise PayloadError("bad_payload", f"{where}: 'data' must be a JSON object")
    return Notification(_field(body, "id", where), kinds, _time(body, "time", where), event_type)


def _netsuite(body: dict[str, Any]) -> Notification:
    where = "NetSuite user event notification"
    record_type = _field(body, "recordType", where).lower()
    _field(body, "id", where)
    event_type = _field(body, "eventType", where).lower()
    if event_type not in _NETSUITE_EVENTS:
        raise PayloadError("bad_payload", f"{where}: eventType {event_type!r} is not a user event type")
    kinds = _NETSUITE_RECORDS.get(record_type)
    if kinds is None:
        raise PayloadError(
            "unsupported_event", f"{where}: record type {record_type!r} is not one returnbridge reads"
        )
    return Notification(
        _field(body, "notificationId", where), kinds, _time(body, "timestamp", where), record_type
    )


def _oracle(body: dict[str, Any]) -> Notification:
    where = "Oracle Fusion business event"
    name = _field(body, "eventName", where)
    if not isinstance(body.get("payload"), dict):
        raise PayloadError("bad_payload", f"{where}: 'payload' must be a JSON object")
    kinds = _ORACLE_EVENTS.get(name)
    if kinds is None:
        raise PayloadError("unsupported_event", f"{where}: event {name!r} is not one returnbridge reads")
    return Notification(_field(body, "eventId", where), kinds, _time(body, "eventTime", where), name)


_PARSERS = {"sap_s4hana": _sap, "netsuite": _netsuite, "oracle_fusion": _oracle}


def push_capable(erp: str) -> bool:
    """Whether ``erp`` (a descriptor name) can push; Oracle EBS raises no Fusion business events."""
    return erp in _PARSERS


def parse_notification(erp: str, body: bytes) -> Notification:
    """The notification of ``erp`` in ``body``.

    Raises:
        PayloadError: not JSON, not the ERP's shape, or an event returnbridge does not read.
    """
    parser = _PARSERS.get(erp)
    if parser is None:
        raise PayloadError("unsupported_event", f"ERP {erp!r} does not push notifications")
    try:
        data = exactjson.loads(body, parse_float=float, unique_keys=True)
    except exactjson.JsonError as exc:
        raise PayloadError("bad_payload", f"the body is not strict JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("bad_payload", "the body must be a JSON object")
    return parser(data)
