"""Oracle E-Business Suite connector: RMA and credit memo PL/SQL APIs through python-oracledb, binds only."""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from returnbridge import exactjson
from returnbridge.connectors.base import (
    ChangeBatch,
    DocumentRequest,
    DocumentResult,
    ErpHolding,
    magnitude,
    magnitudes,
)
from returnbridge.connectors.oracle_ebs_blocks import build_credit_memo_block, build_rma_block
from returnbridge.connectors.oracle_ebs_config import (
    CREDIT_MEMO,
    DOCUMENT_TYPES,
    ERP,
    RMA,
    STATUS_TABLES,
    OracleEbsConfig,
)
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    ErpError,
    PermanentErpError,
    TransientErpError,
)

T = TypeVar("T")
# Lower bound for a first (cursor-less) read of a change feed.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# python-oracledb codes that mean "retry on a fresh connection" (erp-apis.md 2.3/2.4).
_TRANSIENT_DPY = frozenset({"DPY-4011", "DPY-6005", "DPY-6000", "DPY-4024", "DPY-4005", "DPY-6001"})
_TRANSIENT_ORA = frozenset(
    {60, 18, 20, 376, 1033, 1034, 1089, 1090, 1115, 3113, 3114, 12514, 12541, 12571, 12757, 16456}
)
_PERMANENT_ORA = frozenset({1, 1400, 1438, 2290, 2291, 2292, 6550, 6502, 942, 904, 1008})
_AUTH_ORA = frozenset({1017, 28000, 28001, 1045})


def classify_db_error(exc: BaseException, *, phase: str) -> ErpError:
    """Map a python-oracledb error to the exception tree, keeping its full_code and message.

    ``phase`` is "connect", "execute" or "commit": a session lost during commit leaves the outcome
    unknown (ambiguous); lost before it, the database rolled the open transaction back.
    """
    detail = exc.args[0] if exc.args else None
    full_code = str(getattr(detail, "full_code", "") or "")
    message = str(getattr(detail, "message", "") or detail or exc)
    recoverable = bool(getattr(detail, "isrecoverable", False))
    prefix, _, digits = full_code.partition("-")
    number = int(digits) if digits.isdigit() else -1
    kwargs: dict[str, Any] = {"erp": ERP, "code": full_code}
    text = f"{full_code}: {message}" if full_code and not message.startswith(full_code) else message
    if prefix == "ORA" and number in _AUTH_ORA:
        return ErpAuthError(text, **kwargs)
    transient = (
        full_code in _TRANSIENT_DPY
        or (prefix == "ORA" and number in _TRANSIENT_ORA)
        or (recoverable and not (prefix == "ORA" and (number in _PERMANENT_ORA or 20000 <= number <= 20999)))
    )
    if transient:
        cls = AmbiguousErpError if phase == "commit" else TransientErpError
        return cls(text, **kwargs)
    if phase == "commit":
        # Any other failure while committing: we cannot tell whether the commit landed.
        return AmbiguousErpError(text, **kwargs)
    return PermanentErpError(text, **kwargs)


