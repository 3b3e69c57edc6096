"""Stand-in for python-oracledb's pool/connection/cursor surface over the Oracle simulator's EBS state.

It runs the connector's anonymous PL/SQL blocks the way the database would see them: it reads the
block's assignments (``l_line_tbl(1).ordered_quantity := :l1_ordered_quantity;``), named arguments
(``p_customer_trx_id => :p_customer_trx_id``) and output assignments (``:x_header_id :=
x_header_rec.header_id;``), then runs a simulated ``OE_ORDER_PUB.PROCESS_ORDER`` or
``AR_CREDIT_MEMO_API_PUB.CREATE_REQUEST`` against the shared state. Values only ever arrive as binds;
a literal in an assignment is refused (ORA-06550), as is a missing bind (ORA-01008) or an extra one
(DPY-4008). Writes stay in the connection's transaction until ``commit()``.

Faults use ``FaultPlan`` fields: ``latency_ms_min``/``latency_ms_max`` (per statement), ``error_rate``/``error_statuses`` (500 -> DPY-4011 dead session,
503 -> ORA-12514 listener, 429 -> ORA-00018 sessions exceeded), ``outage`` (DPY-6005 on acquire),
``hang`` (the call blocks until ``call_timeout``, then DPY-4024), ``commit_then_drop_rate`` (commit
applies, then DPY-4011), ``path_pattern`` (regex on the SQL text), ``remaining``.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.oracle import (
    CUSTOMERS,
    ITEMS,
    ORGANIZATIONS,
    SUBINVENTORIES,
    UOMS,
    OracleSimulator,
)

# -- the driver's exception and type surface ---------------------------------------------------------------


@dataclass(frozen=True)
class _Error:
    """What python-oracledb puts in ``exc.args[0]``."""

    full_code: str
    message: str
    isrecoverable: bool = False
    offset: int = 0
    context: str | None = None

    @property
    def code(self) -> int:
        digits = self.full_code.split("-", 1)[-1]
        return int(digits) if digits.isdigit() else 0

    def __str__(self) -> str:
        return f"{self.full_code}: {self.message}"


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class IntegrityError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


def _raise(cls: type[Error], full_code: str, message: str, *, recoverable: bool = False) -> NoReturn:
    raise cls(_Error(full_code, message, isrecoverable=recoverable))


class _DbType:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<DbType {self.name}>"


DB_TYPE_NUMBER = _DbType("DB_TYPE_NUMBER")
DB_TYPE_VARCHAR = _DbType("DB_TYPE_VARCHAR")
DB_TYPE_DATE = _DbType("DB_TYPE_DATE")
NUMBER = DB_TYPE_NUMBER
STRING = DB_TYPE_VARCHAR
POOL_GETMODE_WAIT = 0
POOL_GETMODE_NOWAIT = 1
POOL_GETMODE_TIMEDWAIT = 3


class Var:
    """``cursor.var(...)``: an IN/OUT bind whose value the block sets."""

    def __init__(self, typ: Any, size: int = 0) -> None:
        self.type = typ
        self.size = size
        self._value: Any = None

    def getvalue(self, pos: int = 0) -> Any:
        return self._value

    def setvalue(self, pos: int, value: Any) -> None:
        self._value = value


# -- the database -------------------------------------------------------------------------------------

ORDERS_TABLE = "OE_ORDER_HEADERS_ALL"
CM_TABLE = "RA_CM_REQUESTS_ALL"
OPERATING_UNITS = {204: "US1 Business Unit", 205: "UK1 Business Unit"}
ORDER_TYPES = {1436: "Mixed"}
LINE_TYPES = {1437: "Return (Receipt)", 1438: "Return (Credit only)"}
_HEADER_FIELDS = {
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
    "operation": 30,
}
_LINE_FIELDS = {
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
    "operation": 30,
    # Line descriptive flexfield: context and ATTRIBUTE1..15 of OE_ORDER_LINES_ALL.
    "context": 30,
    **{f"attribute{i}": 240 for i in range(1, 16)},
}
_LOT_SERIAL_FIELDS = {
    "line_index": "n",
    "lot_number": 80,
    "from_serial_number": 30,
    "to_serial_number": 30,
    "quantity": "n",
    "operation": 30,
}
_ACTION_FIELDS = {"request_type": 30, "entity_code": 30, "entity_id": "n"}
_CM_PARAMS = {
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
    "p_api_version": "n",
    "p_init_msg_list": 1,
    "p_commit": 1,
    "p_validation_level": "n",
}
_CM_LINE_FIELDS = {
    "customer_trx_line_id": "n",
    "extended_amount": "n",
    "quantity_credited": "n",
    "price": "n",
}
_ATTR_FIELDS = {"attribute_category": 30, **{f"attribute{i}": 150 for i in range(1, 16)}}


@dataclass
class Invoice:
    customer_trx_id: int
    trx_number: str
    customer: str
    org_id: int
    currency: str
    # customer_trx_line_id -> (item, quantity invoiced, unit price)
    lines: dict[int, tuple[str, Decimal, Decimal]]
    credited: dict[int, Decimal] = field(default_factory=dict)


def _seed_invoices() -> dict[int, Invoice]:
    # Invoice 10001 has enough lines for any canonical return (lines 100011.. in return-line order).
    skus = [f"SKU-{n}" for n in range(1001, 1009)]
    big = {100010 + i: (skus[(i - 1) % len(skus)], Decimal(1000), Decimal("19.99")) for i in range(1, 501)}
    return {
        10001: Invoice(10001, "INV-10001", "1001", 204, "USD", big),
        10002: Invoice(
            10002, "INV-10002", "1002", 204, "USD", {100021: ("SKU-1003", Decimal(10), Decimal("7.25"))}
        ),
    }


class EbsDatabase:
    """The EBS schema the stand-in serves, sharing documents, stock and ledger with an OracleSimulator."""

    def __init__(
        self,
        simulator: OracleSimulator | None = None,
        *,
        user: str = "APPS",
        password: str = "apps",
        service: str = "EBSDB",
    ) -> None:
        self.simulator = simulator or OracleSimulator()
        self.user = user
        self.password = password
        self.service = service
        self.lock = threading.RLock()
        self.executed: list[tuple[str, dict[str, Any]]] = []
        self.invoices = _seed_invoices()
        self.plan = FaultPlan()
        self._rng = random.Random()
        self._pattern: re.Pattern[str] | None = None
        self.unexpected_errors = 0
        self._ids = 0
        self._released = threading.Event()
        self.simulator.kit.on_reset.append(lambda _state: self._reset())

    def _reset(self) -> None:
        with self.lock:
            self.invoices = _seed_invoices()
            self.executed.clear()
            self.set_faults({})

    @property
    def state(self) -> Any:
        return self.simulator.state

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def set_faults(self, plan: dict[str, Any]) -> None:
        """Install a fault plan (same fields as the HTTP simulators' ``PUT /_sim/faults``)."""
        parsed = FaultPlan.from_json(plan)
        with self.lock:
            self.plan = parsed
            self._rng = random.Random(parsed.seed)
            self._pattern = re.compile(parsed.path_pattern) if parsed.path_pattern else None
        # Wake any call blocked by an earlier hang plan.
        self._released.set()
        self._released = threading.Event()

    def _latency(self, sql: str) -> float:
        """Seconds this statement takes (``latency_ms_min``/``max`` of the plan, for matching SQL)."""
        with self.lock:
            plan = self.plan
            if plan.latency_ms_max <= 0 or (self._pattern is not None and not self._pattern.search(sql)):
                return 0.0
            return self._rng.uniform(plan.latency_ms_min, plan.latency_ms_max) / 1000

    def _fault(self, sql: str) -> str | None:
        """The fault to inject for this statement (None = run normally); counts against ``remaining``."""
        with self.lock:
            plan = self.plan
            if plan.remaining is not None and plan.remaining <= 0:
                return None
            if self._pattern is not None and not self._pattern.search(sql):
                return None
            fault: str | None = None
            if plan.hang:
                fault = "hang"
            elif plan.outage:
                fault = "outage"
            elif plan.error_rate and self._rng.random() < plan.error_rate:
                fault = f"status_{self._rng.choice(plan.error_statuses)}"
            elif plan.commit_then_drop_rate and self._rng.random() < plan.commit_then_drop_rate:
                fault = "commit_then_drop"
            if fault is not None and plan.remaining is not None:
                plan.remaining -= 1
            return fault

    def connect_fault(self) -> None:
        with self.lock:
            outage = self.plan.outage and (self.plan.remaining is None or self.plan.remaining > 0)
        if outage:
            _raise(
                OperationalError,
                "DPY-6005",
                "cannot connect to database (CONNECTION_ID=sim).",
                recoverable=True,
            )

    def now(self) -> datetime:
        return datetime.fromisoformat(self.simulator.now())


def shared_database(simulator: OracleSimulator) -> EbsDatabase:
    """The one EbsDatabase over ``simulator`` (created on first use), so every stand-in driver sees one EBS."""
    database = getattr(simulator, "_ebs_database", None)
    if not isinstance(database, EbsDatabase):
        database = EbsDatabase(simulator)
        setattr(simulator, "_ebs_database", database)  # noqa: B010 - not a declared dataclass field
    return database


def standin_driver(simulator: OracleSimulator) -> StandInDriver:
    """A python-oracledb-shaped driver for ``OracleEbsConnector(config, driver=...)`` over the simulator."""
    return StandInDriver(shared_database(simulator))


# -- pool, connection, cursor ------------------------------------------------------------------------


class StandInDriver:
    """Module-shaped object exposing the python-oracledb names the EBS connector uses."""

    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    IntegrityError = IntegrityError
    OperationalError = OperationalError
    ProgrammingError = ProgrammingError
    NUMBER = NUMBER
    STRING = STRING
    DB_TYPE_NUMBER = DB_TYPE_NUMBER
    DB_TYPE_VARCHAR = DB_TYPE_VARCHAR
    DB_TYPE_DATE = DB_TYPE_DATE
    POOL_GETMODE_WAIT = POOL_GETMODE_WAIT
    POOL_GETMODE_NOWAIT = POOL_GETMODE_NOWAIT
    POOL_GETMODE_TIMEDWAIT = POOL_GETMODE_TIMEDWAIT

    def __init__(self, database: EbsDatabase) -> None:
        self.database = database
        self.pools: list[Pool] = []

    def create_pool(
        self,
        *,
        user: str,
        password: str,
        dsn: str,
        min: int = 1,
        max: int = 2,
        increment: int = 1,
        getmode: int = POOL_GETMODE_WAIT,
        wait_timeout: int = 0,
        **_: Any,
    ) -> Pool:
        if not isinstance(user, str) or not isinstance(password, str):
            raise TypeError("user and password must be strings")
        pool = Pool(
            self.database,
            user=user,
            password=password,
            dsn=dsn,
            max_size=max,
            getmode=getmode,
            wait_timeout=wait_timeout,
        )
        self.pools.append(pool)
        return pool


class Pool:
    def __init__(
        self,
        database: EbsDatabase,
        *,
        user: str,
        password: str,
        dsn: str,
        max_size: int,
        getmode: int,
        wait_timeout: int,
    ) -> None:
        self.database = database
        self._user = user
        self._password = password
        self.dsn = dsn
        self.max = max_size
        self.getmode = getmode
        self.wait_timeout = wait_timeout
        self.busy = 0
        self.opened = 0
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self) -> Connection:
        if self._closed:
            _raise(InterfaceError, "DPY-1002", "connection pool is not open")
        self.database.connect_fault()
        with self._cond:
            if self.busy >= self.max:
                if self.getmode == POOL_GETMODE_NOWAIT:
                    _raise(
                        OperationalError,
                        "DPY-4005",
                        "timed out waiting for the connection pool to return a connection",
                        recoverable=True,
                    )
                timeout = self.wait_timeout / 1000 if self.getmode == POOL_GETMODE_TIMEDWAIT else None
                if not self._cond.wait_for(lambda: self.busy < self.max, timeout=timeout):
                    _raise(
                        OperationalError,
                        "DPY-4005",
                        "timed out waiting for the connection pool to return a connection",
                        recoverable=True,
                    )
            self.busy += 1
        if self._user.upper() != self.database.user or self._password != self.database.password:
            self._give_back()
            _raise(DatabaseError, "ORA-01017", "invalid credential or not authorized; logon denied")
        if not self.dsn.endswith("/" + self.database.service):
            self._give_back()
            _raise(
                OperationalError,
                "DPY-6001",
                f'cannot connect to database. Service "{self.dsn}" is not registered with the listener',
            )
        self.opened += 1
        return Connection(self)

    def _give_back(self) -> None:
        with self._cond:
            self.busy -= 1
            self._cond.notify()

    def release(self, connection: Connection) -> None:
        connection._release()

    def close(self, force: bool = False) -> None:
        self._closed = True


