"""SAP RFC connector against the pyrfc stand-in: LUW handling, error classification, lookups, record shapes."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.harnesses.sap import PASSWORD, USER, rfc_customer_return_payload
from returnbridge.connectors.base import DocumentRequest
from returnbridge.connectors.registry import build_connector, parse_connector_config
from returnbridge.connectors.sap_rfc import SapRfcConfig, SapRfcConnector, classify_rfc_error
from returnbridge.errors import (
    AmbiguousErpError,
    ConfigError,
    ErpAuthError,
    PermanentErpError,
    TransientErpError,
)
from returnbridge.simulators import sap_rfc as fake
from returnbridge.simulators.sap import SapSimulator, SapSimulatorConfig, build_simulator

CONFIG = SapRfcConfig(ashost="127.0.0.1", user=USER, password=SecretStr(PASSWORD), timeout=5)


@pytest.fixture
def sim() -> SapSimulator:
    return build_simulator(SapSimulatorConfig())


@pytest.fixture
async def rfc(sim: SapSimulator) -> AsyncIterator[tuple[SapRfcConnector, list[fake.Connection]]]:
    opened: list[fake.Connection] = []

    def factory() -> fake.Connection:
        conn = fake.Connection(backend=sim.backend, user=USER, passwd=PASSWORD, client="100")
        opened.append(conn)
        return conn

    connector = SapRfcConnector(CONFIG, connection_factory=factory)
    yield connector, opened
    await connector.aclose()


def request(ref: str, payload: dict[str, Any] | None = None) -> DocumentRequest:
    body = payload if payload is not None else rfc_customer_return_payload()
    return DocumentRequest("BAPI_CUSTOMERRETURN_CREATE", ref, json.dumps(body).encode())


async def test_bapi_then_commit_on_the_same_connection(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    connector, opened = rfc
    result = await connector.create_document(request("RMA-900-1"))
    assert result.created is True and result.document_id.startswith("6")
    calls = [c for conn in opened for c in conn.calls]
    # No lookup (RFC_READ_TABLE) in the happy path: the worker looks up only after an unknown outcome.
    assert calls == ["BAPI_CUSTOMERRETURN_CREATE", "BAPI_TRANSACTION_COMMIT"]
    assert len({id(c) for c in opened if "BAPI_TRANSACTION_COMMIT" in c.calls}) == 1
    creator = next(c for c in opened if "BAPI_CUSTOMERRETURN_CREATE" in c.calls)
    assert "BAPI_TRANSACTION_COMMIT" in creator.calls, "the commit runs in the BAPI's own session"
    doc = sim.kit.state.documents["A_CustomerReturn"][result.document_id]
    assert doc["PurchaseOrderByCustomer"] == "RMA-900-1"
    assert doc["TotalNetAmount"] == "39.98"
    assert sim.kit.state.documents["A_ReturnsDeliveryHeader"], "the returns delivery follows the return"


async def test_error_rows_roll_back_and_raise_permanent(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    connector, opened = rfc
    with pytest.raises(PermanentErpError) as info:
        await connector.create_document(
            request("RMA-901-1", rfc_customer_return_payload(material="SKU-9999"))
        )
    assert info.value.code == "V1/320"
    assert "Material SKU-9999 does not exist" in info.value.erp_message
    calls = [c for conn in opened for c in conn.calls]
    assert "BAPI_TRANSACTION_ROLLBACK" in calls and "BAPI_TRANSACTION_COMMIT" not in calls
    assert sim.kit.state.documents["A_CustomerReturn"] == {}
    ok = await connector.create_document(request("RMA-901-2"))
    assert ok.document_id == "60000001", "a rolled-back number is not consumed"


async def test_unflagged_fields_are_ignored_like_the_bapi(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    payload = rfc_customer_return_payload()
    payload["RETURN_ITEMS_IN"][0]["SHORT_TEXT"] = "Typed by hand"
    payload["RETURN_ITEMS_INX"][0]["SHORT_TEXT"] = ""
    result = await rfc[0].create_document(request("RMA-902-1", payload))
    item = sim.kit.state.documents["A_CustomerReturn"][result.document_id]["to_Item"][0]
    assert item["CustomerReturnItemText"] == "Widget"


async def test_over_long_char_field_is_a_conversion_error(
    rfc: tuple[SapRfcConnector, list[fake.Connection]],
) -> None:
    payload = rfc_customer_return_payload()
    payload["RETURN_ITEMS_IN"][0]["STORE_LOC"] = "RET12"
    with pytest.raises(PermanentErpError) as info:
        await rfc[0].create_document(request("RMA-903-1", payload))
    assert info.value.code == "RFC_CONVERSION_FAILURE"


async def test_json_number_is_refused(rfc: tuple[SapRfcConnector, list[fake.Connection]]) -> None:
    raw = json.dumps(rfc_customer_return_payload()).replace('"TARGET_QTY": "2"', '"TARGET_QTY": 2')
    with pytest.raises(PermanentErpError) as info:
        await rfc[0].create_document(DocumentRequest("BAPI_CUSTOMERRETURN_CREATE", "RMA-904-1", raw.encode()))
    assert info.value.code == "PAYLOAD"


async def test_duplicate_refused_by_system_returns_the_existing_document(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    connector, _ = rfc
    # A system customized to refuse a repeated customer reference (S/4HANA's default only warns).
    sim.backend.config = sim.backend.config.model_copy(update={"duplicates": "refuse"})
    first = await connector.create_document(request("RMA-905-1"))
    # A blind second create (no lookup): the BAPI refuses with V4/115 and the connector finds the first.
    again = await connector.create_document(request("RMA-905-1"))
    assert again.document_id == first.document_id and again.created is False
    assert len(sim.kit.state.documents["A_CustomerReturn"]) == 1


async def test_duplicate_accepted_by_default_makes_a_second_document(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    connector, _ = rfc
    first = await connector.create_document(request("RMA-906-1"))
    again = await connector.create_document(request("RMA-906-1"))
    # S/4HANA's default: only the worker's lookup (after an unknown outcome) prevents this.
    assert again.document_id != first.document_id and again.created is True


async def test_status_and_inventory_records_share_the_odata_shapes(
    sim: SapSimulator, rfc: tuple[SapRfcConnector, list[fake.Connection]]
) -> None:
    connector, _ = rfc
    created = await connector.create_document(request("RMA-906-1"))
    status = await connector.get_document_status("BAPI_CUSTOMERRETURN_CREATE", created.document_id)
    assert (status.document_id, status.status, status.external_reference) == (
        created.document_id,
        "A",
        "RMA-906-1",
    )
    batch = await connector.read_status_changes(None, 10)
    record = json.loads(batch.records[0])
    assert (
        record["DocumentType"] == "BAPI_CUSTOMERRETURN_CREATE" and record["SDDocument"] == created.document_id
    )
    assert record["TotalNetAmount"] == "39.98" and record["LastChangeDateTime"].endswith("+0000)/")
    inventory = await connector.read_inventory(None, 3)
    assert inventory.has_more and inventory.cursor == "snapshot:3"
    row = json.loads(inventory.records[0], parse_float=Decimal)
    assert row["MatlWrhsStkQtyInMatlBaseUnit"] == "100.000" and row["MaterialBaseUnit"] == "EA"
    assert row["InventoryStockType"] == "01"


async def test_logon_refused_is_an_auth_error(sim: SapSimulator) -> None:
    connector = SapRfcConnector(
        CONFIG,
        connection_factory=lambda: fake.Connection(
            backend=sim.backend, user=USER, passwd="bad", client="100"
        ),
    )
    with pytest.raises(ErpAuthError) as info:
        await connector.find_document("BAPI_CUSTOMERRETURN_CREATE", "RMA-907-1")
    assert info.value.code == "00/152"
    await connector.aclose()


@pytest.mark.parametrize(
    ("exc", "maybe_applied", "expected", "code"),
    [
        (
            fake.LogonError("Name or password is incorrect", msg_class="00", msg_number="152"),
            False,
            ErpAuthError,
            "00/152",
        ),
        (
            fake.ExternalAuthorizationError("no S_RFC", key="RFC_AUTHORIZATION_FAILURE"),
            False,
            ErpAuthError,
            "RFC_AUTHORIZATION_FAILURE",
        ),
        (
            fake.CommunicationError("partner not reached", code=1, key="RFC_COMMUNICATION_FAILURE"),
            False,
            TransientErpError,
            "RFC_COMMUNICATION_FAILURE",
        ),
        (
            fake.CommunicationError("Timeout", code=8, key="RFC_TIMEOUT"),
            True,
            AmbiguousErpError,
            "RFC_TIMEOUT",
        ),
        (
            fake.ABAPApplicationError("no data", key="NOT_FOUND", msg_class="V1", msg_number="302"),
            False,
            PermanentErpError,
            "V1/302",
        ),
        (fake.ABAPRuntimeError("dump", key="TIME_OUT"), False, TransientErpError, "TIME_OUT"),
        (fake.ABAPRuntimeError("dump", key="CONVT_NO_NUMBER"), False, PermanentErpError, "CONVT_NO_NUMBER"),
        (
            fake.RFCTypeError("bad value", key="RFC_CONVERSION_FAILURE"),
            False,
            PermanentErpError,
            "RFC_CONVERSION_FAILURE",
        ),
    ],
)
def test_classification_by_pyrfc_class(
    exc: Exception, maybe_applied: bool, expected: type, code: str
) -> None:
    err = classify_rfc_error(exc, maybe_applied=maybe_applied)
    assert type(err) is expected
    assert err.code == code and err.erp == "sap_s4hana"


def test_classification_goes_by_name_not_identity() -> None:
    # A class from the real pyrfc is unrelated to the stand-in; only its name and attributes matter.
    communication_error = type("CommunicationError", (Exception,), {})
    err = classify_rfc_error(communication_error("gateway gone"), maybe_applied=False)
    assert type(err) is TransientErpError


def test_pyrfc_is_imported_only_without_a_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    SapRfcConnector(CONFIG, connection_factory=lambda: None)
    assert "pyrfc" not in sys.modules
    monkeypatch.setitem(sys.modules, "pyrfc", None)  # as if the `sap` extra were not installed
    with pytest.raises(ConfigError, match="pyrfc"):
        build_connector({"kind": "sap_rfc", "ashost": "10.0.0.1", "user": USER, "password": PASSWORD})


def test_config_needs_a_target_and_a_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="ashost"):
        parse_connector_config({"kind": "sap_rfc", "user": USER, "password_env": "X"})
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    config = parse_connector_config(
        {
            "kind": "sap_rfc",
            "mshost": "ms.example",
            "group": "PUBLIC",
            "user": USER,
            "password_file": str(secret),
        }
    )
    assert isinstance(config, SapRfcConfig)
    params = config.logon_params()
    assert params["passwd"] == PASSWORD and params["mshost"] == "ms.example" and "ashost" not in params
    assert PASSWORD not in repr(config)