class OracleEbsConnector:
    """EBS connector over a python-oracledb session pool (see docs/erp/oracle.md).

    Args:
        config: the connector section.
        driver: a module-like object with python-oracledb's ``create_pool``/``DatabaseError``/types; defaults
            to ``import oracledb`` (thin mode), imported on first use.
    """

    kind = "oracle_ebs"
    erp = ERP

    def __init__(self, config: OracleEbsConfig, *, driver: Any | None = None) -> None:
        self.config = config
        self._driver = driver
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._limit = asyncio.Semaphore(config.max_concurrency)
        # EBS enforces no unique key on orig_sys_document_ref: same-reference creates from this process
        # are serialized so the lookup-then-create in one session cannot race itself.
        self._ref_locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    # -- plumbing --

    def _load_driver(self) -> Any:
        if self._driver is None:
            try:
                self._driver = importlib.import_module("oracledb")
            except ImportError as exc:
                raise ConfigError(
                    "oracle_ebs needs python-oracledb: pip install 'returnbridge[oracle]'"
                ) from exc
        return self._driver

    async def _get_pool(self) -> Any:
        async with self._pool_lock:
            if self._pool is None:
                driver = self._load_driver()
                cfg = self.config
                password = cfg.secret()

                def create() -> Any:
                    return driver.create_pool(
                        user=cfg.user,
                        password=password,
                        dsn=cfg.dsn,
                        min=cfg.pool_min,
                        max=cfg.pool_max,
                        increment=cfg.pool_increment,
                        getmode=driver.POOL_GETMODE_TIMEDWAIT,
                        wait_timeout=int(cfg.pool_wait_timeout_seconds * 1000),
                    )

                try:
                    self._pool = await asyncio.to_thread(create)
                except driver.Error as exc:
                    raise classify_db_error(exc, phase="connect") from exc
            return self._pool

    async def _run(self, work: Callable[[Any, Callable[[], None]], T], deadline: float | None) -> T:
        """Run ``work(cursor, commit)`` on a pooled session in a worker thread (never on the event loop)."""
        pool = await self._get_pool()
        driver = self._load_driver()
        call_timeout = int(1000 * min(deadline or self.config.timeout_seconds, self.config.timeout_seconds))

        def in_thread() -> T:
            phase = "connect"
            try:
                conn = pool.acquire()
            except driver.Error as exc:
                raise classify_db_error(exc, phase=phase) from exc
            try:
                conn.call_timeout = max(1, call_timeout)
                phase = "execute"

                def commit() -> None:
                    nonlocal phase
                    phase = "commit"
                    conn.commit()
                    phase = "done"

                cursor = conn.cursor()
                try:
                    return work(cursor, commit)
                except driver.Error as exc:
                    raise classify_db_error(exc, phase=phase) from exc
                finally:
                    if phase == "execute":
                        _quiet_rollback(conn, driver)
            finally:
                pool.release(conn)

        async with self._limit:
            return await asyncio.to_thread(in_thread)

    # -- writes --

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        doc_type = _check_type(request.document_type)
        if not request.external_reference:
            raise PermanentErpError("external_reference is required", erp=ERP, code="PAYLOAD")
        try:
            payload = exactjson.loads(request.payload)
        except ValueError as exc:
            raise PermanentErpError(f"payload is not valid JSON: {exc}", erp=ERP, code="PAYLOAD") from exc
        if not isinstance(payload, dict):
            raise PermanentErpError("payload must be a JSON object", erp=ERP, code="PAYLOAD")
        if doc_type == RMA:
            block = build_rma_block(payload, request.external_reference, self.config)
        else:
            block = build_credit_memo_block(payload, request.external_reference, self.config)
        ref = request.external_reference

        def work(cursor: Any, commit: Callable[[], None]) -> DocumentResult:
            existing = _lookup(cursor, doc_type, ref)
            if existing is not None:
                return existing
            for attempt in (1, 2):
                outs = {name: cursor.var(self._load_driver().STRING, 32767) for name in block.outputs}
                cursor.execute(block.sql, {**block.binds, **outs})
                status = outs["x_return_status"].getvalue()
                if status == "S":
                    commit()
                    return _created(doc_type, ref, {k: v.getvalue() for k, v in outs.items()}, cursor)
                cursor.connection.rollback()
                messages = _messages(outs)
                if status == "U" and attempt == 1:
                    continue  # erp-apis 2.4: an unexpected error is retried once, then dead-lettered
                raise PermanentErpError(
                    f"{doc_type} returned x_return_status={status}: {messages}",
                    erp=ERP,
                    code=f"X_RETURN_STATUS_{status}",
                )
            raise AssertionError("unreachable")

        key = (doc_type, ref)
        lock, users = self._ref_locks.get(key, (asyncio.Lock(), 0))
        self._ref_locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._run(work, request.timeout)
        finally:
            lock, users = self._ref_locks[key]
            if users <= 1:
                del self._ref_locks[key]
            else:
                self._ref_locks[key] = (lock, users - 1)

    # -- reads --

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        doc_type = _check_type(document_type)
        return await self._run(lambda cursor, _commit: _lookup(cursor, doc_type, external_reference), None)

    async def read_documents(self, document_type: str, external_reference: str) -> list[ErpHolding]:
        """Every RMA header / credit memo request with this reference, oldest first, with its line quantities.

        An RMA carries no amount; a credit memo request its total (credits are negative: magnitudes). A request
        credited by amounts only has no lines, so its quantities are unknown (None), not empty.
        """
        doc_type = _check_type(document_type)

        def work(cursor: Any, _commit: Callable[[], None]) -> list[ErpHolding]:
            cursor.execute(
                _STATUS_SQL[doc_type]
                + f" WHERE {_REF_COLUMN[doc_type]} = :ref ORDER BY {_ID_COLUMN[doc_type]}",
                {"ref": external_reference},
            )
            holdings = []
            for row in _rows(cursor):
                record = _status_record(doc_type, row)
                key = row.get("HEADER_ID" if doc_type == RMA else "REQUEST_ID")
                cursor.execute(_LINES_SQL[doc_type], {"id": key})
                lines = [line[_QUANTITY_COLUMN[doc_type]] for line in _rows(cursor)]
                holdings.append(
                    ErpHolding(
                        document_type=doc_type,
                        document_id=record["DocumentId"],
                        external_reference=external_reference,
                        status=record["StatusCode"],
                        amount=magnitude(record["Amount"]),
                        currency=str(record["CurrencyCode"] or ""),
                        quantities=magnitudes(lines) if lines else None,
                    )
                )
            return holdings

        return await self._run(work, None)

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        doc_type = _check_type(document_type)

        def work(cursor: Any, _commit: Callable[[], None]) -> DocumentResult:
            cursor.execute(
                _STATUS_SQL[doc_type] + " WHERE " + _ID_COLUMN[doc_type] + " = :id", {"id": document_id}
            )
            rows = _rows(cursor)
            if not rows:
                raise PermanentErpError(f"{doc_type} {document_id} does not exist", erp=ERP, code="NOT_FOUND")
            return _status_result(doc_type, rows[0], created=False)

        return await self._run(work, None)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        records, next_cursor, more = await self._feed(
            _ONHAND_SQL, "last_update_date, 1, 3, 5, 6", cursor, limit
        )
        return ChangeBatch(
            records=[exactjson.dumps(r).encode() for r in records], cursor=next_cursor, has_more=more
        )

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        try:
            cursors: dict[str, str] = json.loads(cursor) if cursor else {}
        except ValueError as exc:
            raise PermanentErpError(f"invalid status cursor {cursor!r}", erp=ERP, code="CURSOR") from exc
        fetched: list[tuple[str, dict[str, Any]]] = []
        more = False
        for doc_type in DOCUMENT_TYPES:
            sql = f"{_STATUS_SQL[doc_type]} WHERE {_TS_COLUMN[doc_type]} >= :since"
            records, _, has_more = await self._feed(
                sql, f"{_TS_COLUMN[doc_type]}, 1", cursors.get(doc_type), limit
            )
            more = more or has_more
            fetched.extend((doc_type, r) for r in records)
        fetched.sort(key=lambda tr: str(tr[1]["LAST_UPDATE_DATE"]))
        taken, rest = fetched[:limit], fetched[limit:]
        out: list[bytes] = []
        for doc_type, row in taken:
            cursors[doc_type] = _advance(cursors.get(doc_type), str(row["LAST_UPDATE_DATE"]))
            out.append(exactjson.dumps(_status_record(doc_type, row)).encode())
        return ChangeBatch(
            records=out, cursor=json.dumps(cursors, sort_keys=True), has_more=more or bool(rest)
        )

    async def _feed(
        self, filtered_sql: str, order_by: str, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """Rows of ``filtered_sql`` (which filters on ``:since``) after ``cursor``.

        ``order_by`` starts with the timestamp and makes the order total, so OFFSET paging within one
        timestamp is stable.
        """
        since, skip = _split_cursor(cursor)
        limit = max(1, limit)
        sql = f"{filtered_sql} ORDER BY {order_by} OFFSET :skip ROWS FETCH NEXT :limit ROWS ONLY"
        binds = {
            "since": datetime.fromisoformat(since) if since else _EPOCH,
            "skip": skip,
            "limit": limit + 1,
        }

        def work(cur: Any, _commit: Callable[[], None]) -> list[dict[str, Any]]:
            cur.execute(sql, binds)
            return _rows(cur)

        rows = await self._run(work, None)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = cursor or ""
        for row in rows:
            stamp = row.get("LAST_UPDATE_DATE")
            row["LAST_UPDATE_DATE"] = stamp.isoformat() if isinstance(stamp, datetime) else stamp
            next_cursor = _advance(next_cursor, str(row["LAST_UPDATE_DATE"]))
        if not next_cursor:
            next_cursor = "|0"
        return rows, next_cursor, more

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close, True)