class Connection:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.database = pool.database
        self.call_timeout = 0
        self._pending: list[Callable[[], None]] = []
        self._dead = False
        self._released = False
        self.policy_org: Decimal | None = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _check(self) -> None:
        if self._released:
            _raise(InterfaceError, "DPY-1001", "not connected to database")
        if self._dead:
            _raise(
                DatabaseError, "DPY-4011", "the database or network closed the connection", recoverable=True
            )

    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def commit(self) -> None:
        self._check()
        fault = self.database._fault("COMMIT")
        self._interfere(fault, phase="commit")
        with self.database.lock:
            for apply in self._pending:
                apply()
        self._pending.clear()
        if fault == "commit_then_drop":
            self._dead = True
            _raise(
                DatabaseError, "DPY-4011", "the database or network closed the connection", recoverable=True
            )

    def rollback(self) -> None:
        self._check()
        self._pending.clear()

    def close(self) -> None:
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._pending.clear()  # an open transaction dies with the session
            self.pool._give_back()

    def _interfere(self, fault: str | None, *, phase: str) -> None:
        if fault is None or fault == "commit_then_drop":
            return
        if fault == "hang":
            released = self.database._released
            limit = self.call_timeout / 1000 if self.call_timeout else None
            if not released.wait(timeout=limit):
                self._dead = True
                _raise(
                    DatabaseError,
                    "DPY-4024",
                    f"call timeout of {self.call_timeout} ms exceeded",
                    recoverable=True,
                )
            return
        if fault == "outage" or fault == "status_500":
            self._dead = True
            self._pending.clear()
            _raise(
                DatabaseError, "DPY-4011", "the database or network closed the connection", recoverable=True
            )
        if fault == "status_503":
            self._dead = True
            self._pending.clear()
            _raise(
                OperationalError,
                "ORA-12514",
                "Cannot connect to database. Service is not registered with the listener",
                recoverable=True,
            )
        if fault == "status_429":
            _raise(DatabaseError, "ORA-00018", "maximum number of sessions exceeded", recoverable=True)
        _raise(DatabaseError, "ORA-00600", f"internal error code, arguments: [{phase}]")


