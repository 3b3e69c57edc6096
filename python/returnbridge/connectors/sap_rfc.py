"""SAP RFC connector (pyrfc): BAPI_CUSTOMERRETURN_CREATE + commit in one LUW, lookups via RFC_READ_TABLE."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge.connectors.base import (
    ChangeBatch,
    DocumentRequest,
    DocumentResult,
    ErpHolding,
    magnitude,
    magnitudes,
)
from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import SAP_S4HANA
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    ErpError,
    PermanentErpError,
    TransientErpError,
)

ERP = SAP_S4HANA.name
DOCUMENT_TYPE = "BAPI_CUSTOMERRETURN_CREATE"
_SNAPSHOT = "snapshot:"
# BCD (packed) fields of the BAPI tables: pyrfc wants Decimal, the mapper sends decimal strings.
_DECIMAL_FIELDS = frozenset({"TARGET_QTY", "REQ_QTY", "COND_VALUE", "COND_P_UNT"})
_VBAK_FIELDS = (
    "VBELN",
    "AUART",
    "VKORG",
    "KUNNR",
    "BSTNK",
    "NETWR",
    "WAERK",
    "GBSTK",
    "AUGRU",
    "ERDAT",
    "UPD_TMSTMP",
)
_TRANSIENT_ABAP_RUNTIME = frozenset(
    {"TIME_OUT", "SYSTEM_NO_ROLL", "TSV_TNEW_PAGE_ALLOC_FAILED", "DBIF_RSQL_SQL_ERROR"}
)

ConnectionFactory = Callable[[], Any]


class SapRfcConfig(BaseModel):
    """``kind: sap_rfc`` -- RFC logon data for one system and client (needs the ``sap`` extra: pyrfc)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sap_rfc"] = "sap_rfc"
    #: Application server (direct logon) ...
    ashost: str | None = None
    sysnr: str = "00"
    #: ... or message server logon (load balancing).
    mshost: str | None = None
    msserv: str | None = None
    sysid: str | None = None
    group: str | None = None
    saprouter: str | None = None
    client: str = "100"
    user: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    lang: str = "EN"
    #: Connections (and worker threads) at once: the per-system concurrency limit.
    pool_size: int = Field(default=4, ge=1, le=64)
    #: Seconds before pyrfc cancels a call.
    timeout: float = Field(default=60.0, gt=0)
    #: Further pyrfc logon parameters (``snc_partnername``, ``trace`` ...), passed as is.
    extra_params: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _target_named(self) -> SapRfcConfig:
        if not self.ashost and not self.mshost:
            raise ValueError("set ashost (direct logon) or mshost (message server)")
        if not (self.password or self.password_env or self.password_file):
            raise ValueError("needs one of password_env, password_file, password")
        return self

    def logon_params(self) -> dict[str, str]:
        """pyrfc ``Connection(**params)`` keyword arguments, the password read from its source."""
        params = {"client": self.client, "user": self.user, "lang": self.lang}
        if self.ashost:
            params.update(ashost=self.ashost, sysnr=self.sysnr)
        else:
            params.update(
                {
                    k: v
                    for k, v in (
                        ("mshost", self.mshost),
                        ("msserv", self.msserv),
                        ("sysid", self.sysid),
                        ("group", self.group),
                    )
                    if v
                }
            )
        if self.saprouter:
            params["saprouter"] = self.saprouter
        params.update(self.extra_params)
        params["passwd"] = read_secret(
            self.password, self.password_env, self.password_file, name="sap_rfc password"
        ).get_secret_value()
        return params