# -- fixed queries -------------------------------------------------------------------------------------

_STATUS_SQL = {
    RMA: (
        "SELECT h.header_id, h.order_number, h.orig_sys_document_ref, h.flow_status_code,"
        " h.transactional_curr_code, h.last_update_date AS last_update_date FROM oe_order_headers_all h"
    ),
    # The credit memo's number lives on its RA_CUSTOMER_TRX_ALL row (none while the request is pending);
    # the currency on the credited invoice.
    CREDIT_MEMO: (
        "SELECT r.request_id, cm.trx_number, r.attribute15, r.status, r.total_amount, inv.invoice_currency_code,"
        " r.last_update_date AS last_update_date FROM ra_cm_requests_all r"
        " JOIN ra_customer_trx_all inv ON inv.customer_trx_id = r.customer_trx_id"
        " LEFT JOIN ra_customer_trx_all cm ON cm.customer_trx_id = r.cm_customer_trx_id"
    ),
}
# Line quantities for reconciliation (RA_CM_REQUEST_LINES_ALL.QUANTITY: column name unconfirmed, erp-apis 2.2).
_LINES_SQL = {
    RMA: "SELECT l.line_id, l.ordered_quantity FROM oe_order_lines_all l WHERE l.header_id = :id"
    " ORDER BY l.line_id",
    CREDIT_MEMO: "SELECT cl.customer_trx_line_id, cl.quantity FROM ra_cm_request_lines_all cl"
    " WHERE cl.request_id = :id ORDER BY cl.customer_trx_line_id",
}
_QUANTITY_COLUMN = {RMA: "ORDERED_QUANTITY", CREDIT_MEMO: "QUANTITY"}
_ID_COLUMN = {RMA: "h.header_id", CREDIT_MEMO: "r.request_id"}
_REF_COLUMN = {RMA: "h.orig_sys_document_ref", CREDIT_MEMO: "r.attribute15"}
_TS_COLUMN = {RMA: "h.last_update_date", CREDIT_MEMO: "r.last_update_date"}
_ONHAND_SQL = (
    "SELECT moqd.inventory_item_id, msi.segment1 AS item_number, moqd.organization_id, mp.organization_code,"
    " moqd.subinventory_code, moqd.lot_number, msi.primary_uom_code,"
    " SUM(moqd.primary_transaction_quantity) AS primary_transaction_quantity,"
    " MAX(moqd.last_update_date) AS last_update_date"
    " FROM mtl_onhand_quantities_detail moqd"
    " JOIN mtl_system_items_b msi ON msi.inventory_item_id = moqd.inventory_item_id"
    " AND msi.organization_id = moqd.organization_id"
    " JOIN mtl_parameters mp ON mp.organization_id = moqd.organization_id"
    " GROUP BY moqd.inventory_item_id, msi.segment1, moqd.organization_id, mp.organization_code,"
    " moqd.subinventory_code, moqd.lot_number, msi.primary_uom_code"
    " HAVING MAX(moqd.last_update_date) >= :since"
)