class Cursor:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.database = connection.database
        self.description: list[tuple[str, Any, None, None, None, None, bool]] | None = None
        self._rows: list[tuple[Any, ...]] = []

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._rows = []

    def var(self, typ: Any, size: int = 0, arraysize: int = 1, **_: Any) -> Var:
        return Var(typ, size)

    def execute(self, statement: str, parameters: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.connection._check()
        binds = dict(parameters or {}, **kwargs)
        with self.database.lock:
            self.database.executed.append((statement, dict(binds)))
        delay = self.database._latency(statement)
        if delay:
            time.sleep(delay)  # a blocking driver call, as the real one is
        fault = self.database._fault(statement)
        self.connection._interfere(fault, phase="execute")
        placeholders = {m.lower() for m in re.findall(r"(?<![\w:]):([A-Za-z]\w*)", _strip_strings(statement))}
        given = {k.lower() for k in binds}
        extra = sorted(given - placeholders)
        if extra:
            _raise(
                ProgrammingError,
                "DPY-4008",
                f'no bind placeholder named ":{extra[0]}" was found in the SQL text',
            )
        missing = sorted(placeholders - given)
        if missing:
            _raise(DatabaseError, "ORA-01008", f"not all variables bound (:{missing[0]})")
        binds = {k.lower(): v for k, v in binds.items()}
        text = statement.strip()
        if re.match(r"(?is)^(declare|begin)\b", text):
            self.description = None
            _run_block(self.connection, text, binds)
        elif re.match(r"(?is)^select\b", text):
            columns, rows = _run_select(self.database, text, binds)
            self.description = [(c.upper(), None, None, None, None, None, True) for c in columns]
            self._rows = rows
        else:
            _raise(DatabaseError, "ORA-00900", "invalid SQL statement")

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int = 100) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows


