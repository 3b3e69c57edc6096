"""A stand-in for ``pyrfc.Connection`` over the SAP simulator's state: the BAPIs, RFC_READ_TABLE and pyrfc errors.

Same surface as pyrfc (``Connection(**logon)``, ``call(name, options=None, **params)``, ``close()``, ``alive``)
and the same exception class names and attributes, so the RFC connector cannot tell it from the real library.
Faults come from the simulator kit's active ``FaultPlan``; its ``path_pattern`` is matched against the
function module name (e.g. ``BAPI_TRANSACTION_COMMIT``).
"""

from __future__ import annotations

import functools
import inspect
import random
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from returnbridge.simulators.sap_backend import (
    CMR,
    CR,
    MATERIALS,
    ODataError,
    PreparedReturn,
    SapBackend,
    SapSimulatorConfig,
    fmt_qty,
)
from returnbridge.simulators.sap_odata_query import QueryError, date_ms, parse_filter, to_date
from returnbridge.simulators.sap_rfc_goods import (
    GM_CODE_FIELDS,
    GM_DECIMALS,
    GM_HEADER_FIELDS,
    GM_ITEM_FIELDS,
    PendingMovement,
    prepare_goods_movement,
)


class RFCError(Exception):
    """Base of pyrfc's exceptions."""