def _pyrfc_available() -> bool:
    try:
        return importlib.util.find_spec("pyrfc") is not None
    except ValueError:  # present in sys.modules without a spec (None = import blocked)
        return sys.modules.get("pyrfc") is not None


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify_rfc_error(exc: BaseException, *, maybe_applied: bool = False) -> ErpError:
    """Map a pyrfc exception (by class name and attributes, so pyrfc need not be importable) to our tree.

    Args:
        exc: the exception pyrfc raised.
        maybe_applied: the failing call could have committed work (BAPI_TRANSACTION_COMMIT was sent).
    """
    names = _class_names(exc)
    key = str(getattr(exc, "key", "") or "")
    msg_class, msg_number = getattr(exc, "msg_class", None), getattr(exc, "msg_number", None)
    code = f"{msg_class}/{msg_number}" if msg_class and msg_number else key or type(exc).__name__
    message = str(getattr(exc, "message", None) or exc)
    kwargs: dict[str, Any] = {"erp": ERP, "code": code}
    if names & {"LogonError", "ExternalAuthorizationError"}:
        return ErpAuthError(message, **kwargs)
    if "CommunicationError" in names or key in (
        "RFC_TIMEOUT",
        "RFC_CANCELED",
        "RFC_CLOSED",
        "RFC_COMMUNICATION_FAILURE",
    ):
        cls = AmbiguousErpError if maybe_applied else TransientErpError
        return cls(message, **kwargs)
    if "ABAPRuntimeError" in names:
        return (TransientErpError if key in _TRANSIENT_ABAP_RUNTIME else PermanentErpError)(message, **kwargs)
    if names & {"ABAPApplicationError", "ExternalRuntimeError", "ExternalApplicationError", "RFCTypeError"}:
        return PermanentErpError(message, **kwargs)
    return TransientErpError(message, **kwargs)


def _bapi_errors(rows: Any) -> list[dict[str, Any]]:
    rows = [rows] if isinstance(rows, dict) else list(rows or [])
    return [r for r in rows if isinstance(r, dict) and r.get("TYPE") in ("E", "A")]


def _to_rfc_values(value: Any, field: str = "", *, flags: bool = False) -> Any:
    """Decimal strings -> Decimal for BCD fields; JSON numbers are refused (decimals travel as strings).

    ``flags``: inside an ``*_INX`` structure, where every field is a CHAR(1) change flag.
    """
    if isinstance(value, dict):
        return {k: _to_rfc_values(v, k, flags=flags or k.endswith("_INX")) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_rfc_values(v, field, flags=flags) for v in value]
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        raise PermanentErpError(
            f"payload field {field} is a JSON number; send decimals as strings", erp=ERP, code="PAYLOAD"
        )
    if field in _DECIMAL_FIELDS and isinstance(value, str) and not flags:
        try:
            return Decimal(value)
        except ArithmeticError as exc:
            raise PermanentErpError(
                f"payload field {field}={value!r} is not a decimal", erp=ERP, code="PAYLOAD"
            ) from exc
    return value


def _where(*conditions: str) -> list[dict[str, str]]:
    """RFC_READ_TABLE OPTIONS: one condition per 72-character line."""
    lines = []
    for index, condition in enumerate(conditions):
        text = condition if index == 0 else f"AND {condition}"
        if len(text) > 72:
            raise PermanentErpError(
                f"RFC_READ_TABLE condition longer than 72 characters: {text!r}", erp=ERP, code="OPTION"
            )
        lines.append({"TEXT": text})
    return lines


def _abap_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _stamp_ms(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp() * 1000)


