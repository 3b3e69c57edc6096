"""The python-oracledb stand-in answers hostile bind values as Oracle does: an ORA- error, never a crash.

Every bind of the connector's own PL/SQL blocks (OE_ORDER_PUB.PROCESS_ORDER, AR_CREDIT_MEMO_API_PUB.
CREATE_REQUEST) and lookups is replayed with hostile values. A NUMBER holds no NaN or infinity (ORA-06502,
as TO_NUMBER('NaN') fails) and nothing of 1E126 or more (ORA-01426 numeric overflow); a BOOLEAN bound to a
NUMBER field is PLS-00382 (ORA-06550). A Python exception, or a bind like 1E+999999 that made the stand-in
build a million-digit integer, is something no real database client sees.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from connectors.harnesses.oracle import rma_payload
from connectors.test_oracle_ebs import DSN, cm_payload, req
from returnbridge.connectors.oracle_ebs import CREDIT_MEMO, RMA, OracleEbsConfig, OracleEbsConnector
from returnbridge.simulators.oracle import OracleSimulator
from returnbridge.simulators.oracle_db import DatabaseError, EbsDatabase, Error, StandInDriver
from returnbridge.simulators.oracle_db_errors import Var

HOSTILE: list[Any] = [
    None, "", "NaN", "sNaN", "Infinity", "-Infinity", "1e999", "9" * 200, float("nan"), float("inf"),
    1e300, -1, "²", "\u0661", "é" * 5000, "\x00", [], {}, [1], {"a": {"b": []}}, True, False, 10**200,
    b"\xff", Decimal("NaN"), Decimal("sNaN"), Decimal("1E+999999"),
]  # fmt: skip


async def _statements(db: EbsDatabase) -> list[tuple[str, dict[str, Any]]]:
    config = OracleEbsConfig(dsn=DSN, user="apps", password="apps", timeout_seconds=5)
    connector = OracleEbsConnector(config, driver=StandInDriver(db))
    try:
        assert (await connector.create_document(req(RMA, "RMA-HOSTILE-1", rma_payload()))).created
        assert (await connector.create_document(req(CREDIT_MEMO, "CM-HOSTILE-1", cm_payload()))).created
    finally:
        await connector.aclose()
    return list(db.executed)


def _execute(driver: StandInDriver, sql: str, binds: dict[str, Any]) -> None:
    pool = driver.create_pool(user="apps", password="apps", dsn=DSN)
    conn = pool.acquire()
    try:
        conn.cursor().execute(
            sql, {k: Var(v.type, v.size) if isinstance(v, Var) else v for k, v in binds.items()}
        )
    finally:
        conn.close()


async def test_every_hostile_bind_is_an_oracle_error_not_a_crash() -> None:
    db = EbsDatabase(OracleSimulator())
    statements = await _statements(db)
    assert any("PROCESS_ORDER" in sql for sql, _ in statements)
    assert any("CREATE_REQUEST" in sql for sql, _ in statements)
    driver = StandInDriver(db)
    crashes = []
    for sql, binds in statements:
        for name in binds:
            for value in HOSTILE:
                try:
                    _execute(driver, sql, {**binds, name: value})
                except Error:
                    pass
                except Exception as exc:  # noqa: BLE001 - anything else is the defect under test
                    crashes.append((sql.split()[1], name, repr(value)[:30], type(exc).__name__))
    assert not crashes, f"{len(crashes)} hostile binds crashed the stand-in: {crashes[:5]}"


@pytest.mark.parametrize(
    ("bind", "value", "code"),
    [
        ("p_customer_trx_id", "NaN", "ORA-06502"),
        ("p_org_id", "Infinity", "ORA-06502"),
        ("c1_quantity_credited", float("nan"), "ORA-06502"),
        ("c1_extended_amount", "-Infinity", "ORA-06502"),
        ("c1_customer_trx_line_id", "1e999", "ORA-01426"),
        ("p_customer_trx_id", Decimal("1E+999999"), "ORA-01426"),
        ("p_customer_trx_id", True, "ORA-06550"),
    ],
)
async def test_a_non_number_in_a_number_field_is_the_ora_error(bind: str, value: Any, code: str) -> None:
    db = EbsDatabase(OracleSimulator())
    sql, binds = next((s, b) for s, b in await _statements(db) if "CREATE_REQUEST" in s)
    assert bind in binds, sorted(binds)
    with pytest.raises(DatabaseError) as caught:
        _execute(StandInDriver(db), sql, {**binds, bind: value})
    assert caught.value.args[0].full_code == code, str(caught.value.args[0])
    assert json.dumps(str(caught.value.args[0]))  # a plain message, as the driver gives