class RFCLibError(RFCError):
    """pyrfc's error carrying the SAP NW RFC SDK return code, key and ABAP message fields."""

    def __init__(
        self,
        message: str | None = None,
        code: int | None = None,
        key: str | None = None,
        msg_class: str | None = None,
        msg_type: str | None = None,
        msg_number: str | None = None,
        msg_v1: str | None = None,
        msg_v2: str | None = None,
        msg_v3: str | None = None,
        msg_v4: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.key = key
        self.msg_class = msg_class
        self.msg_type = msg_type
        self.msg_number = msg_number
        self.msg_v1 = msg_v1
        self.msg_v2 = msg_v2
        self.msg_v3 = msg_v3
        self.msg_v4 = msg_v4


class ABAPApplicationError(RFCLibError):
    pass


class ABAPRuntimeError(RFCLibError):
    pass


class LogonError(RFCLibError):
    def __init__(
        self, message: str | None = None, code: int = 2, key: str = "RFC_LOGON_FAILURE", **kw: Any
    ) -> None:
        super().__init__(message, code, key, **kw)


class CommunicationError(RFCLibError):
    pass


class ExternalRuntimeError(RFCLibError):
    pass


class ExternalApplicationError(RFCLibError):
    pass


class ExternalAuthorizationError(RFCLibError):
    pass


class RFCTypeError(RFCLibError):
    pass


# CHAR lengths of the BAPI structures we accept (BAPISDHD1, BAPISDITM, BAPIPARNR, BAPISCHDL, BAPICOND).
_HEADER_FIELDS = {
    "DOC_TYPE": 4, "SALES_ORG": 4, "DISTR_CHAN": 2, "DIVISION": 2, "SALES_GRP": 3, "SALES_OFF": 4,
    "PURCH_NO_C": 35, "PURCH_DATE": 8, "ORD_REASON": 3, "CURRENCY": 5, "REQ_DATE_H": 8, "REF_DOC": 10,
    "PRICE_DATE": 8, "PMNTTRMS": 4, "BILL_BLOCK": 2, "DLV_BLOCK": 2, "REFDOC_CAT": 1,
}  # fmt: skip
_ITEM_FIELDS = {
    "ITM_NUMBER": 6, "MATERIAL": 40, "MATERIAL_LONG": 40, "PLANT": 4, "STORE_LOC": 4, "TARGET_QTY": 0,
    "TARGET_QU": 3, "SHORT_TEXT": 40, "PROFIT_CTR": 10, "REF_DOC": 10, "REF_DOC_IT": 6, "REF_DOC_CA": 1,
    "ITEM_CATEG": 4, "REASON_REJ": 2, "BATCH": 10, "CUST_MAT35": 35,
}  # fmt: skip
_PARTNER_FIELDS = {"PARTN_ROLE": 2, "PARTN_NUMB": 10, "ITM_NUMBER": 6}
_SCHEDULE_FIELDS = {"ITM_NUMBER": 6, "SCHED_LINE": 4, "REQ_QTY": 0, "REQ_DATE": 8}
_CONDITION_FIELDS = {"ITM_NUMBER": 6, "COND_ST_NO": 3, "COND_COUNT": 2, "COND_TYPE": 4, "COND_VALUE": 0, "CURRENCY": 5, "COND_UNIT": 3, "COND_P_UNT": 0}  # fmt: skip
_DECIMALS = {"TARGET_QTY", "REQ_QTY", "COND_VALUE", "COND_P_UNT", *GM_DECIMALS}
# Packed fields of documented size P(13,3): at most 10 integer digits; a bigger value does not fit the BCD.
_BCD_13_3 = {"TARGET_QTY", "REQ_QTY", *GM_DECIMALS}
# NUMC fields: digits only (the RFC library refuses anything else in conversion).
_NUMC = {"ITM_NUMBER", "REF_DOC_IT", "SCHED_LINE"}
# RFC_READ_TABLE's tables (structures TAB512 / RFC_DB_OPT / RFC_DB_FLD).
_OPTION_FIELDS = {"TEXT": 72}
_FIELD_FIELDS = {"FIELDNAME": 30, "OFFSET": 6, "LENGTH": 6, "TYPE": 1, "FIELDTEXT": 60}

# RFC_READ_TABLE views: field -> (length, ABAP type).
_VBAK = {
    "VBELN": (10, "C"), "VBTYP": (1, "C"), "AUART": (4, "C"), "VKORG": (4, "C"), "KUNNR": (10, "C"),
    "BSTNK": (35, "C"), "NETWR": (15, "P"), "WAERK": (5, "C"), "GBSTK": (1, "C"), "AUGRU": (3, "C"),
    "ERDAT": (8, "D"), "UPD_TMSTMP": (15, "P"),
}  # fmt: skip
_VBAP = {"VBELN": (10, "C"), "POSNR": (6, "N"), "MATNR": (40, "C"), "KWMENG": (15, "P"), "VRKME": (3, "C")}
_MARD = {"MATNR": (40, "C"), "WERKS": (4, "C"), "LGORT": (4, "C"), "LABST": (13, "P"), "INSME": (13, "P"), "SPEME": (13, "P")}  # fmt: skip
_MARA = {"MATNR": (40, "C"), "MEINS": (3, "C"), "MAKTX": (40, "C")}


def _bapiret(
    msg_type: str, msg_id: str, number: str, message: str, field: str = "", v1: str = ""
) -> dict[str, Any]:
    return {
        "TYPE": msg_type, "ID": msg_id, "NUMBER": number, "MESSAGE": message, "LOG_NO": "", "LOG_MSG_NO": "000000",
        "MESSAGE_V1": v1, "MESSAGE_V2": "", "MESSAGE_V3": "", "MESSAGE_V4": "", "PARAMETER": "", "ROW": 0,
        "FIELD": field, "SYSTEM": "S4HCLNT100",
    }  # fmt: skip


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d%H%M%S")


class Connection:
    """One RFC connection (and its LUW) to the simulated system.

    Args:
        backend: the SAP simulator's backend (shared with its OData services).
        user, passwd, client: logon data, checked like the real system does; other logon keys are accepted.
    """

    def __init__(
        self, *, backend: SapBackend, user: str = "", passwd: str = "", client: str = "", **logon: Any
    ) -> None:
        self._backend = backend
        self._config: SapSimulatorConfig = backend.config
        self._fault_lock = threading.Lock()
        self._rng = random.Random()
        self._check_fault("RFC_PING", connecting=True)
        if client and client != self._config.sap_client:
            raise LogonError(
                f"Client {client} is not available in this system", msg_class="00", msg_number="002"
            )
        if user.upper() != self._config.username.upper() or passwd != self._config.password:
            raise LogonError("Name or password is incorrect (repeat logon)", msg_class="00", msg_number="152")
        self.user = self._config.username
        self._alive = True
        self._luw: list[PreparedReturn | PendingMovement] = []
        self.calls: list[str] = []

    @property
    def alive(self) -> bool:
        return self._alive

    def close(self) -> None:
        self._rollback()
        self._alive = False

    def ping(self) -> None:
        self.call("RFC_PING")

    # -- dispatch ---------------------------------------------------------------------------------------

    def call(self, func_name: str, options: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        if not self._alive:
            raise CommunicationError("connection is closed", code=13, key="RFC_INVALID_HANDLE")
        timeout = (options or {}).get("timeout")
        self.calls.append(func_name)
        drop = self._check_fault(func_name, timeout=timeout)
        handler = getattr(self, "_f_" + func_name, None)
        if handler is None:
            raise ABAPApplicationError(
                f'Function module "{func_name}" not found',
                code=5,
                key="FU_NOT_FOUND",
                msg_class="FL",
                msg_type="E",
                msg_number="046",
                msg_v1=func_name,
            )
        unknown = sorted(set(params) - _parameters(handler.__func__))
        if unknown:  # pyrfc refuses a parameter the function module does not have, before calling it
            raise ExternalRuntimeError(
                f"field '{unknown[0]}' not found", code=20, key="RFC_INVALID_PARAMETER"
            )
        with self._backend.lock:
            result = handler(**params)
        if drop:
            # Applied in the system, but the answer never comes back and the connection is gone.
            self._alive = False
            raise CommunicationError("connection to partner broken", code=1, key="RFC_COMMUNICATION_FAILURE")
        return result  # type: ignore[no-any-return]

    def _check_fault(self, func_name: str, *, timeout: float | None = None, connecting: bool = False) -> bool:
        """Applies the kit's fault plan to this call; True means "apply, then drop the answer"."""
        faults = self._backend.kit.faults
        plan = faults.plan
        with self._fault_lock:
            if plan.remaining is not None and plan.remaining <= 0:
                return False
            if plan.path_pattern and not re.search(plan.path_pattern, func_name):
                return False

            def count(kind: str) -> None:
                faults.injected[kind] = faults.injected.get(kind, 0) + 1
                if plan.remaining is not None:
                    plan.remaining -= 1

            if plan.outage:
                count("outage")
                raise CommunicationError(
                    "partner not reached (host s4h.example.com, service sapgw00)",
                    code=1,
                    key="RFC_COMMUNICATION_FAILURE",
                )
            if plan.hang and not connecting:  # the gateway still accepts logons; function calls stall
                count("hang")
                hang = True
            else:
                hang = False
                if plan.error_rate and self._rng.random() < plan.error_rate:
                    count(f"status_{self._rng.choice(plan.error_statuses)}")
                    raise CommunicationError(
                        "connection reset by gateway", code=1, key="RFC_COMMUNICATION_FAILURE"
                    )
                if (
                    not connecting
                    and plan.commit_then_drop_rate
                    and self._rng.random() < plan.commit_then_drop_rate
                ):
                    count("commit_then_drop")
                    return True
        if hang:
            # pyrfc cancels a call after options["timeout"]; without one the real call would wait for ever.
            time.sleep(min(timeout or 30.0, 30.0))
            self._alive = False
            raise CommunicationError("Timeout", code=7, key="RFC_CANCELED")
        return False

    # -- function modules -------------------------------------------------------------------------------

    def _f_RFC_PING(self) -> dict[str, Any]:
        return {}

    def _f_BAPI_CUSTOMERRETURN_CREATE(
        self,
        RETURN_HEADER_IN: dict[str, Any] | None = None,
        RETURN_HEADER_INX: dict[str, Any] | None = None,
        RETURN_ITEMS_IN: list[dict[str, Any]] | None = None,
        RETURN_ITEMS_INX: list[dict[str, Any]] | None = None,
        RETURN_PARTNERS: list[dict[str, Any]] | None = None,
        RETURN_SCHEDULES_IN: list[dict[str, Any]] | None = None,
        RETURN_CONDITIONS_IN: list[dict[str, Any]] | None = None,
        TESTRUN: str = "",
    ) -> dict[str, Any]:
        header = self._struct(RETURN_HEADER_IN or {}, _HEADER_FIELDS, "RETURN_HEADER_IN")
        header_x = self._struct(
            RETURN_HEADER_INX or {},
            {**dict.fromkeys(_HEADER_FIELDS, 1), "UPDATEFLAG": 1},
            "RETURN_HEADER_INX",
        )
        items = [
            self._struct(i, _ITEM_FIELDS, "RETURN_ITEMS_IN")
            for i in _table(RETURN_ITEMS_IN, "RETURN_ITEMS_IN")
        ]
        items_x = {
            str(int(x.get("ITM_NUMBER") or 0)): x
            for x in (
                self._struct(
                    i,
                    {**dict.fromkeys(_ITEM_FIELDS, 1), "ITM_NUMBER": 6, "UPDATEFLAG": 1},
                    "RETURN_ITEMS_INX",
                )
                for i in _table(RETURN_ITEMS_INX, "RETURN_ITEMS_INX")
            )
        }
        partners = [
            self._struct(p, _PARTNER_FIELDS, "RETURN_PARTNERS")
            for p in _table(RETURN_PARTNERS, "RETURN_PARTNERS")
        ]
        schedules = [
            self._struct(s, _SCHEDULE_FIELDS, "RETURN_SCHEDULES_IN")
            for s in _table(RETURN_SCHEDULES_IN, "RETURN_SCHEDULES_IN")
        ]
        conditions = [
            self._struct(c, _CONDITION_FIELDS, "RETURN_CONDITIONS_IN")
            for c in _table(RETURN_CONDITIONS_IN, "RETURN_CONDITIONS_IN")
        ]

        def flagged(values: dict[str, Any], flags: dict[str, Any] | None, name: str) -> bool:
            # The X-structure says which fields count; without one every filled field does.
            return (
                name in values
                and values[name] not in ("", None)
                and (flags is None or flags.get(name) == "X")
            )

        hx = header_x if RETURN_HEADER_INX is not None else None
        body: dict[str, Any] = {}
        for src, dst in (
            ("DOC_TYPE", "CustomerReturnType"), ("SALES_ORG", "SalesOrganization"), ("DISTR_CHAN", "DistributionChannel"),
            ("DIVISION", "OrganizationDivision"), ("PURCH_NO_C", "PurchaseOrderByCustomer"), ("ORD_REASON", "SDDocumentReason"),
            ("CURRENCY", "TransactionCurrency"), ("REF_DOC", "ReferenceSDDocument"), ("SALES_GRP", "SalesGroup"),
            ("SALES_OFF", "SalesOffice"),
        ):  # fmt: skip
            if flagged(header, hx, src):
                body[dst] = header[src]
        sold_to = next((p["PARTN_NUMB"] for p in partners if p.get("PARTN_ROLE") == "AG"), "")
        if sold_to:
            body["SoldToParty"] = sold_to
        body_items: list[dict[str, Any]] = []
        for item in items:
            number = str(int(item.get("ITM_NUMBER") or 0) or 10 * (len(body_items) + 1))
            ix = items_x.get(number) if RETURN_ITEMS_INX is not None else None
            out: dict[str, Any] = {"CustomerReturnItem": number}
            for src, dst in (
                ("MATERIAL", "Material"), ("MATERIAL_LONG", "Material"), ("PLANT", "ProductionPlant"),
                ("STORE_LOC", "StorageLocation"), ("TARGET_QU", "RequestedQuantityUnit"), ("SHORT_TEXT", "CustomerReturnItemText"),
                ("PROFIT_CTR", "ProfitCenter"), ("REF_DOC", "ReferenceSDDocument"), ("REF_DOC_IT", "ReferenceSDDocumentItem"),
            ):  # fmt: skip
                if flagged(item, ix, src):
                    out[dst] = item[src]
            qty = item.get("TARGET_QTY") if flagged(item, ix, "TARGET_QTY") else None
            if qty is None:
                qty = (
                    sum(
                        (
                            s["REQ_QTY"]
                            for s in schedules
                            if str(int(s.get("ITM_NUMBER") or 0)) == number and "REQ_QTY" in s
                        ),
                        Decimal(0),
                    )
                    or None
                )
            if qty is not None:
                out["RequestedQuantity"] = fmt_qty(Decimal(qty))
            prices = [
                c for c in conditions if str(int(c.get("ITM_NUMBER") or 0)) == number and c.get("COND_TYPE")
            ]
            if prices:
                out["to_PricingElement"] = [
                    {
                        "ConditionType": c["COND_TYPE"],
                        "ConditionRateValue": str(c.get("COND_VALUE", Decimal(0))),
                        "ConditionCurrency": c.get("CURRENCY", ""),
                    }
                    for c in prices
                ]
            body_items.append(out)
        body["to_Item"] = body_items
        try:
            prepared = self._backend.prepare_customer_return(body, self.user)
        except ODataError as exc:
            rows = []
            for code, message, target in exc.details or [(exc.code, exc.message, "")]:
                msg_id, _, number = code.rpartition("/") if "/" in code else ("V4", "", "000")
                rows.append(_bapiret("E", msg_id, number, message, field=target))
            rows.append(_bapiret("E", "V4", "219", "Sales document was not changed"))
            return {"SALESDOCUMENT": "", "RETURN": rows}
        if TESTRUN == "X":
            self._backend.discard(prepared)
            return {
                "SALESDOCUMENT": "",
                "RETURN": [_bapiret("S", "V1", "311", "Test run: document would be saved")],
            }
        number = prepared.document["CustomerReturn"]
        self._luw.append(prepared)
        rows = [_bapiret("S", "V4", "233", "SALES_HEADER_IN has been processed successfully")]
        rows += [
            _bapiret("W", code.split("/")[0], code.split("/")[1], text) for code, text in prepared.warnings
        ]
        rows.append(_bapiret("S", "V1", "311", f"Customer Return {number} has been saved", v1=number))
        return {"SALESDOCUMENT": number, "RETURN": rows}

    def _f_BAPI_GOODSMVT_CREATE(
        self,
        GOODSMVT_HEADER: dict[str, Any] | None = None,
        GOODSMVT_CODE: dict[str, Any] | None = None,
        GOODSMVT_ITEM: list[dict[str, Any]] | None = None,
        TESTRUN: str = "",
    ) -> dict[str, Any]:
        """A goods movement (movement types as API_MATERIAL_DOCUMENT_SRV takes them), posted at COMMIT."""
        header = self._struct(GOODSMVT_HEADER or {}, GM_HEADER_FIELDS, "GOODSMVT_HEADER")
        code = self._struct(GOODSMVT_CODE or {}, GM_CODE_FIELDS, "GOODSMVT_CODE")
        items = [
            self._struct(i, GM_ITEM_FIELDS, "GOODSMVT_ITEM") for i in _table(GOODSMVT_ITEM, "GOODSMVT_ITEM")
        ]
        pending = sum(1 for entry in self._luw if isinstance(entry, PendingMovement))
        prepared = prepare_goods_movement(self._backend.actions, header, code, items, pending)
        if isinstance(prepared, list):
            rows = [
                _bapiret(t, msg_id, number, message, field=target)
                for t, msg_id, number, message, target in prepared
            ]
            return {"MATERIALDOCUMENT": "", "MATDOCUMENTYEAR": "", "RETURN": rows}
        year = str(datetime.now(UTC).year)
        if TESTRUN == "X":
            return {"MATERIALDOCUMENT": "", "MATDOCUMENTYEAR": "", "RETURN": []}
        self._luw.append(prepared)
        return {"MATERIALDOCUMENT": prepared.number, "MATDOCUMENTYEAR": year, "RETURN": []}

    def _f_BAPI_TRANSACTION_COMMIT(self, WAIT: str = "") -> dict[str, Any]:
        for prepared in self._luw:
            if isinstance(prepared, PendingMovement):
                self._backend.actions.commit_material_document(
                    prepared.header, prepared.items, self.user, prepared.number
                )
            else:
                self._backend.commit_customer_return(prepared)
        self._luw.clear()
        return {"RETURN": _bapiret("", "", "", "")}

    def _f_BAPI_TRANSACTION_ROLLBACK(self) -> dict[str, Any]:
        self._rollback()
        return {"RETURN": _bapiret("", "", "", "")}

    def _rollback(self) -> None:
        for prepared in self._luw:
            if not isinstance(prepared, PendingMovement):
                self._backend.discard(prepared)
        self._luw.clear()

    def _f_RFC_READ_TABLE(
        self,
        QUERY_TABLE: str = "",
        DELIMITER: str = "",
        NO_DATA: str = "",
        ROWSKIPS: int = 0,
        ROWCOUNT: int = 0,
        OPTIONS: list[dict[str, str]] | None = None,
        FIELDS: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        views = {
            "VBAK": (_VBAK, self._vbak_rows),
            "VBAP": (_VBAP, self._vbap_rows),
            "MARD": (_MARD, self._mard_rows),
            "MARA": (_MARA, self._mara_rows),
        }
        _char(QUERY_TABLE, "QUERY_TABLE", 30)
        _char(DELIMITER, "DELIMITER", 1)
        _char(NO_DATA, "NO_DATA", 1)
        for name, number in (("ROWSKIPS", ROWSKIPS), ("ROWCOUNT", ROWCOUNT)):
            if isinstance(number, bool) or not isinstance(number, int) or not -(2**31) <= number < 2**31:
                raise RFCTypeError(
                    f"{name}: INT4 expected, got {number!r}", code=22, key="RFC_CONVERSION_FAILURE"
                )
        OPTIONS = [self._struct(o, _OPTION_FIELDS, "OPTIONS") for o in _table(OPTIONS, "OPTIONS")]
        FIELDS = [self._struct(f, _FIELD_FIELDS, "FIELDS") for f in _table(FIELDS, "FIELDS")]
        if QUERY_TABLE not in views:
            raise ABAPApplicationError(
                "TABLE_NOT_AVAILABLE",
                code=5,
                key="TABLE_NOT_AVAILABLE",
                msg_class="",
                msg_type="E",
                msg_number="000",
            )
        layout, rows_fn = views[QUERY_TABLE]
        names = [f.get("FIELDNAME", "") for f in FIELDS] or list(layout)
        for name in names:
            if name not in layout:
                raise ABAPApplicationError("FIELD_NOT_VALID", code=5, key="FIELD_NOT_VALID")
        where = " ".join(o.get("TEXT", "") for o in OPTIONS)
        rows = rows_fn()
        if where.strip():
            try:
                predicate = parse_filter(_abap_where_to_odata(where), set(layout))
            except QueryError as exc:
                raise ABAPApplicationError(
                    "OPTION_NOT_VALID", code=5, key="OPTION_NOT_VALID", msg_v1=str(exc)
                ) from exc
            rows = [r for r in rows if predicate(r)]
        rows = rows[ROWSKIPS:]
        if ROWCOUNT:
            rows = rows[:ROWCOUNT]
        fields_out, offset = [], 0
        for name in names:
            length, abap_type = layout[name]
            fields_out.append(
                {
                    "FIELDNAME": name,
                    "OFFSET": f"{offset:06d}",
                    "LENGTH": f"{length:06d}",
                    "TYPE": abap_type,
                    "FIELDTEXT": "",
                }
            )
            offset += length + len(DELIMITER)
        data = []
        if NO_DATA != "X":
            for row in rows:
                data.append({"WA": DELIMITER.join(str(row.get(n, "")).ljust(layout[n][0]) for n in names)})
        return {"DATA": data, "FIELDS": fields_out, "OPTIONS": OPTIONS}

    # -- table views --------------------------------------------------------------------------------------

    def _vbak_rows(self) -> list[dict[str, Any]]:
        rows = []
        docs = self._backend.state.documents
        for doc_type, vbtyp, key, type_field in (
            (CR, "H", "CustomerReturn", "CustomerReturnType"),
            (CMR, "K", "CreditMemoRequest", "CreditMemoRequestType"),
        ):
            for doc in docs[doc_type].values():
                created = date_ms(doc.get("CreationDate") or "") or 0
                changed = date_ms(doc.get("LastChangeDateTime") or "") or created
                rows.append(
                    {
                        "VBELN": doc[key], "VBTYP": vbtyp, "AUART": doc.get(type_field, ""), "VKORG": doc.get("SalesOrganization", ""),
                        "KUNNR": doc.get("SoldToParty", ""), "BSTNK": doc.get("PurchaseOrderByCustomer", ""),
                        "NETWR": doc.get("TotalNetAmount", "0.00"), "WAERK": doc.get("TransactionCurrency", ""),
                        "GBSTK": doc.get("OverallSDProcessStatus", ""), "AUGRU": doc.get("SDDocumentReason", ""),
                        "ERDAT": _stamp(created)[:8], "UPD_TMSTMP": _stamp(changed),
                    }
                )  # fmt: skip
        return sorted(rows, key=lambda r: r["VBELN"])

    def _vbap_rows(self) -> list[dict[str, Any]]:
        """Items of the customer returns and credit memo requests (their ``to_Item``)."""
        rows = []
        docs = self._backend.state.documents
        for doc_type, key, item_key in (
            (CR, "CustomerReturn", "CustomerReturnItem"),
            (CMR, "CreditMemoRequest", "CreditMemoRequestItem"),
        ):
            for doc in docs[doc_type].values():
                items = doc.get("to_Item") or []
                items = items.get("results", []) if isinstance(items, dict) else items
                for item in items:
                    rows.append(
                        {
                            "VBELN": doc[key], "POSNR": str(item.get(item_key, "")).zfill(6), "MATNR": item.get("Material", ""),
                            "KWMENG": item.get("RequestedQuantity", "0"), "VRKME": item.get("RequestedQuantityUnit", ""),
                        }
                    )  # fmt: skip
        return sorted(rows, key=lambda r: (r["VBELN"], r["POSNR"]))

    def _mard_rows(self) -> list[dict[str, Any]]:
        return [
            {"MATNR": m, "WERKS": p, "LGORT": s, "LABST": fmt_qty(q), "INSME": "0.000", "SPEME": "0.000"}
            for (m, p, s), q in sorted(self._backend.state.stock.items())
        ]

    def _mara_rows(self) -> list[dict[str, Any]]:
        return [
            {"MATNR": m, "MEINS": unit, "MAKTX": text} for m, (text, unit, _) in sorted(MATERIALS.items())
        ]

    @staticmethod
    def _struct(values: dict[str, Any], layout: dict[str, int], name: str) -> dict[str, Any]:
        """pyrfc's input conversion: unknown fields, over-long CHAR values and non-numeric BCD values fail."""
        if not isinstance(values, dict):
            raise RFCTypeError(
                f"{name}: structure expected, got {type(values).__name__}",
                code=22,
                key="RFC_CONVERSION_FAILURE",
            )
        out: dict[str, Any] = {}
        for field, value in values.items():
            if field not in layout:
                raise ExternalRuntimeError(
                    f"field '{field}' not found in {name}", code=20, key="RFC_INVALID_PARAMETER"
                )
            if field in _DECIMALS and not name.endswith("_INX"):
                try:
                    number = Decimal(str(value))
                except InvalidOperation:
                    number = Decimal("NaN")
                if isinstance(value, bool) or not number.is_finite():
                    raise RFCTypeError(
                        f"{name}-{field}: '{value}' is not a number", code=22, key="RFC_CONVERSION_FAILURE"
                    )
                if field in _BCD_13_3 and abs(number) >= 10**10:
                    raise RFCTypeError(
                        f"{name}-{field}: '{value}' does not fit P(13,3)",
                        code=22,
                        key="RFC_CONVERSION_FAILURE",
                    )
                out[field] = number
            else:
                text = str(value)
                limit = 1 if name.endswith("_INX") and field != "ITM_NUMBER" else layout[field]
                if limit and len(text) > limit:
                    raise RFCTypeError(
                        f"{name}-{field}: value '{text}' longer than {limit} characters",
                        code=22,
                        key="RFC_CONVERSION_FAILURE",
                    )
                numc = field in _NUMC and (
                    field == "ITM_NUMBER" or not name.endswith("_INX")
                )  # X-flags are CHAR1
                if numc and text and not (text.isascii() and text.isdigit()):
                    raise RFCTypeError(
                        f"{name}-{field}: '{text}' is not a NUMC value", code=22, key="RFC_CONVERSION_FAILURE"
                    )
                out[field] = text
        return out


@functools.cache
def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    """The parameter names of a function module's handler (its signature, read once)."""
    return frozenset(inspect.signature(function).parameters) - {"self"}


def _table(rows: Any, name: str) -> list[Any]:
    """A table parameter as pyrfc converts it: a list (of structures, checked by ``_struct``), or absent."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise RFCTypeError(
            f"{name}: table expected, got {type(rows).__name__}", code=22, key="RFC_CONVERSION_FAILURE"
        )
    return rows


def _char(value: Any, name: str, length: int) -> None:
    """A CHAR import parameter as pyrfc converts it: a string of at most ``length`` characters."""
    if not isinstance(value, str) or len(value) > length:
        raise RFCTypeError(
            f"{name}: CHAR{length} expected, got {value!r}"[:200], code=22, key="RFC_CONVERSION_FAILURE"
        )


_ABAP_OPS = {"EQ": "eq", "=": "eq", "NE": "ne", "<>": "ne", "GT": "gt", ">": "gt", "GE": "ge", ">=": "ge", "LT": "lt", "<": "lt", "LE": "le", "<=": "le", "AND": "and", "OR": "or", "NOT": "not"}  # fmt: skip


def _abap_where_to_odata(where: str) -> str:
    """``BSTNK EQ 'X' AND UPD_TMSTMP >= 20261127000000`` in the $filter syntax the shared parser reads."""
    parts = re.findall(r"'(?:[^']|'')*'|>=|<=|<>|[=<>()]|[^\s'=<>()]+", where)
    return " ".join(_ABAP_OPS.get(p.upper(), p) if not p.startswith("'") else p for p in parts)


__all__ = [
    "ABAPApplicationError",
    "ABAPRuntimeError",
    "CommunicationError",
    "Connection",
    "ExternalApplicationError",
    "ExternalAuthorizationError",
    "ExternalRuntimeError",
    "LogonError",
    "RFCError",
    "RFCLibError",
    "RFCTypeError",
    "to_date",
]
