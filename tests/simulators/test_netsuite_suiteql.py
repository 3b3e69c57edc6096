"""NetSuite simulator SuiteQL: the supported query shapes, paging envelope, and 400s for everything else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.harnesses.netsuite import CONSUMER_KEY, CONSUMER_SECRET, TOKEN_ID, TOKEN_SECRET
from returnbridge.connectors.netsuite_auth import TbaAuth
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.netsuite import NetSuiteSimulator
from returnbridge.simulators.netsuite_suiteql import SuiteQLError, parse_suiteql

SUITEQL = "/services/rest/query/v1/suiteql"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[tuple[NetSuiteSimulator, httpx.AsyncClient]]:
    simulator = NetSuiteSimulator(clock=clock)
    running = await RunningSimulator(simulator.app).start()
    auth = TbaAuth(
        realm="1234567",
        consumer_key=CONSUMER_KEY,
        consumer_secret=SecretStr(CONSUMER_SECRET),
        token_id=TOKEN_ID,
        token_secret=SecretStr(TOKEN_SECRET),
    )
    async with httpx.AsyncClient(base_url=running.url, auth=auth, timeout=10) as http:
        yield simulator, http
    await running.stop()


async def query(
    http: httpx.AsyncClient, q: str, *, limit: int = 1000, offset: int = 0, prefer: bool = True
) -> httpx.Response:
    headers = {"Prefer": "transient"} if prefer else {}
    return await http.post(SUITEQL, params={"limit": limit, "offset": offset}, json={"q": q}, headers=headers)


def rows(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [{k: v for k, v in item.items() if k != "links"} for item in response.json()["items"]]


async def test_inventory_rows_are_strings_with_display_values(
    client: tuple[NetSuiteSimulator, httpx.AsyncClient],
) -> None:
    simulator, http = client
    q = (
        "SELECT item, BUILTIN.DF(item) AS itemid, location, BUILTIN.DF(location) AS locationname, quantityonhand "
        "FROM aggregateItemLocation ORDER BY item, location"
    )
    result = rows(await query(http, q))
    assert len(result) == 30
    assert result[0] == {
        "item": "501",
        "itemid": "SKU-1001",
        "location": "1",
        "locationname": "DAL1",
        "quantityonhand": "10",
    }
    simulator.adjust_stock("SKU-1001", "DAL1", Decimal("0.25"))
    assert rows(await query(http, q))[0]["quantityonhand"] == "10.25"


async def test_paging_envelope(client: tuple[NetSuiteSimulator, httpx.AsyncClient]) -> None:
    _, http = client
    q = "SELECT item, location FROM aggregateItemLocation ORDER BY item, location"
    first = await query(http, q, limit=7, offset=0)
    body = first.json()
    assert (body["count"], body["hasMore"], body["offset"], body["totalResults"]) == (7, True, 0, 30)
    assert body["links"][0]["rel"] == "next" and "offset=7" in body["links"][0]["href"]
    last = (await query(http, q, limit=7, offset=28)).json()
    assert (last["count"], last["hasMore"]) == (2, False)
    assert [link["rel"] for link in last["links"]] == ["self"]


async def test_transactions_filter_by_external_id_type_and_timestamp(
    client: tuple[NetSuiteSimulator, httpx.AsyncClient], clock: Clock
) -> None:
    simulator, http = client
    body = {"entity": {"id": "102"}, "item": {"items": [{"item": {"id": "502"}, "quantity": 1}]}}
    for ref in ("A-1", "O'BRIEN-1"):
        clock.advance(5)
        response = await http.put(f"/services/rest/record/v1/returnAuthorization/eid:{ref}", json=body)
        assert response.status_code == 204
    found = rows(
        await query(
            http,
            "SELECT id, tranid, BUILTIN.DF(status) AS statusname, TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified "
            "FROM transaction WHERE externalid = 'O''BRIEN-1' AND type = 'RtnAuth'",
        )
    )
    assert len(found) == 1 and found[0]["statusname"] == "Pending Receipt"
    assert found[0]["lastmodified"] == "2026-11-27 12:00:10"
    since = rows(
        await query(
            http,
            "SELECT externalid FROM transaction WHERE type IN ('RtnAuth', 'CustCred') "
            "AND lastmodifieddate >= TO_TIMESTAMP('2026-11-27 12:00:06', 'YYYY-MM-DD HH24:MI:SS') ORDER BY lastmodifieddate, id",
        )
    )
    assert since == [{"externalid": "O'BRIEN-1"}]
    # Without TO_CHAR a date column comes back in the account's date format.
    plain = rows(await query(http, "SELECT lastmodifieddate FROM transaction WHERE externalid = 'A-1'"))
    assert plain == [{"lastmodifieddate": "11/27/2026"}]
    assert simulator.documents("returnAuthorization")


@pytest.mark.parametrize(
    "q",
    [
        "SELECT * FROM transaction",
        "DELETE FROM transaction",
        "SELECT id FROM customer",
        "SELECT nosuchcolumn FROM transaction",
        "SELECT id FROM transaction WHERE nosuch = 'x'",
        "SELECT id FROM transaction t JOIN transactionline tl ON tl.transaction = t.id",
        "SELECT id FROM transaction WHERE id = 1 OR id = 2",
        "SELECT id FROM transaction ORDER BY id DESC",
        "SELECT id FROM transaction WHERE lastmodifieddate >= TO_TIMESTAMP('yesterday', 'YYYY-MM-DD HH24:MI:SS')",
        "SELECT TO_CHAR(lastmodifieddate, 'DD.MM.YYYY') AS d FROM transaction",
        "SELECT id FROM transaction WHERE externalid = 'unterminated",
        "SELECT id FROM transaction; DROP TABLE transaction",
    ],
)
async def test_unsupported_queries_are_400(
    client: tuple[NetSuiteSimulator, httpx.AsyncClient], q: str
) -> None:
    _, http = client
    response = await query(http, q)
    assert response.status_code == 400, response.text
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"


async def test_request_shape_errors(client: tuple[NetSuiteSimulator, httpx.AsyncClient]) -> None:
    _, http = client
    assert (await query(http, "SELECT id FROM transaction", prefer=False)).status_code == 400
    assert (await query(http, "SELECT id FROM transaction", limit=1001)).status_code == 400
    assert (await query(http, "SELECT id FROM transaction", limit=0)).status_code == 400
    empty = await http.post(SUITEQL, json={"query": "x"}, headers={"Prefer": "transient"})
    assert empty.status_code == 400


def test_parser_keeps_quoted_literals_exact() -> None:
    parsed = parse_suiteql(
        "select id as x from TRANSACTION where externalid = 'it''s AND type = ''x''' and type in ('a','b')"
    )
    assert parsed.table == "transaction"
    assert parsed.select[0][0] == "x"
    assert [(c.column, c.op, c.values) for c in parsed.where] == [
        ("externalid", "=", ("it's AND type = 'x'",)),
        ("type", "IN", ("a", "b")),
    ]
    with pytest.raises(SuiteQLError):
        parse_suiteql("select id from transaction where")
