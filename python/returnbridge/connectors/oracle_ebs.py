"""Oracle E-Business Suite connector: RMA and credit memo PL/SQL APIs through python-oracledb, binds only."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge import exactjson
from returnbridge.connectors.base import ChangeBatch, DocumentRequest, DocumentResult
from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import ORACLE_EBS
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    ErpError,
    PermanentErpError,
    TransientErpError,
)

ERP = ORACLE_EBS.name
RMA = "OE_ORDER_PUB.PROCESS_ORDER"
CREDIT_MEMO = "AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST"
DOCUMENT_TYPES = (RMA, CREDIT_MEMO)
_STATUS_TABLES = {RMA: "OE_ORDER_HEADERS_ALL", CREDIT_MEMO: "RA_CM_REQUESTS_ALL"}

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

# PL/SQL record fields the blocks may assign, with their kinds ("n" number, int = VARCHAR2 size).
HEADER_FIELDS: dict[str, Any] = {
    "org_id": "n",
    "order_type_id": "n",
    "sold_to_org_id": "n",
    "ship_to_org_id": "n",
    "invoice_to_org_id": "n",
    "price_list_id": "n",
    "transactional_curr_code": 15,
    "cust_po_number": 50,
    "orig_sys_document_ref": 50,
    "return_reason_code": 30,
    "ordered_date": 10,
    "salesrep_id": "n",
    "order_source_id": "n",
}
LINE_FIELDS: dict[str, Any] = {
    "line_category_code": 30,
    "line_type_id": "n",
    "inventory_item_id": "n",
    "ordered_item": 2000,
    "ordered_quantity": "n",
    "order_quantity_uom": 3,
    "ship_from_org_id": "n",
    "subinventory": 10,
    "return_reason_code": 30,
    "return_context": 30,
    "return_attribute1": 240,
    "return_attribute2": 240,
    "unit_selling_price": "n",
    "unit_list_price": "n",
    "orig_sys_line_ref": 50,
    "calculate_price_flag": 1,
    # Line descriptive flexfield (OE_ORDER_LINES_ALL.CONTEXT / ATTRIBUTE1..15): tenant data such as the RMS
    # cost center and vendor code, which EBS has no standard line field for.
    "context": 30,
    **{f"attribute{i}": 240 for i in range(1, 16)},
}
LOT_SERIAL_FIELDS: dict[str, Any] = {
    "line_index": "n",
    "lot_number": 80,
    "from_serial_number": 30,
    "to_serial_number": 30,
    "quantity": "n",
}
ACTION_FIELDS: dict[str, Any] = {"request_type": 30, "entity_code": 30}
CM_PARAMS: dict[str, Any] = {
    "p_customer_trx_id": "n",
    "p_line_credit_flag": 1,
    "p_line_amount": "n",
    "p_tax_amount": "n",
    "p_freight_amount": "n",
    "p_cm_reason_code": 30,
    "p_comments": 240,
    "p_orig_trx_number": 20,
    "p_org_id": "n",
    "p_batch_source_name": 50,
    "p_skip_workflow_flag": 1,
    "p_credit_method_installments": 30,
    "p_credit_method_rules": 30,
    "p_trx_number": 20,
}
CM_LINE_FIELDS: dict[str, Any] = {
    "customer_trx_line_id": "n",
    "extended_amount": "n",
    "quantity_credited": "n",
    "price": "n",
}
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,29}$")


class OracleEbsConfig(BaseModel):
    """``kind: oracle_ebs`` connector section (needs the ``oracle`` extra: python-oracledb)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["oracle_ebs"] = "oracle_ebs"
    #: Easy Connect string ``host:port/service_name``.
    dsn: str
    user: str
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=4, ge=1, le=64)
    pool_increment: int = Field(default=1, ge=1)
    #: Seconds to wait for a free pooled session before DPY-4005.
    pool_wait_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Calls in flight at once against this EBS instance (<= pool_max makes sense).
    max_concurrency: int = Field(default=4, ge=1, le=64)
    #: Per-call database round-trip limit (python-oracledb ``call_timeout``).
    timeout_seconds: float = Field(default=60.0, gt=0)
    #: Operating unit used when the payload names none.
    default_org_id: int | None = None
    #: FND_GLOBAL.APPS_INITIALIZE(user_id, resp_id, resp_appl_id) before each call, when all three are set.
    apps_user_id: int | None = None
    apps_resp_id: int | None = None
    apps_resp_appl_id: int | None = None
    #: Add a BOOK_ORDER action request so RMAs are booked at once.
    book_orders: bool = False

    @model_validator(mode="after")
    def _check(self) -> OracleEbsConfig:
        if not (self.password or self.password_env or self.password_file):
            raise ValueError("needs one of password_env, password_file, password")
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must be <= pool_max")
        return self

    def secret(self) -> str:
        """The password, read now (ConfigError naming the source when it is missing or unreadable)."""
        return read_secret(
            self.password, self.password_env, self.password_file, name="oracle_ebs password"
        ).get_secret_value()


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


