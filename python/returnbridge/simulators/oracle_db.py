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

import re
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from returnbridge.simulators.oracle import (
    OracleSimulator,
)
from returnbridge.simulators.oracle_db_errors import (
    DB_TYPE_DATE,
    DB_TYPE_NUMBER,
    DB_TYPE_VARCHAR,
    NUMBER,
    POOL_GETMODE_NOWAIT,
    POOL_GETMODE_TIMEDWAIT,
    POOL_GETMODE_WAIT,
    STRING,
    DatabaseError,
    Error,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    Var,
    _raise,
)
from returnbridge.simulators.oracle_db_plsql import _run_block, _run_select, _strip_strings
from returnbridge.simulators.oracle_db_state import (
    CM_TABLE,
    ORDERS_TABLE,
    EbsDatabase,
    shared_database,
)


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


# The driver surface and the tables the tests and the connector's stand-in wiring use.
__all__ = [
    "CM_TABLE",
    "ORDERS_TABLE",
    "Connection",
    "Cursor",
    "DatabaseError",
    "EbsDatabase",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "OperationalError",
    "Pool",
    "ProgrammingError",
    "StandInDriver",
    "Var",
    "shared_database",
    "standin_driver",
]