def _strip_strings(sql: str) -> str:
    """SQL text with string literals and comments blanked, so ':x' inside them is not a placeholder."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


# -- PL/SQL blocks -------------------------------------------------------------------------------------

_ASSIGN_IN = re.compile(
    r"(?im)^\s*(l_header_rec|l_attr_rec|l_(?:line|lot_serial|action_request|cm_line)_tbl\((\d+)\))\.(\w+)\s*:=\s*(.+?)\s*;\s*$"
)
_NAMED_BIND = re.compile(r"(?i)\b(\w+)\s*=>\s*:(\w+)")
_ASSIGN_OUT = re.compile(r"(?im)^\s*:(\w+)\s*:=\s*([\w.]+)\s*;\s*$")
_CONSTANTS = {"oe_globals.g_opr_create": "CREATE", "fnd_api.g_true": "T", "fnd_api.g_false": "F"}


def _run_block(conn: Connection, sql: str, binds: dict[str, Any]) -> None:
    policy = re.search(r"(?i)MO_GLOBAL\.SET_POLICY_CONTEXT\s*\(\s*'S'\s*,\s*:(\w+)\s*\)", sql)
    conn.policy_org = _num(binds.get(policy.group(1).lower())) if policy else None
    records: dict[str, Any] = {
        "header": {},
        "attr": {},
        "line": {},
        "lot_serial": {},
        "action_request": {},
        "cm_line": {},
    }
    for target, index, field_name, expr in _ASSIGN_IN.findall(_strip_comments(sql)):
        expr_l = expr.strip().lower()
        if expr_l.startswith(":"):
            value = binds[expr_l[1:]]
        elif expr_l in _CONSTANTS:
            value = _CONSTANTS[expr_l]
        elif re.fullmatch(r"oe_order_pub\.g_miss_\w+", expr_l):
            continue
        else:
            # Literal values in the block text would be string-built SQL: refuse like a compile error would.
            _raise(DatabaseError, "ORA-06550", f"line 1: literal {expr!r} not allowed; use a bind variable")
        kind = target.lower().split("(")[0].removeprefix("l_").removesuffix("_tbl").removesuffix("_rec")
        if index:
            records[kind].setdefault(int(index), {})[field_name.lower()] = value
        else:
            records[kind][field_name.lower()] = value
    args = {
        name.lower(): binds[bind.lower()] for name, bind in _NAMED_BIND.findall(sql) if bind.lower() in binds
    }
    if re.search(r"(?i)\bOE_ORDER_PUB\.PROCESS_ORDER\s*\(", sql):
        outputs = _process_order(conn, records, args)
    elif re.search(r"(?i)\bAR_CREDIT_MEMO_API_PUB\.CREATE_REQUEST\s*\(", sql):
        outputs = _create_cm_request(conn, records, args)
    else:
        _raise(DatabaseError, "ORA-06550", "PLS-00201: identifier must be declared")
        return
    for name, bind in _NAMED_BIND.findall(sql):
        if name.lower().startswith("x_") and isinstance(binds.get(bind.lower()), Var):
            binds[bind.lower()].setvalue(0, outputs.get(name.lower()))
    for bind, expr in _ASSIGN_OUT.findall(sql):
        if isinstance(binds.get(bind.lower()), Var):
            binds[bind.lower()].setvalue(0, outputs.get(expr.lower()))


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"--[^\n]*", "", sql)
    return re.sub(r"/\*.*?\*/", "", sql, flags=re.S)


def _num(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("boolean bind")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        _raise(
            DatabaseError,
            "ORA-06502",
            f"PL/SQL: numeric or value error: character to number conversion error ({value!r})",
        )
        raise
    return number


def _typed(record: dict[str, Any], spec: dict[str, Any], where: str) -> dict[str, Any]:
    """Check a record against its PL/SQL type: known fields, numbers, VARCHAR2 lengths."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        kind = spec.get(name)
        if kind is None:
            _raise(
                DatabaseError,
                "ORA-06550",
                f"PLS-00302: component '{name.upper()}' must be declared ({where})",
            )
        if kind == "n":
            out[name] = _num(value)
        elif value is not None:
            text = str(value)
            if len(text) > kind:
                # Assigning an over-long value to a VARCHAR2 field raises before the API runs.
                _raise(
                    DatabaseError,
                    "ORA-06502",
                    f"PL/SQL: numeric or value error: character string buffer too small ({where}.{name})",
                )
            out[name] = text
        else:
            out[name] = None
    return out