# -- block builders (the only place SQL text is made; payload values only ever become binds) ------------


class Block:
    """An anonymous PL/SQL block, its input binds and the names of its OUT binds."""

    def __init__(self, sql: str, binds: dict[str, Any], outputs: tuple[str, ...]) -> None:
        self.sql = sql
        self.binds = binds
        self.outputs = outputs


def _bind_value(kind: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    if kind == "n":
        if isinstance(value, bool):
            raise PermanentErpError(f"{where} must be a number, got {value!r}", erp=ERP, code="PAYLOAD")
        try:
            number = Decimal(str(value)) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise PermanentErpError(
                f"{where} must be a number, got {value!r}", erp=ERP, code="PAYLOAD"
            ) from None
        if not number.is_finite():
            raise PermanentErpError(f"{where} must be a finite number", erp=ERP, code="PAYLOAD")
        return number
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise PermanentErpError(
            f"{where} must be a string, got {type(value).__name__}", erp=ERP, code="PAYLOAD"
        )
    text = str(value)
    if len(text) > kind:
        raise PermanentErpError(f"{where} is longer than {kind} characters", erp=ERP, code="PAYLOAD")
    return text


def _assign(
    lines: list[str],
    binds: dict[str, Any],
    target: str,
    prefix: str,
    record: Any,
    spec: dict[str, Any],
    where: str,
) -> None:
    if not isinstance(record, dict):
        raise PermanentErpError(f"{where} must be an object", erp=ERP, code="PAYLOAD")
    for name, value in record.items():
        key = str(name).lower()
        if key not in spec or not _IDENT.match(key):
            raise PermanentErpError(
                f"{where}: unknown field {name!r}; allowed: {', '.join(sorted(spec))}",
                erp=ERP,
                code="PAYLOAD",
            )
        bind = f"{prefix}{key}"
        binds[bind] = _bind_value(spec[key], value, f"{where}.{key}")
        lines.append(f"  {target}.{key} := :{bind};")


def _init_lines(config: OracleEbsConfig, binds: dict[str, Any], org_bind: str) -> list[str]:
    lines = []
    if (
        config.apps_user_id is not None
        and config.apps_resp_id is not None
        and config.apps_resp_appl_id is not None
    ):
        binds.update(
            {
                "apps_user_id": config.apps_user_id,
                "apps_resp_id": config.apps_resp_id,
                "apps_resp_appl_id": config.apps_resp_appl_id,
            }
        )
        lines.append("  FND_GLOBAL.APPS_INITIALIZE(:apps_user_id, :apps_resp_id, :apps_resp_appl_id);")
    lines.append(f"  MO_GLOBAL.SET_POLICY_CONTEXT('S', :{org_bind});")
    return lines


_MESSAGE_LOOP = """  FOR i IN 1 .. NVL(l_msg_count, 0) LOOP
    l_messages := SUBSTR(l_messages || {pkg}.GET(p_msg_index => i, p_encoded => 'F') || CHR(10), 1, 32000);
  END LOOP;
  :x_messages := l_messages;"""


def build_rma_block(payload: dict[str, Any], reference: str, config: OracleEbsConfig) -> Block:
    """The OE_ORDER_PUB.PROCESS_ORDER block for an RMA payload (keys validated, values bound)."""
    unknown = set(payload) - {"p_header_rec", "p_line_tbl", "p_lot_serial_tbl", "p_action_request_tbl"}
    if unknown:
        raise PermanentErpError(
            f"unknown RMA payload keys: {', '.join(sorted(unknown))}", erp=ERP, code="PAYLOAD"
        )
    header = dict(payload.get("p_header_rec") or {})
    header["orig_sys_document_ref"] = reference
    if header.get("org_id") is None:
        if config.default_org_id is None:
            raise PermanentErpError(
                "p_header_rec.org_id is required (or set default_org_id)", erp=ERP, code="PAYLOAD"
            )
        header["org_id"] = config.default_org_id
    line_tbl = payload.get("p_line_tbl") or []
    lot_tbl = payload.get("p_lot_serial_tbl") or []
    actions = list(payload.get("p_action_request_tbl") or [])
    if not isinstance(line_tbl, list) or not line_tbl:
        raise PermanentErpError("p_line_tbl needs at least one line", erp=ERP, code="PAYLOAD")
    if not isinstance(lot_tbl, list) or not isinstance(actions, list):
        raise PermanentErpError(
            "p_lot_serial_tbl and p_action_request_tbl must be lists", erp=ERP, code="PAYLOAD"
        )
    if config.book_orders and not any(
        isinstance(a, dict) and a.get("request_type") == "BOOK_ORDER" for a in actions
    ):
        actions.append({"request_type": "BOOK_ORDER", "entity_code": "HEADER"})
    binds: dict[str, Any] = {}
    body: list[str] = []
    _assign(body, binds, "l_header_rec", "h_", header, HEADER_FIELDS, "p_header_rec")
    binds["policy_org_id"] = binds["h_org_id"]
    body.append("  l_header_rec.operation := OE_GLOBALS.G_OPR_CREATE;")
    for i, line in enumerate(line_tbl, start=1):
        body.append(f"  l_line_tbl({i}) := OE_ORDER_PUB.G_MISS_LINE_REC;")
        body.append(f"  l_line_tbl({i}).operation := OE_GLOBALS.G_OPR_CREATE;")
        _assign(body, binds, f"l_line_tbl({i})", f"l{i}_", line, LINE_FIELDS, f"p_line_tbl[{i - 1}]")
    for i, lot in enumerate(lot_tbl, start=1):
        body.append(f"  l_lot_serial_tbl({i}) := OE_ORDER_PUB.G_MISS_LOT_SERIAL_REC;")
        body.append(f"  l_lot_serial_tbl({i}).operation := OE_GLOBALS.G_OPR_CREATE;")
        _assign(
            body,
            binds,
            f"l_lot_serial_tbl({i})",
            f"s{i}_",
            lot,
            LOT_SERIAL_FIELDS,
            f"p_lot_serial_tbl[{i - 1}]",
        )
    for i, action in enumerate(actions, start=1):
        body.append(f"  l_action_request_tbl({i}) := OE_ORDER_PUB.G_MISS_REQUEST_REC;")
        _assign(
            body,
            binds,
            f"l_action_request_tbl({i})",
            f"a{i}_",
            action,
            ACTION_FIELDS,
            f"p_action_request_tbl[{i - 1}]",
        )
    sql = "\n".join(
        [
            "DECLARE",
            "  l_header_rec OE_ORDER_PUB.Header_Rec_Type := OE_ORDER_PUB.G_MISS_HEADER_REC;",
            "  l_line_tbl OE_ORDER_PUB.Line_Tbl_Type;",
            "  l_lot_serial_tbl OE_ORDER_PUB.Lot_Serial_Tbl_Type;",
            "  l_action_request_tbl OE_ORDER_PUB.Request_Tbl_Type;",
            "  x_header_rec OE_ORDER_PUB.Header_Rec_Type;",
            "  x_header_val_rec OE_ORDER_PUB.Header_Val_Rec_Type;",
            "  x_header_adj_tbl OE_ORDER_PUB.Header_Adj_Tbl_Type;",
            "  x_header_adj_val_tbl OE_ORDER_PUB.Header_Adj_Val_Tbl_Type;",
            "  x_header_price_att_tbl OE_ORDER_PUB.Header_Price_Att_Tbl_Type;",
            "  x_header_adj_att_tbl OE_ORDER_PUB.Header_Adj_Att_Tbl_Type;",
            "  x_header_adj_assoc_tbl OE_ORDER_PUB.Header_Adj_Assoc_Tbl_Type;",
            "  x_header_scredit_tbl OE_ORDER_PUB.Header_Scredit_Tbl_Type;",
            "  x_header_scredit_val_tbl OE_ORDER_PUB.Header_Scredit_Val_Tbl_Type;",
            "  x_line_tbl OE_ORDER_PUB.Line_Tbl_Type;",
            "  x_line_val_tbl OE_ORDER_PUB.Line_Val_Tbl_Type;",
            "  x_line_adj_tbl OE_ORDER_PUB.Line_Adj_Tbl_Type;",
            "  x_line_adj_val_tbl OE_ORDER_PUB.Line_Adj_Val_Tbl_Type;",
            "  x_line_price_att_tbl OE_ORDER_PUB.Line_Price_Att_Tbl_Type;",
            "  x_line_adj_att_tbl OE_ORDER_PUB.Line_Adj_Att_Tbl_Type;",
            "  x_line_adj_assoc_tbl OE_ORDER_PUB.Line_Adj_Assoc_Tbl_Type;",
            "  x_line_scredit_tbl OE_ORDER_PUB.Line_Scredit_Tbl_Type;",
            "  x_line_scredit_val_tbl OE_ORDER_PUB.Line_Scredit_Val_Tbl_Type;",
            "  x_lot_serial_tbl OE_ORDER_PUB.Lot_Serial_Tbl_Type;",
            "  x_lot_serial_val_tbl OE_ORDER_PUB.Lot_Serial_Val_Tbl_Type;",
            "  x_action_request_tbl OE_ORDER_PUB.Request_Tbl_Type;",
            "  l_msg_count NUMBER;",
            "  l_messages VARCHAR2(32767);",
            "BEGIN",
            *_init_lines(config, binds, "policy_org_id"),
            *body,
            "  OE_ORDER_PUB.PROCESS_ORDER(",
            "    p_api_version_number => 1.0,",
            "    p_init_msg_list => FND_API.G_TRUE,",
            "    p_return_values => FND_API.G_FALSE,",
            "    p_action_commit => FND_API.G_FALSE,",
            "    x_return_status => :x_return_status,",
            "    x_msg_count => :x_msg_count,",
            "    x_msg_data => :x_msg_data,",
            "    p_header_rec => l_header_rec,",
            "    p_line_tbl => l_line_tbl,",
            "    p_lot_serial_tbl => l_lot_serial_tbl,",
            "    p_action_request_tbl => l_action_request_tbl,",
            "    x_header_rec => x_header_rec, x_header_val_rec => x_header_val_rec,",
            "    x_header_adj_tbl => x_header_adj_tbl, x_header_adj_val_tbl => x_header_adj_val_tbl,",
            "    x_header_price_att_tbl => x_header_price_att_tbl, x_header_adj_att_tbl => x_header_adj_att_tbl,",
            "    x_header_adj_assoc_tbl => x_header_adj_assoc_tbl, x_header_scredit_tbl => x_header_scredit_tbl,",
            "    x_header_scredit_val_tbl => x_header_scredit_val_tbl, x_line_tbl => x_line_tbl,",
            "    x_line_val_tbl => x_line_val_tbl, x_line_adj_tbl => x_line_adj_tbl,",
            "    x_line_adj_val_tbl => x_line_adj_val_tbl, x_line_price_att_tbl => x_line_price_att_tbl,",
            "    x_line_adj_att_tbl => x_line_adj_att_tbl, x_line_adj_assoc_tbl => x_line_adj_assoc_tbl,",
            "    x_line_scredit_tbl => x_line_scredit_tbl, x_line_scredit_val_tbl => x_line_scredit_val_tbl,",
            "    x_lot_serial_tbl => x_lot_serial_tbl, x_lot_serial_val_tbl => x_lot_serial_val_tbl,",
            "    x_action_request_tbl => x_action_request_tbl);",
            "  l_msg_count := :x_msg_count;",
            _MESSAGE_LOOP.format(pkg="OE_MSG_PUB"),
            "  :x_header_id := x_header_rec.header_id;",
            "  :x_order_number := x_header_rec.order_number;",
            "  :x_flow_status_code := x_header_rec.flow_status_code;",
            "END;",
        ]
    )
    outputs = (
        "x_return_status",
        "x_msg_count",
        "x_msg_data",
        "x_messages",
        "x_header_id",
        "x_order_number",
        "x_flow_status_code",
    )
    return Block(sql, binds, outputs)


def build_credit_memo_block(payload: dict[str, Any], reference: str, config: OracleEbsConfig) -> Block:
    """The AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST block (reference in DFF attribute15)."""
    params = {k: v for k, v in payload.items() if k not in ("cm_line_tbl", "p_cm_line_tbl")}
    lines = payload.get("cm_line_tbl", payload.get("p_cm_line_tbl")) or []
    if not isinstance(lines, list):
        raise PermanentErpError("cm_line_tbl must be a list", erp=ERP, code="PAYLOAD")
    if params.get("p_org_id") is None:
        if config.default_org_id is None:
            raise PermanentErpError("p_org_id is required (or set default_org_id)", erp=ERP, code="PAYLOAD")
        params["p_org_id"] = config.default_org_id
    if params.get("p_customer_trx_id") is None:
        raise PermanentErpError("p_customer_trx_id is required", erp=ERP, code="PAYLOAD")
    binds: dict[str, Any] = {}
    args: list[str] = []
    for name, value in params.items():
        key = str(name).lower()
        if key not in CM_PARAMS or not _IDENT.match(key):
            raise PermanentErpError(
                f"unknown credit memo parameter {name!r}; allowed: {', '.join(sorted(CM_PARAMS))}",
                erp=ERP,
                code="PAYLOAD",
            )
        binds[key] = _bind_value(CM_PARAMS[key], value, key)
        args.append(f"    {key} => :{key},")
    body: list[str] = []
    for i, line in enumerate(lines, start=1):
        _assign(body, binds, f"l_cm_line_tbl({i})", f"c{i}_", line, CM_LINE_FIELDS, f"cm_line_tbl[{i - 1}]")
    binds["attr_ref"] = reference
    body.append("  l_attr_rec.attribute15 := :attr_ref;")
    sql = "\n".join(
        [
            "DECLARE",
            "  l_cm_line_tbl AR_CREDIT_MEMO_API_PUB.Cm_Line_Tbl_Type_Cover%TYPE;",
            "  l_attr_rec ARW_CMREQ_COVER.Pq_Attribute_Rec_Type;",
            "  l_msg_count NUMBER;",
            "  l_messages VARCHAR2(32767);",
            "BEGIN",
            *_init_lines(config, binds, "p_org_id"),
            *body,
            "  AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST(",
            "    p_api_version => 1.0,",
            "    p_init_msg_list => FND_API.G_TRUE,",
            "    p_commit => FND_API.G_FALSE,",
            *args,
            "    p_cm_line_tbl => l_cm_line_tbl,",
            "    p_attribute_rec => l_attr_rec,",
            "    x_return_status => :x_return_status,",
            "    x_msg_count => :x_msg_count,",
            "    x_msg_data => :x_msg_data,",
            "    x_request_id => :x_request_id);",
            "  l_msg_count := :x_msg_count;",
            _MESSAGE_LOOP.format(pkg="FND_MSG_PUB"),
            "END;",
        ]
    )
    return Block(sql, binds, ("x_return_status", "x_msg_count", "x_msg_data", "x_messages", "x_request_id"))


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
            "DocumentType": _STATUS_TABLES[doc_type],
            "DocumentId": _str(row.get("HEADER_ID")),
            "DocumentNumber": _str(row.get("ORDER_NUMBER")),
            "ExternalReference": _str(row.get("ORIG_SYS_DOCUMENT_REF")),
            "StatusCode": _str(row.get("FLOW_STATUS_CODE")),
            "Amount": None,
            "CurrencyCode": row.get("TRANSACTIONAL_CURR_CODE"),
            "LastUpdateDate": stamp.isoformat() if isinstance(stamp, datetime) else stamp,
        }
    return {
        "DocumentType": _STATUS_TABLES[doc_type],
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
