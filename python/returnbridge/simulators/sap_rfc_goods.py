"""BAPI_GOODSMVT_CREATE for the RFC stand-in: a goods movement checked at once and posted at COMMIT."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from returnbridge.simulators.sap_actions import Movement, SapActions
from returnbridge.simulators.sap_rules import ODataError

GM_HEADER_FIELDS = {"PSTNG_DATE": 8, "DOC_DATE": 8, "HEADER_TXT": 25, "REF_DOC_NO": 16}
GM_CODE_FIELDS = {"GM_CODE": 2}
GM_ITEM_FIELDS = {
    "MATERIAL": 40, "MATERIAL_LONG": 40, "PLANT": 4, "STGE_LOC": 4, "MOVE_TYPE": 3, "ENTRY_QNT": 0,
    "ENTRY_UOM": 3, "MOVE_PLANT": 4, "MOVE_STLOC": 4, "COSTCENTER": 10, "MOVE_REAS": 4, "ITEM_TEXT": 50,
    "BATCH": 10, "STCK_TYPE": 1,
}  # fmt: skip
GM_DECIMALS = frozenset({"ENTRY_QNT"})
# BAPI item field -> A_MaterialDocumentItem property: the same checks as the OData service.
_ITEM_MAP = {
    "MATERIAL": "Material", "MATERIAL_LONG": "Material", "PLANT": "Plant", "STGE_LOC": "StorageLocation",
    "MOVE_TYPE": "GoodsMovementType", "ENTRY_UOM": "EntryUnit", "MOVE_PLANT": "IssuingOrReceivingPlant",
    "MOVE_STLOC": "IssuingOrReceivingStorageLoc", "COSTCENTER": "CostCenter", "MOVE_REAS": "GoodsMovementReasonCode",
    "ITEM_TEXT": "MaterialDocumentItemText", "BATCH": "Batch",
}  # fmt: skip


@dataclass
class PendingMovement:
    """A checked goods movement waiting in the LUW for BAPI_TRANSACTION_COMMIT."""

    number: str
    header: dict[str, Any]
    items: list[Movement]


def prepare_goods_movement(
    actions: SapActions,
    header: dict[str, Any],
    code: dict[str, Any],
    items: list[dict[str, Any]],
    pending: int,
) -> PendingMovement | list[tuple[str, str, str, str, str]]:
    """The LUW entry, or the BAPI's error rows ``(type, id, number, message, field)``."""
    body: dict[str, Any] = {"GoodsMovementCode": code.get("GM_CODE", "")}
    if header.get("HEADER_TXT"):
        body["MaterialDocumentHeaderText"] = header["HEADER_TXT"]
    if header.get("REF_DOC_NO"):
        body["ReferenceDocument"] = header["REF_DOC_NO"]
    lines = []
    for item in items:
        line = {_ITEM_MAP[k]: v for k, v in item.items() if k in _ITEM_MAP and v not in ("", None)}
        if "ENTRY_QNT" in item:
            line["QuantityInEntryUnit"] = str(Decimal(item["ENTRY_QNT"]).quantize(Decimal("0.001")))
        lines.append(line)
    body["to_MaterialDocumentItem"] = lines
    try:
        prepared_header, movements = actions.prepare_material_document(body)
    except ODataError as exc:
        rows = []
        for error_code, message, target in exc.details or [(exc.code, exc.message, "")]:
            msg_id, _, number = error_code.rpartition("/") if "/" in error_code else ("M7", "", "000")
            rows.append((msg_id, number, message, target))
        return [("E", *row) for row in rows]
    return PendingMovement(actions.next_material_document(pending), prepared_header, movements)