def _check_type(document_type: str) -> str:
    if document_type not in DOCUMENT_TYPES:
        raise PermanentErpError(
            f"oracle_ebs cannot handle document type {document_type!r}; known: {', '.join(DOCUMENT_TYPES)}",
            erp=ERP,
            code="DOCUMENT_TYPE",
        )
    return document_type


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0].upper() for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _lookup(cursor: Any, doc_type: str, reference: str) -> DocumentResult | None:
    cursor.execute(
        _STATUS_SQL[doc_type] + f" WHERE {_REF_COLUMN[doc_type]} = :ref ORDER BY {_ID_COLUMN[doc_type]}",
        {"ref": reference},
    )
    rows = _rows(cursor)
    return _status_result(doc_type, rows[0], created=False) if rows else None


def _created(doc_type: str, reference: str, outs: dict[str, Any], cursor: Any) -> DocumentResult:
    if doc_type == RMA:
        return DocumentResult(
            document_type=doc_type,
            document_id=_str(outs.get("x_header_id")),
            external_reference=reference,
            document_number=_str(outs.get("x_order_number")),
            created=True,
            status=_str(outs.get("x_flow_status_code")),
            raw={k: v for k, v in outs.items() if k != "x_messages"},
        )
    # The request's credit memo number and status are only in RA_CM_REQUESTS_ALL: read them back.
    cursor.execute(
        _STATUS_SQL[doc_type] + f" WHERE {_ID_COLUMN[doc_type]} = :id", {"id": outs.get("x_request_id")}
    )
    rows = _rows(cursor)
    if not rows:
        return DocumentResult(doc_type, _str(outs.get("x_request_id")), reference, created=True)
    return _status_result(doc_type, rows[0], created=True)