class SapRfcConnector:
    """The ``Connector`` for S/4HANA over RFC; blocking pyrfc calls run on a small pool of threads.

    Each worker thread holds its own connection, so a BAPI and its commit always share one session.

    Args:
        config: the ``sap_rfc`` section.
        connection_factory: builds one connection (tests pass the simulator's stand-in); None imports pyrfc.
    """

    kind = "sap_rfc"
    erp = ERP

    def __init__(self, config: SapRfcConfig, *, connection_factory: ConnectionFactory | None = None) -> None:
        self.config = config
        if connection_factory is None:
            if not _pyrfc_available():
                raise ConfigError(
                    "connector kind 'sap_rfc' needs pyrfc: install returnbridge[sap] and the SAP NW RFC SDK"
                )
            params = config.logon_params()

            def connect() -> Any:
                import pyrfc  # the optional `sap` extra; imported only when a real system is used

                return pyrfc.Connection(**params)

            connection_factory = connect
        self._factory = connection_factory
        self._pool = ThreadPoolExecutor(max_workers=config.pool_size, thread_name_prefix="sap-rfc")
        self._local = threading.local()
        self._all: list[Any] = []
        self._all_lock = threading.Lock()

    # -- threads and connections ------------------------------------------------------------------------

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or not getattr(conn, "alive", True):
            conn = self._factory()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 -- a broken connection may fail to close; it is discarded anyway
                pass

    def _options(self, deadline: float | None) -> dict[str, Any]:
        return {"timeout": int(max(1, min(deadline or self.config.timeout, self.config.timeout)))}

    async def _run(self, job: Callable[[Any], Any], *, deadline: float | None, write: bool) -> Any:
        """Run ``job(connection)`` on a pool thread; a lost connection is replaced on the next job."""

        def work() -> Any:
            try:
                conn = self._connection()
            except Exception as exc:
                raise classify_rfc_error(exc) from exc
            try:
                return job(conn)
            except ErpError:
                raise
            except Exception as exc:
                if "CommunicationError" in _class_names(exc):
                    self._drop_connection()
                raise classify_rfc_error(exc, maybe_applied=getattr(exc, "_rb_maybe_applied", False)) from exc

        loop = asyncio.get_running_loop()
        limit = (deadline or self.config.timeout) + 5.0
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool, work), timeout=limit)
        except TimeoutError as exc:
            cls = AmbiguousErpError if write else TransientErpError
            raise cls(f"RFC call did not finish within {limit:.1f}s", erp=ERP, code="DEADLINE") from exc

    # -- Connector interface ------------------------------------------------------------------------------

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        if request.document_type != DOCUMENT_TYPE:
            raise PermanentErpError(
                f"sap_rfc cannot handle document type {request.document_type!r}",
                erp=ERP,
                code="UNSUPPORTED_DOCUMENT_TYPE",
            )
        ref = request.external_reference
        if not ref or len(ref) > 35:
            raise PermanentErpError(
                "external_reference must be 1..35 characters (PURCH_NO_C)", erp=ERP, code="REFERENCE"
            )
        try:
            payload = json.loads(request.payload, parse_float=Decimal)
        except ValueError as exc:
            raise PermanentErpError(f"payload is not JSON: {exc}", erp=ERP, code="PAYLOAD") from exc
        if not isinstance(payload, dict):
            raise PermanentErpError("payload must be a JSON object", erp=ERP, code="PAYLOAD")
        params = _to_rfc_values(payload)
        header = dict(params.get("RETURN_HEADER_IN") or {})
        header["PURCH_NO_C"] = ref
        params["RETURN_HEADER_IN"] = header
        header_x = dict(params.get("RETURN_HEADER_INX") or {})
        header_x.setdefault("UPDATEFLAG", "I")
        header_x["PURCH_NO_C"] = "X"
        params["RETURN_HEADER_INX"] = header_x

        # One call per document: the worker looks up first only when an earlier attempt's outcome is unknown.
        options = self._options(request.timeout)

        def job(conn: Any) -> tuple[str, list[dict[str, Any]]]:
            result = conn.call(DOCUMENT_TYPE, options=options, **params)
            errors = _bapi_errors(result.get("RETURN"))
            if errors or not result.get("SALESDOCUMENT"):
                conn.call("BAPI_TRANSACTION_ROLLBACK", options=options)
                return "", errors or [
                    {"TYPE": "E", "ID": "V4", "NUMBER": "000", "MESSAGE": "no document number returned"}
                ]
            try:
                commit = conn.call("BAPI_TRANSACTION_COMMIT", options=options, WAIT="X")
            except Exception as exc:
                # The commit request went out: SAP may have written the document.
                exc._rb_maybe_applied = True  # type: ignore[attr-defined]
                raise
            commit_errors = _bapi_errors(commit.get("RETURN"))
            if commit_errors:
                return "", commit_errors
            return str(result["SALESDOCUMENT"]), []

        number, errors = await self._run(job, deadline=request.timeout, write=True)
        if errors:
            first = errors[0]
            code = f"{first.get('ID', '')}/{first.get('NUMBER', '')}"
            if code == "V4/115":  # refused as a duplicate: the document exists already
                found = await self.find_document(DOCUMENT_TYPE, ref, deadline=request.timeout)
                if found is not None:
                    return found
            message = "; ".join(str(e.get("MESSAGE", "")) for e in errors)
            raise PermanentErpError(message, erp=ERP, code=code)
        return DocumentResult(
            document_type=DOCUMENT_TYPE,
            document_id=number,
            external_reference=ref,
            document_number=number,
            created=True,
            status="A",
        )

    async def _read_table(
        self,
        table: str,
        fields: tuple[str, ...],
        where: list[dict[str, str]],
        *,
        skip: int = 0,
        count: int = 0,
        deadline: float | None = None,
    ) -> list[dict[str, str]]:
        options = self._options(deadline)

        def job(conn: Any) -> Any:
            return conn.call(
                "RFC_READ_TABLE",
                options=options,
                QUERY_TABLE=table,
                DELIMITER="|",
                OPTIONS=where,
                FIELDS=[{"FIELDNAME": f} for f in fields],
                ROWSKIPS=skip,
                ROWCOUNT=count,
            )

        result = await self._run(job, deadline=deadline, write=False)
        names = [f["FIELDNAME"] for f in result.get("FIELDS", [])] or list(fields)
        rows = []
        for line in result.get("DATA", []):
            values = [v.strip() for v in str(line.get("WA", "")).split("|")]
            rows.append(dict(zip(names, values, strict=False)))
        return rows

    def _vbak_result(self, row: dict[str, str], *, created: bool = False) -> DocumentResult:
        return DocumentResult(
            document_type=DOCUMENT_TYPE,
            document_id=row["VBELN"],
            external_reference=row.get("BSTNK", ""),
            document_number=row["VBELN"],
            created=created,
            status=row.get("GBSTK", ""),
            raw=dict(row),
        )

    async def find_document(
        self, document_type: str, external_reference: str, *, deadline: float | None = None
    ) -> DocumentResult | None:
        if document_type != DOCUMENT_TYPE:
            raise PermanentErpError(
                f"sap_rfc cannot look up {document_type!r}", erp=ERP, code="UNSUPPORTED_DOCUMENT_TYPE"
            )
        rows = await self._read_table(
            "VBAK",
            _VBAK_FIELDS,
            _where(f"BSTNK EQ {_abap_quote(external_reference)}", "VBTYP EQ 'H'"),
            deadline=deadline,
        )
        rows.sort(key=lambda r: r["VBELN"])
        return self._vbak_result(rows[0]) if rows else None

    async def read_documents(self, document_type: str, external_reference: str) -> list[ErpHolding]:
        """Every customer return (VBAK, type H) with this PURCH_NO_C, oldest first: net value and item quantities.

        The quantities are VBAP's KWMENG (order quantity in sales units) of each document, read in one
        RFC_READ_TABLE call per document (duplicates are rare: the first read finds one).
        """
        if document_type != DOCUMENT_TYPE:
            raise PermanentErpError(
                f"sap_rfc cannot read {document_type!r}", erp=ERP, code="UNSUPPORTED_DOCUMENT_TYPE"
            )
        rows = await self._read_table(
            "VBAK",
            _VBAK_FIELDS,
            _where(f"BSTNK EQ {_abap_quote(external_reference)}", "VBTYP EQ 'H'"),
        )
        rows.sort(key=lambda r: r["VBELN"])
        items = await asyncio.gather(
            *(
                self._read_table(
                    "VBAP", ("VBELN", "POSNR", "KWMENG"), _where(f"VBELN EQ {_abap_quote(r['VBELN'])}")
                )
                for r in rows
            )
        )
        return [
            ErpHolding(
                document_type=DOCUMENT_TYPE,
                document_id=row["VBELN"],
                external_reference=external_reference,
                status=row.get("GBSTK", ""),
                amount=magnitude(row.get("NETWR")),
                currency=row.get("WAERK", ""),
                quantities=magnitudes([item.get("KWMENG") for item in lines]),
            )
            for row, lines in zip(rows, items, strict=True)
        ]

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        if document_type != DOCUMENT_TYPE:
            raise PermanentErpError(
                f"sap_rfc cannot read {document_type!r}", erp=ERP, code="UNSUPPORTED_DOCUMENT_TYPE"
            )
        rows = await self._read_table(
            "VBAK", _VBAK_FIELDS, _where(f"VBELN EQ {_abap_quote(document_id)}", "VBTYP EQ 'H'")
        )
        if not rows:
            raise PermanentErpError(f"sales document {document_id} does not exist", erp=ERP, code="V1/302")
        return self._vbak_result(rows[0])

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Snapshot walk over MARD (no change timestamps there), in the A_MatlStkInAcctMod record shape."""
        skip = 0
        if cursor:
            if not cursor.startswith(_SNAPSHOT) or not cursor[len(_SNAPSHOT) :].isdigit():
                raise PermanentErpError(f"not a sap_rfc inventory cursor: {cursor!r}", erp=ERP, code="CURSOR")
            skip = int(cursor[len(_SNAPSHOT) :])
        rows = await self._read_table(
            "MARD", ("MATNR", "WERKS", "LGORT", "LABST", "INSME", "SPEME"), [], skip=skip, count=limit + 1
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        units = (
            {r["MATNR"]: r["MEINS"] for r in await self._read_table("MARA", ("MATNR", "MEINS"), [])}
            if rows
            else {}
        )
        records = []
        for row in rows:
            for stock_type, field in (("01", "LABST"), ("02", "INSME"), ("07", "SPEME")):
                if stock_type != "01" and Decimal(row.get(field) or "0") == 0:
                    continue
                record = {
                    "Material": row["MATNR"], "Plant": row["WERKS"], "StorageLocation": row["LGORT"], "Batch": "",
                    "Supplier": "", "Customer": "", "WBSElementInternalID": "00000000", "SDDocument": "",
                    "SDDocumentItem": "000000", "InventorySpecialStockType": "", "InventoryStockType": stock_type,
                    "MaterialBaseUnit": units.get(row["MATNR"], ""), "MatlWrhsStkQtyInMatlBaseUnit": row.get(field) or "0",
                }  # fmt: skip
                records.append(json.dumps(record).encode())
        return ChangeBatch(
            records=records, cursor=f"{_SNAPSHOT}{skip + len(rows) if has_more else 0}", has_more=has_more
        )

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Customer returns changed since the cursor (VBAK-UPD_TMSTMP, whole seconds), as OData-shaped records."""
        try:
            state = json.loads(cursor) if cursor else {}
        except ValueError as exc:
            raise PermanentErpError(
                f"not a sap_rfc status cursor: {cursor!r}", erp=ERP, code="CURSOR"
            ) from exc
        since, seen = state.get("ts"), set(state.get("ids", []))
        conditions = ["VBTYP EQ 'H'"]
        if since:
            conditions.append(f"UPD_TMSTMP GE {int(since)}")
        rows = await self._read_table("VBAK", (*_VBAK_FIELDS, "VBTYP"), _where(*conditions))
        rows.sort(key=lambda r: (r["UPD_TMSTMP"], r["VBELN"]))
        fresh = [r for r in rows if not (r["UPD_TMSTMP"] == since and r["VBELN"] in seen)]
        taken = fresh[:limit]
        records = []
        for row in taken:
            if row["UPD_TMSTMP"] != since:
                since, seen = row["UPD_TMSTMP"], set()
            seen.add(row["VBELN"])
            created = datetime.strptime(row["ERDAT"], "%Y%m%d").replace(tzinfo=UTC)
            record = {
                "DocumentType": DOCUMENT_TYPE, "SDDocument": row["VBELN"], "CustomerReturn": row["VBELN"],
                "CustomerReturnType": row["AUART"], "SalesOrganization": row["VKORG"], "SoldToParty": row["KUNNR"],
                "PurchaseOrderByCustomer": row["BSTNK"], "TransactionCurrency": row["WAERK"], "TotalNetAmount": row["NETWR"],
                "SDDocumentReason": row["AUGRU"], "OverallSDProcessStatus": row["GBSTK"],
                "CreationDate": f"/Date({int(created.timestamp() * 1000)})/",
                "LastChangeDateTime": f"/Date({_stamp_ms(row['UPD_TMSTMP'])}+0000)/",
            }  # fmt: skip
            records.append(json.dumps(record).encode())
        new_state = {"ts": since, "ids": sorted(seen)} if since else {}
        return ChangeBatch(
            records=records, cursor=json.dumps(new_state, separators=(",", ":")), has_more=len(fresh) > limit
        )

    async def aclose(self) -> None:
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 -- closing a dead connection must not stop the others closing
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)
