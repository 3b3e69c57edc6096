"""Oracle EBS connector on the python-oracledb stand-in: binds only, commit discipline, error classes."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from connectors.harnesses.oracle import rma_payload
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.oracle_ebs import (
    CREDIT_MEMO,
    RMA,
    OracleEbsConfig,
    OracleEbsConnector,
    classify_db_error,
)
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    PermanentErpError,
    TransientErpError,
)
from returnbridge.simulators import oracle_db
from returnbridge.simulators.oracle import OracleSimulator
from returnbridge.simulators.oracle_db import (
    CM_TABLE,
    ORDERS_TABLE,
    DatabaseError,
    EbsDatabase,
    IntegrityError,
    OperationalError,
    StandInDriver,
)
from returnbridge.simulators.oracle_db_errors import _Error

DSN = "127.0.0.1:1521/EBSDB"


def cm_payload(qty: str = "-2", amount: str = "-39.98", **extra: Any) -> dict[str, Any]:
    return {
        "p_customer_trx_id": 10001,
        "p_line_credit_flag": "Y",
        "p_cm_reason_code": "RETURN",
        "p_comments": "Return RMA-1001",
        "p_org_id": 204,
        "p_skip_workflow_flag": "Y",
        "cm_line_tbl": [
            {
                "customer_trx_line_id": 100011,
                "extended_amount": amount,
                "quantity_credited": qty,
                "price": "19.99",
            }
        ],
        **extra,
    }


def req(doc_type: str, ref: str, payload: dict[str, Any], timeout: float | None = None) -> DocumentRequest:
    return DocumentRequest(doc_type, ref, json.dumps(payload).encode(), timeout=timeout)


@pytest.fixture
def db() -> EbsDatabase:
    return EbsDatabase(OracleSimulator())


@pytest.fixture
async def ebs(db: EbsDatabase) -> AsyncIterator[OracleEbsConnector]:
    connector = OracleEbsConnector(
        OracleEbsConfig(dsn=DSN, user="apps", password="apps", timeout_seconds=5), driver=StandInDriver(db)
    )
    try:
        yield connector
    finally:
        db.set_faults({})
        await connector.aclose()


async def test_no_payload_value_ever_appears_in_sql(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    marker = "ZQX-7731"
    payload = rma_payload()
    payload["p_header_rec"]["cust_po_number"] = f"{marker}-PO'; DROP TABLE x; --"
    payload["p_line_tbl"][0]["return_reason_code"] = f"{marker}-RSN"
    payload["p_line_tbl"][0]["orig_sys_line_ref"] = f"{marker}-LINE"
    payload["p_lot_serial_tbl"] = [
        {
            "line_index": 1,
            "from_serial_number": f"{marker}-SN{i}",
            "to_serial_number": f"{marker}-SN{i}",
            "quantity": "1",
        }
        for i in range(7)
    ]
    payload["p_line_tbl"][0]["ordered_quantity"] = "7"
    result = await ebs.create_document(req(RMA, f"{marker}-REF", payload))
    await ebs.create_document(req(CREDIT_MEMO, f"{marker}-CM", cm_payload(p_comments=f"{marker}-COMMENT")))
    assert result.created
    assert db.executed, "statements were recorded"
    for sql, _binds in db.executed:
        assert marker not in sql, f"payload value leaked into SQL text:\n{sql}"
        assert "19.99" not in sql and "39.98" not in sql
    all_bind_values = [str(v) for _, binds in db.executed for v in binds.values()]
    assert any(marker in v for v in all_bind_values), "values travel as binds"
    stored = db.state.documents[ORDERS_TABLE][result.document_id]
    assert stored["CUST_PO_NUMBER"] == f"{marker}-PO'; DROP TABLE x; --"
    assert len(stored["LINES"][0]["SERIALS"]) == 7


async def test_line_flexfield_travels_as_binds_and_is_stored(
    ebs: OracleEbsConnector, db: EbsDatabase
) -> None:
    marker = "ZQX-4417"
    payload = rma_payload()
    flexfield = {"context": "RETURNBRIDGE", **{f"attribute{i}": f"{marker}-{i}'--" for i in range(1, 16)}}
    payload["p_line_tbl"][0].update(flexfield)
    result = await ebs.create_document(req(RMA, "RMA-91-1", payload))
    block, binds = next((s, b) for s, b in db.executed if "PROCESS_ORDER" in s)
    assert marker not in block and "RETURNBRIDGE" not in block
    assert "l_line_tbl(1).attribute15 := :l1_attribute15;" in block
    assert binds["l1_context"] == "RETURNBRIDGE" and binds["l1_attribute7"] == f"{marker}-7'--"
    line = db.state.documents[ORDERS_TABLE][result.document_id]["LINES"][0]
    assert {k.lower(): line[k] for k in ("CONTEXT", *(f"ATTRIBUTE{i}" for i in range(1, 16)))} == flexfield


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("attribute16", "x", "unknown field 'attribute16'"),
        ("attribute0", "x", "unknown field 'attribute0'"),
        ("attribute3", "A" * 241, "longer than 240"),
        ("context", "C" * 31, "longer than 30"),
    ],
)
async def test_bad_line_flexfield_is_refused_before_any_database_call(
    ebs: OracleEbsConnector, db: EbsDatabase, field: str, value: str, message: str
) -> None:
    payload = rma_payload()
    payload["p_line_tbl"][0][field] = value
    with pytest.raises(PermanentErpError, match=message):
        await ebs.create_document(req(RMA, "RMA-92-1", payload))
    assert db.executed == []


async def test_policy_context_is_set_before_the_api_call(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    await ebs.create_document(req(RMA, "RMA-90-1", rma_payload()))
    block, binds = next((s, b) for s, b in db.executed if "PROCESS_ORDER" in s)
    policy = block.index("MO_GLOBAL.SET_POLICY_CONTEXT('S', :policy_org_id)")
    assert policy < block.index("OE_ORDER_PUB.PROCESS_ORDER(")
    assert binds["policy_org_id"] == Decimal(204)
    assert "FND_GLOBAL.APPS_INITIALIZE" not in block
    assert re.search(r"p_action_commit => FND_API\.G_FALSE", block), "the connector commits, not the API"


async def test_apps_initialize_and_booking(db: EbsDatabase) -> None:
    config = OracleEbsConfig(
        dsn=DSN,
        user="apps",
        password="apps",
        apps_user_id=1318,
        apps_resp_id=21623,
        apps_resp_appl_id=660,
        book_orders=True,
    )
    connector = OracleEbsConnector(config, driver=StandInDriver(db))
    try:
        result = await connector.create_document(req(RMA, "RMA-91-1", rma_payload()))
    finally:
        await connector.aclose()
    assert result.status == "BOOKED"
    block, binds = next((s, b) for s, b in db.executed if "PROCESS_ORDER" in s)
    assert block.index("FND_GLOBAL.APPS_INITIALIZE") < block.index("MO_GLOBAL.SET_POLICY_CONTEXT")
    assert binds["apps_resp_id"] == 21623 and binds["a1_request_type"] == "BOOK_ORDER"


async def test_error_status_rolls_back_and_keeps_messages(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    payload = rma_payload(item_id=2010)
    payload["p_header_rec"]["sold_to_org_id"] = 4242
    with pytest.raises(PermanentErpError) as info:
        await ebs.create_document(req(RMA, "RMA-92-1", payload))
    assert info.value.code == "X_RETURN_STATUS_E"
    assert "not returnable" in info.value.erp_message and "4242" in info.value.erp_message
    assert db.state.documents[ORDERS_TABLE] == {}


async def test_unexpected_status_is_retried_once(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    db.unexpected_errors = 1
    result = await ebs.create_document(req(RMA, "RMA-93-1", rma_payload()))
    assert result.created and len(db.state.documents[ORDERS_TABLE]) == 1
    db.unexpected_errors = 2
    with pytest.raises(PermanentErpError) as info:
        await ebs.create_document(req(RMA, "RMA-93-2", rma_payload()))
    assert info.value.code == "X_RETURN_STATUS_U"
    assert len(db.state.documents[ORDERS_TABLE]) == 1


async def test_payload_shape_refused_before_any_database_call(
    ebs: OracleEbsConnector, db: EbsDatabase
) -> None:
    unknown = rma_payload()
    unknown["p_line_tbl"][0]["drop_table"] = "x"
    with pytest.raises(PermanentErpError, match="unknown field 'drop_table'"):
        await ebs.create_document(req(RMA, "RMA-94-1", unknown))
    too_long = rma_payload()
    too_long["p_line_tbl"][0]["subinventory"] = "S" * 11
    with pytest.raises(PermanentErpError, match="longer than 10"):
        await ebs.create_document(req(RMA, "RMA-94-1", too_long))
    not_number = rma_payload()
    not_number["p_line_tbl"][0]["ordered_quantity"] = "two"
    with pytest.raises(PermanentErpError, match="must be a number"):
        await ebs.create_document(req(RMA, "RMA-94-1", not_number))
    with pytest.raises(PermanentErpError, match="unknown RMA payload keys"):
        await ebs.create_document(req(RMA, "RMA-94-1", {**rma_payload(), "p_extra": {}}))
    assert db.executed == []


async def test_credit_memo_request_posts_and_resolves_duplicates(
    ebs: OracleEbsConnector, db: EbsDatabase
) -> None:
    memo = await ebs.create_document(req(CREDIT_MEMO, "RMA-95-3", cm_payload()))
    assert memo.created and memo.status == "COMPLETE" and memo.document_number.startswith("CM-")
    assert memo.raw["Amount"] == Decimal("-39.98")
    assert db.state.trial_balance() == {"debits": "39.98", "credits": "39.98", "balanced": True}
    again = await ebs.create_document(req(CREDIT_MEMO, "RMA-95-3", cm_payload()))
    assert (again.created, again.document_id) == (False, memo.document_id)
    assert len(db.state.documents[CM_TABLE]) == 1
    with pytest.raises(PermanentErpError, match="exceed the invoiced quantity"):
        await ebs.create_document(req(CREDIT_MEMO, "RMA-95-4", cm_payload(qty="-999", amount="-19970.01")))
    pending = await ebs.create_document(
        req(CREDIT_MEMO, "RMA-95-5", cm_payload(qty="-1", amount="-19.99", p_skip_workflow_flag="N"))
    )
    assert pending.status == "PENDING_APPROVAL" and pending.document_number == ""
    assert len(db.state.ledger) == 2, "only the completed memo posted"


@pytest.mark.parametrize(
    ("error", "phase", "expected"),
    [
        (
            DatabaseError(_Error("DPY-4011", "connection closed", isrecoverable=True)),
            "execute",
            TransientErpError,
        ),
        (
            DatabaseError(_Error("DPY-4011", "connection closed", isrecoverable=True)),
            "commit",
            AmbiguousErpError,
        ),
        (
            OperationalError(_Error("DPY-6005", "cannot connect", isrecoverable=True)),
            "connect",
            TransientErpError,
        ),
        (DatabaseError(_Error("DPY-4024", "call timeout exceeded")), "execute", TransientErpError),
        (OperationalError(_Error("DPY-4005", "pool wait timed out")), "connect", TransientErpError),
        (DatabaseError(_Error("ORA-00060", "deadlock detected")), "execute", TransientErpError),
        (
            DatabaseError(_Error("ORA-01034", "ORACLE not available", isrecoverable=True)),
            "connect",
            TransientErpError,
        ),
        (IntegrityError(_Error("ORA-00001", "unique constraint violated")), "execute", PermanentErpError),
        (IntegrityError(_Error("ORA-01400", "cannot insert NULL")), "execute", PermanentErpError),
        (IntegrityError(_Error("ORA-02291", "parent key not found")), "execute", PermanentErpError),
        (
            DatabaseError(_Error("ORA-06550", "PLS-00306: wrong number of arguments")),
            "execute",
            PermanentErpError,
        ),
        (
            DatabaseError(_Error("ORA-20001", "custom business rule", isrecoverable=True)),
            "execute",
            PermanentErpError,
        ),
        (DatabaseError(_Error("ORA-01017", "invalid credential")), "connect", ErpAuthError),
        (DatabaseError(_Error("ORA-28000", "account locked")), "connect", ErpAuthError),
        (DatabaseError(_Error("ORA-00600", "internal error")), "commit", AmbiguousErpError),
    ],
)
def test_classify_db_error(error: Exception, phase: str, expected: type[Exception]) -> None:
    classified = classify_db_error(error, phase=phase)
    assert type(classified) is expected
    full_code = error.args[0].full_code
    assert classified.code == full_code and classified.erp == "oracle_ebs"
    assert full_code in str(classified)


async def test_pool_exhaustion_is_transient(db: EbsDatabase) -> None:
    config = OracleEbsConfig(
        dsn=DSN,
        user="apps",
        password="apps",
        pool_min=1,
        pool_max=1,
        max_concurrency=2,
        pool_wait_timeout_seconds=0.2,
        timeout_seconds=2,
    )
    connector = OracleEbsConnector(config, driver=StandInDriver(db))
    db.set_faults({"hang": True, "path_pattern": "oe_order_headers_all", "remaining": 1})
    try:
        results = await asyncio.gather(
            connector.find_document(RMA, "RMA-96-1"),
            connector.find_document(RMA, "RMA-96-2"),
            return_exceptions=True,
        )
    finally:
        db.set_faults({})
        await connector.aclose()
    codes = sorted(getattr(r, "code", "") for r in results)
    assert codes == ["DPY-4005", "DPY-4024"]
    assert all(isinstance(r, TransientErpError) and not isinstance(r, AmbiguousErpError) for r in results)


async def test_blocking_calls_stay_off_the_event_loop(
    ebs: OracleEbsConnector, db: EbsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[int] = set()
    blocked = threading.Event()
    original = oracle_db.Cursor.execute

    def recording(self: oracle_db.Cursor, statement: str, parameters: dict[str, Any] | None = None) -> None:
        threads.add(threading.get_ident())
        blocked.set()
        try:
            original(self, statement, parameters)
        finally:
            blocked.clear()

    monkeypatch.setattr(oracle_db.Cursor, "execute", recording)
    db.set_faults({"hang": True, "remaining": 1})
    ticks_while_blocked = 0

    async def ticker() -> None:
        nonlocal ticks_while_blocked
        while True:
            ticks_while_blocked += blocked.is_set()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    with pytest.raises(TransientErpError) as info:
        await ebs.create_document(req(RMA, "RMA-97-1", rma_payload(), timeout=1.0))
    task.cancel()
    assert info.value.code == "DPY-4024", "the per-request deadline became the call timeout"
    # Counted only while the driver call blocks: on the loop thread there would be none, however fast the
    # machine (the former "at least 10 ticks in 0.3 s" failed on a loaded one).
    assert ticks_while_blocked >= 1, "the event loop kept running while the database call blocked"
    assert threads and threading.get_ident() not in threads


async def test_commit_failure_is_ambiguous_and_lookup_recovers(
    ebs: OracleEbsConnector, db: EbsDatabase
) -> None:
    db.set_faults({"commit_then_drop_rate": 1.0, "path_pattern": "^COMMIT$", "remaining": 1})
    with pytest.raises(AmbiguousErpError):
        await ebs.create_document(req(RMA, "RMA-98-1", rma_payload()))
    found = await ebs.find_document(RMA, "RMA-98-1")
    assert found is not None and found.created is False
    assert len(db.state.documents[ORDERS_TABLE]) == 1


async def test_inventory_feed_pages_with_exact_quantities(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    db.simulator.adjust_stock("SKU-1002", "RNO2", "RETURNS", Decimal("0.333"))
    records: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        batch = await ebs.read_inventory(cursor, limit=7)
        records.extend(json.loads(r, parse_float=Decimal) for r in batch.records)
        cursor = batch.cursor
        if not batch.has_more:
            break
    assert len(records) == 25
    last = records[-1]
    assert (last["ITEM_NUMBER"], last["ORGANIZATION_CODE"], last["SUBINVENTORY_CODE"]) == (
        "SKU-1002",
        "RNO2",
        "RETURNS",
    )
    assert last["PRIMARY_TRANSACTION_QUANTITY"] == Decimal("0.333") and last["ORGANIZATION_ID"] == 208
    assert (await ebs.read_inventory(cursor)).records == []


async def test_status_of_unknown_and_bad_type(ebs: OracleEbsConnector) -> None:
    with pytest.raises(PermanentErpError, match="does not exist"):
        await ebs.get_document_status(CREDIT_MEMO, "424242")
    with pytest.raises(PermanentErpError, match="cannot handle document type"):
        await ebs.find_document("salesOrdersForOrderHub", "x")


async def test_missing_driver_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "oracledb", None)
    connector = OracleEbsConnector(OracleEbsConfig(dsn=DSN, user="apps", password_env="RB_TEST_EBS_PW"))
    with pytest.raises(ConfigError, match="python-oracledb"):
        await connector.find_document(RMA, "x")


async def test_password_from_env_never_in_repr(db: EbsDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_TEST_EBS_PW", "apps")
    config = OracleEbsConfig(dsn=DSN, user="apps", password_env="RB_TEST_EBS_PW")
    connector = OracleEbsConnector(config, driver=StandInDriver(db))
    try:
        assert await connector.find_document(RMA, "none") is None
    finally:
        await connector.aclose()
    inline = OracleEbsConfig(dsn=DSN, user="apps", password="top-secret")
    assert "top-secret" not in repr(inline) and "top-secret" not in inline.model_dump_json()
    monkeypatch.setenv("RB_TEST_EBS_PW", "wrong")
    bad = OracleEbsConnector(config, driver=StandInDriver(db))
    with pytest.raises(ErpAuthError, match="ORA-01017"):
        await bad.find_document(RMA, "none")
    await bad.aclose()


async def test_same_reference_in_parallel_creates_one_rma(ebs: OracleEbsConnector, db: EbsDatabase) -> None:
    # Slow statements make the sessions overlap: without serialization every lookup would miss.
    db.set_faults({"latency_ms_min": 30, "latency_ms_max": 30})
    results = await asyncio.gather(
        *(ebs.create_document(req(RMA, "RMA-99-1", rma_payload())) for _ in range(4))
    )
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.document_id for r in results}) == 1
    assert len(db.state.documents[ORDERS_TABLE]) == 1
    assert ebs._ref_locks == {}


async def test_standin_driver_shares_one_database_per_simulator() -> None:
    simulator = OracleSimulator()
    first, second = oracle_db.standin_driver(simulator), oracle_db.standin_driver(simulator)
    assert first.database is second.database is oracle_db.shared_database(simulator)
    connector = OracleEbsConnector(OracleEbsConfig(dsn=DSN, user="apps", password="apps"), driver=first)
    try:
        created = await connector.create_document(req(RMA, "RMA-100-1", rma_payload()))
    finally:
        await connector.aclose()
    other = OracleEbsConnector(OracleEbsConfig(dsn=DSN, user="apps", password="apps"), driver=second)
    try:
        found = await other.find_document(RMA, "RMA-100-1")
    finally:
        await other.aclose()
    assert found is not None and found.document_id == created.document_id