def _process_order(conn: Connection, records: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    db = conn.database
    messages: list[str] = []
    header = _typed(records["header"], _HEADER_FIELDS, "l_header_rec")
    lines = {i: _typed(r, _LINE_FIELDS, f"l_line_tbl({i})") for i, r in sorted(records["line"].items())}
    lots = {
        i: _typed(r, _LOT_SERIAL_FIELDS, f"l_lot_serial_tbl({i})")
        for i, r in sorted(records["lot_serial"].items())
    }
    actions = {
        i: _typed(r, _ACTION_FIELDS, f"l_action_request_tbl({i})")
        for i, r in sorted(records["action_request"].items())
    }
    if db.unexpected_errors > 0:
        with db.lock:
            db.unexpected_errors -= 1
        return _outputs("U", ["ORA-20001: OE_ORDER_PVT unexpected error: record locked by another session"])
    org_id = conn.policy_org
    if org_id is None or int(org_id) not in OPERATING_UNITS:
        return _outputs(
            "E",
            [
                "MO: Operating unit is not set or is not valid for this responsibility (call MO_GLOBAL.SET_POLICY_CONTEXT)."
            ],
        )
    if header.get("org_id") is not None and header["org_id"] != org_id:
        messages.append(f"The order's org_id {header['org_id']} differs from the policy context {org_id}.")
    if header.get("operation") != "CREATE":
        messages.append("Header operation must be CREATE.")
    if header.get("order_type_id") is None or int(header["order_type_id"]) not in ORDER_TYPES:
        messages.append(f"Order type {header.get('order_type_id')} is not valid.")
    customer = next(
        (
            n
            for n, c in CUSTOMERS.items()
            if header.get("sold_to_org_id") is not None
            and c["ebs_account_id"] == int(header["sold_to_org_id"])
        ),
        None,
    )
    if customer is None:
        messages.append(f"Customer (sold_to_org_id) {header.get('sold_to_org_id')} is not valid.")
    ref = header.get("orig_sys_document_ref")
    if ref:
        with db.lock:
            if any(o["ORIG_SYS_DOCUMENT_REF"] == ref for o in db.state.documents[ORDERS_TABLE].values()):
                messages.append(
                    f"An order with orig_sys_document_ref {ref} already exists (OE_ORIG_SYS_DOC_REF_EXISTS)."
                )
    if not lines:
        messages.append("The order has no lines.")
    parsed_lines: list[dict[str, Any]] = []
    for i, line in lines.items():
        where = f"Line {i}"
        if line.get("line_category_code") != "RETURN":
            messages.append(f"{where}: line_category_code must be RETURN.")
        line_type = int(line["line_type_id"]) if line.get("line_type_id") is not None else None
        if line_type not in LINE_TYPES:
            messages.append(f"{where}: line type {line_type} is not valid.")
        item = None
        if line.get("inventory_item_id") is not None:
            item = next(
                (it for it in ITEMS.values() if it.ebs_item_id == int(line["inventory_item_id"])), None
            )
        elif line.get("ordered_item"):
            item = ITEMS.get(line["ordered_item"])
        if item is None:
            messages.append(
                f"{where}: item {line.get('inventory_item_id') or line.get('ordered_item')} is not valid."
            )
        elif not item.returnable:
            messages.append(f"{where}: item {item.number} is not returnable.")
        qty = line.get("ordered_quantity")
        if qty is None or qty <= 0:
            messages.append(f"{where}: ordered_quantity must be greater than zero.")
        if line.get("order_quantity_uom") not in UOMS:
            messages.append(f"{where}: unit of measure {line.get('order_quantity_uom')} is not valid.")
        org = next(
            (
                o
                for o in ORGANIZATIONS.values()
                if line.get("ship_from_org_id") is not None and o.ebs_id == int(line["ship_from_org_id"])
            ),
            None,
        )
        if line_type == 1437 and org is None:
            messages.append(
                f"{where}: a receipt return line needs a valid receiving organization (ship_from_org_id)."
            )
        if line.get("subinventory") and line["subinventory"] not in SUBINVENTORIES:
            messages.append(f"{where}: subinventory {line['subinventory']} is not valid.")
        if line.get("return_context") == "ORDER" and not (
            line.get("return_attribute1") and line.get("return_attribute2")
        ):
            messages.append(
                f"{where}: a referenced return needs return_attribute1 (header_id) and return_attribute2 (line_id)."
            )
        parsed_lines.append({**line, "_item": item, "_org": org})
    serial_counts: dict[int, Decimal] = {}
    for i, lot in lots.items():
        index = int(lot["line_index"]) if lot.get("line_index") is not None else 0
        if index not in lines:
            messages.append(f"Lot/serial {i}: line_index {index} does not point at a line.")
            continue
        if lot.get("from_serial_number"):
            serial_counts[index] = serial_counts.get(index, Decimal(0)) + (lot.get("quantity") or Decimal(1))
    for index, count in serial_counts.items():
        if lines[index].get("ordered_quantity") is not None and count != lines[index]["ordered_quantity"]:
            messages.append(
                f"Line {index}: {count} serial numbers for quantity {lines[index]['ordered_quantity']}."
            )
    if messages:
        return _outputs("E", messages)
    header_id = 94000 + db.next_id()
    now = db.now()
    booked = any(a.get("request_type") == "BOOK_ORDER" for a in actions.values())
    order = {
        "HEADER_ID": header_id,
        "ORDER_NUMBER": str(68000 + header_id - 94000),
        "ORG_ID": int(org_id),
        "ORIG_SYS_DOCUMENT_REF": ref,
        "FLOW_STATUS_CODE": "BOOKED" if booked else "ENTERED",
        "SOLD_TO_ORG_ID": int(header["sold_to_org_id"]),
        "TRANSACTIONAL_CURR_CODE": header.get("transactional_curr_code") or "USD",
        "CUST_PO_NUMBER": header.get("cust_po_number"),
        "RETURN_REASON_CODE": header.get("return_reason_code"),
        "CREATION_DATE": now,
        "LAST_UPDATE_DATE": now,
        "LINES": [
            {
                "LINE_ID": header_id * 10 + n,
                "LINE_NUMBER": n,
                "INVENTORY_ITEM_ID": ln["_item"].ebs_item_id,
                "ORDERED_ITEM": ln["_item"].number,
                "ORDERED_QUANTITY": ln["ordered_quantity"],
                "ORDER_QUANTITY_UOM": ln["order_quantity_uom"],
                "UNIT_SELLING_PRICE": ln.get("unit_selling_price"),
                "SHIP_FROM_ORG_ID": ln["_org"].ebs_id if ln["_org"] else None,
                "SUBINVENTORY": ln.get("subinventory"),
                "RETURN_REASON_CODE": ln.get("return_reason_code"),
                "LINE_CATEGORY_CODE": "RETURN",
                "FLOW_STATUS_CODE": "AWAITING_RETURN" if booked else "ENTERED",
                "SERIALS": [lot for lot in lots.values() if lot.get("line_index") == n],
                "CONTEXT": ln.get("context"),
                **{f"ATTRIBUTE{k}": ln.get(f"attribute{k}") for k in range(1, 16)},
            }
            for n, ln in enumerate(parsed_lines, start=1)
        ],
    }

    def apply() -> None:
        db.state.put_document(ORDERS_TABLE, str(header_id), order)

    conn._pending.append(apply)
    return _outputs(
        "S",
        [],
        {
            "x_header_rec.header_id": header_id,
            "x_header_rec.order_number": order["ORDER_NUMBER"],
            "x_header_rec.flow_status_code": order["FLOW_STATUS_CODE"],
        },
    )


def _create_cm_request(conn: Connection, records: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    db = conn.database
    messages: list[str] = []
    params = _typed({k: v for k, v in args.items() if k.startswith("p_")}, _CM_PARAMS, "CREATE_REQUEST")
    cm_lines = {
        i: _typed(r, _CM_LINE_FIELDS, f"l_cm_line_tbl({i})") for i, r in sorted(records["cm_line"].items())
    }
    attrs = _typed(records["attr"], _ATTR_FIELDS, "l_attr_rec")
    if db.unexpected_errors > 0:
        with db.lock:
            db.unexpected_errors -= 1
        return _outputs("U", ["ORA-20001: AR_CREDIT_MEMO_API_PUB unexpected error"])
    org_id = conn.policy_org
    if org_id is None or int(org_id) not in OPERATING_UNITS:
        return _outputs("E", ["MO: Operating unit is not set (call MO_GLOBAL.SET_POLICY_CONTEXT)."])
    trx_id = params.get("p_customer_trx_id")
    invoice = db.invoices.get(int(trx_id)) if trx_id is not None else None
    if invoice is None:
        return _outputs("E", [f"AR_TAPI_TRANS_NOT_EXIST: Transaction {trx_id} does not exist."])
    if not params.get("p_cm_reason_code"):
        messages.append("AR_RAXTRX_INV_CM_REASON: p_cm_reason_code is required.")
    if invoice.org_id != int(org_id):
        messages.append(f"Transaction {trx_id} does not belong to operating unit {org_id}.")
    flag = params.get("p_line_credit_flag")
    if flag not in ("Y", "N", "L"):
        messages.append(f"AR_CMREQ_INVALID_LINE_CREDIT_FLAG: p_line_credit_flag {flag} is not valid.")
    ref = attrs.get("attribute15")
    if ref:
        with db.lock:
            if any(r.get("ATTRIBUTE15") == ref for r in db.state.documents[CM_TABLE].values()):
                messages.append(f"A credit memo request with reference {ref} already exists.")
    total = Decimal(0)
    credits: dict[int, Decimal] = {}
    if flag in ("Y", "L"):
        if not cm_lines:
            messages.append("AR_CMREQ_NO_LINES: a line-level credit needs cm_line_tbl lines.")
        for i, line in cm_lines.items():
            line_id = (
                int(line["customer_trx_line_id"]) if line.get("customer_trx_line_id") is not None else None
            )
            if line_id not in invoice.lines:
                messages.append(
                    f"Line {i}: customer_trx_line_id {line_id} is not a line of transaction {trx_id}."
                )
                continue
            _, invoiced, unit = invoice.lines[line_id]
            qty = line.get("quantity_credited")
            amount = line.get("extended_amount")
            price = line.get("price") if line.get("price") is not None else unit
            if qty is None or qty >= 0:
                messages.append(f"Line {i}: quantity_credited must be negative.")
                continue
            if amount is None:
                amount = qty * price
            if amount >= 0:
                messages.append(f"Line {i}: extended_amount must be negative.")
                continue
            if amount != (qty * price).quantize(amount):
                messages.append(
                    f"Line {i}: extended_amount {amount} is not quantity_credited x price ({qty * price})."
                )
            already = invoice.credited.get(line_id, Decimal(0)) + credits.get(line_id, Decimal(0))
            if already - qty > invoiced:
                messages.append(
                    f"Line {i}: crediting {-qty} would exceed the invoiced quantity {invoiced} (already credited {already})."
                )
            credits[line_id] = credits.get(line_id, Decimal(0)) - qty
            total += amount
    else:
        for name in ("p_line_amount", "p_tax_amount", "p_freight_amount"):
            value = params.get(name)
            if value is not None and value > 0:
                messages.append(f"{name} must be negative or zero.")
            total += value or Decimal(0)
        if total >= 0:
            messages.append("AR_CMREQ_NO_AMOUNT: nothing to credit.")
    if messages:
        return _outputs("E", messages)
    request_id = 5500 + db.next_id()
    now = db.now()
    complete = params.get("p_skip_workflow_flag") == "Y"
    cm_trx_id = 20000 + request_id if complete else None
    cm_number = f"CM-{cm_trx_id}" if complete else None
    request = {
        "REQUEST_ID": request_id,
        "CUSTOMER_TRX_ID": invoice.customer_trx_id,
        "CM_CUSTOMER_TRX_ID": cm_trx_id,
        "CM_TRX_NUMBER": cm_number,
        "STATUS": "COMPLETE" if complete else "PENDING_APPROVAL",
        "TOTAL_AMOUNT": total,
        "CURRENCY_CODE": invoice.currency,
        "ORG_ID": int(org_id),
        "REASON": params.get("p_cm_reason_code"),
        "COMMENTS": params.get("p_comments"),
        "ATTRIBUTE15": ref,
        "CREATION_DATE": now,
        "LAST_UPDATE_DATE": now,
        "LINES": [{**ln} for ln in cm_lines.values()],
    }

    def apply() -> None:
        for line_id, qty in credits.items():
            invoice.credited[line_id] = invoice.credited.get(line_id, Decimal(0)) + qty
        if complete:
            db.state.post(
                CM_TABLE,
                str(request_id),
                invoice.currency,
                [("4100", -total, Decimal(0)), ("1200", Decimal(0), -total)],
            )
        db.state.put_document(CM_TABLE, str(request_id), request)

    conn._pending.append(apply)
    return _outputs("S", [], {"x_request_id": request_id})


def _outputs(status: str, messages: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "x_return_status": status,
        "x_msg_count": len(messages),
        "x_msg_data": messages[0] if len(messages) == 1 else None,
        "l_messages": "\n".join(messages) or None,
        **(extra or {}),
    }


# -- SELECTs -------------------------------------------------------------------------------------------


def _select_columns(sql: str) -> list[str]:
    match = re.match(r"(?is)^select\s+(.*?)\s+from\s", sql)
    if match is None:
        _raise(DatabaseError, "ORA-00923", "FROM keyword not found where expected")
        raise AssertionError
    columns, depth, buf = [], 0, ""
    for ch in match.group(1):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            columns.append(buf)
            buf = ""
        else:
            buf += ch
    columns.append(buf)
    names = []
    for col in columns:
        alias = re.search(r"(?i)\bas\s+(\w+)\s*$", col.strip())
        names.append((alias.group(1) if alias else col.strip().split(".")[-1]).lower())
    return names


def _run_select(db: EbsDatabase, sql: str, binds: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns = _select_columns(sql)
    table = re.search(r"(?is)\bfrom\s+(\w+)", sql)
    name = table.group(1).upper() if table else ""
    with db.lock:
        if name == ORDERS_TABLE:
            rows = [_order_row(o) for o in db.state.documents[ORDERS_TABLE].values()]
            id_col = "header_id"
        elif name == CM_TABLE:
            rows = [_cm_row(r) for r in db.state.documents[CM_TABLE].values()]
            id_col = "request_id"
        elif name == "MTL_ONHAND_QUANTITIES_DETAIL":
            rows = _onhand_rows(db)
            id_col = ""
        else:
            _raise(DatabaseError, "ORA-00942", "table or view does not exist")
            raise AssertionError
    where = _strip_strings(sql.split("ORDER BY")[0].split("order by")[0])
    if "ref" in binds:
        column = "orig_sys_document_ref" if name == ORDERS_TABLE else "attribute15"
        rows = [r for r in rows if r.get(column) == binds["ref"]]
    if "id" in binds:
        rows = [r for r in rows if str(r.get(id_col)) == str(binds["id"])]
    if "since" in binds and binds["since"] is not None:
        since = binds["since"]
        op = ">=" if re.search(r"last_update_date\)?\s*>=\s*:since", where, re.I) else ">"
        rows = [
            r
            for r in rows
            if (r["last_update_date"] >= since if op == ">=" else r["last_update_date"] > since)
        ]
    if re.search(r"(?i)order\s+by\s+.*last_update_date", sql):
        rows.sort(key=lambda r: (r["last_update_date"], tuple(str(r.get(c)) for c in columns)))
    skip = int(binds.get("skip") or 0)
    limit = binds.get("limit")
    rows = rows[skip : skip + int(limit)] if limit is not None else rows[skip:]
    unknown = [c for c in columns if rows and c not in rows[0]]
    if unknown:
        _raise(DatabaseError, "ORA-00904", f'"{unknown[0].upper()}": invalid identifier')
    return columns, [tuple(r.get(c) for c in columns) for r in rows]


def _order_row(o: dict[str, Any]) -> dict[str, Any]:
    return {k.lower(): v for k, v in o.items() if k != "LINES"}


def _cm_row(r: dict[str, Any]) -> dict[str, Any]:
    row = {k.lower(): v for k, v in r.items() if k != "LINES"}
    row["trx_number"] = r.get("CM_TRX_NUMBER")
    row["invoice_currency_code"] = r.get("CURRENCY_CODE")
    return row


def _onhand_rows(db: EbsDatabase) -> list[dict[str, Any]]:
    rows = []
    for (sku, org_code, sub), qty in sorted(db.state.stock.items()):
        item = ITEMS.get(sku)
        org = ORGANIZATIONS.get(org_code)
        if item is None or org is None:
            continue
        stamp = db.simulator.stock_updated.get((sku, org_code, sub))
        rows.append(
            {
                "inventory_item_id": item.ebs_item_id,
                "item_number": sku,
                "organization_id": org.ebs_id,
                "organization_code": org_code,
                "subinventory_code": sub,
                "lot_number": None,
                "primary_uom_code": item.uom,
                "primary_transaction_quantity": qty,
                "last_update_date": datetime.fromisoformat(stamp)
                if stamp
                else datetime(2000, 1, 1, tzinfo=UTC),
            }
        )
    return rows