def _status_result(doc_type: str, row: dict[str, Any], *, created: bool) -> DocumentResult:
    record = _status_record(doc_type, row)
    return DocumentResult(
        document_type=doc_type,
        document_id=record["DocumentId"],
        external_reference=record["ExternalReference"],
        document_number=record["DocumentNumber"],
        created=created,
        status=record["StatusCode"],
        raw=record,
    )


def _status_record(doc_type: str, row: dict[str, Any]) -> dict[str, Any]:
    stamp = row.get("LAST_UPDATE_DATE")
    if doc_type == RMA:
        return {
            "DocumentType": STATUS_TABLES[doc_type],
            "DocumentId": _str(row.get("HEADER_ID")),
            "DocumentNumber": _str(row.get("ORDER_NUMBER")),
            "ExternalReference": _str(row.get("ORIG_SYS_DOCUMENT_REF")),
            "StatusCode": _str(row.get("FLOW_STATUS_CODE")),
            "Amount": None,
            "CurrencyCode": row.get("TRANSACTIONAL_CURR_CODE"),
            "LastUpdateDate": stamp.isoformat() if isinstance(stamp, datetime) else stamp,
        }
    return {
        "DocumentType": STATUS_TABLES[doc_type],
        "DocumentId": _str(row.get("REQUEST_ID")),
        "DocumentNumber": _str(row.get("TRX_NUMBER")),
        "ExternalReference": _str(row.get("ATTRIBUTE15")),
        "StatusCode": _str(row.get("STATUS")),
        "Amount": row.get("TOTAL_AMOUNT"),
        "CurrencyCode": row.get("INVOICE_CURRENCY_CODE"),
        "LastUpdateDate": stamp.isoformat() if isinstance(stamp, datetime) else stamp,
    }


def _messages(outs: dict[str, Any]) -> str:
    text = outs["x_messages"].getvalue() or outs["x_msg_data"].getvalue() or "no message"
    return " | ".join(line for line in str(text).splitlines() if line.strip())


def _quiet_rollback(conn: Any, driver: Any) -> None:
    try:
        conn.rollback()
    except driver.Error:
        pass  # the session is gone; the database has rolled the transaction back already


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _split_cursor(cursor: str | None) -> tuple[str, int]:
    if not cursor:
        return "", 0
    ts, _, seen = cursor.rpartition("|")
    try:
        return ts, int(seen)
    except ValueError:
        raise PermanentErpError(f"invalid change cursor {cursor!r}", erp=ERP, code="CURSOR") from None


def _advance(cursor: str | None, ts: str) -> str:
    since, seen = _split_cursor(cursor)
    return f"{ts}|{seen + 1}" if ts == since else f"{ts}|1"


__all__ = [
    "CREDIT_MEMO",
    "DOCUMENT_TYPES",
    "ERP",
    "RMA",
    "OracleEbsConfig",
    "OracleEbsConnector",
    "classify_db_error",
]
