"""NetSuite simulator credits: tax detail overrides and a header discount make the total and balanced ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from simulators.test_netsuite_records import RECORD, Sim, error_of, ra_body, start

TAXED: dict[str, Any] = {
    "discountItem": {"id": "701"},
    "discountRate": Decimal("-5.00"),
    "taxDetailsOverride": True,
    "taxDetails": {
        "items": [
            {
                "taxDetailsReference": "L1",
                "taxType": {"id": "1"},
                "taxCode": {"id": "10"},
                "taxBasis": Decimal("39.98"),
                "taxAmount": Decimal("3.30"),
            },
            {
                "taxDetailsReference": "L2",
                "taxType": {"id": "1"},
                "taxCode": {"id": "10"},
                "taxBasis": Decimal("498.00"),
                "taxAmount": Decimal("41.09"),
            },
        ]
    },
    "item": {
        "items": [
            {"orderLine": 1, "quantity": 2, "taxDetailsReference": "L1"},
            {"orderLine": 2, "quantity": 2, "taxDetailsReference": "L2"},
        ]
    },
}


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    s, running = await start()
    yield s
    await s.http.aclose()
    await running.stop()


def postings(sim: Sim, document_id: str) -> list[tuple[str, Decimal, Decimal]]:
    return [
        (e.account, e.debit, e.credit) for e in sim.simulator.kit.state.ledger if e.document_id == document_id
    ]


@pytest.mark.parametrize(
    ("record_type", "credit_account"),
    [("creditMemo", "1200 Accounts Receivable"), ("cashRefund", "1000 Undeposited Funds")],
)
async def test_total_is_subtotal_plus_tax_minus_fee_and_posts_balanced(
    sim: Sim, record_type: str, credit_account: str
) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    doc_id = await sim.create(f"{RECORD}/returnAuthorization/{ra_id}/!transform/{record_type}", TAXED)
    record = sim.record(record_type, doc_id)
    assert (record["subtotal"], record["taxTotal"], record["discountTotal"], record["total"]) == (
        Decimal("537.98"),
        Decimal("44.39"),
        Decimal("-5.00"),
        Decimal("577.37"),
    )
    assert postings(sim, doc_id) == [
        ("4010 Sales Returns", Decimal("537.98"), 0),
        ("2200 Sales Tax Payable", Decimal("44.39"), 0),
        ("4090 Restocking Fees", 0, Decimal("5.00")),
        (credit_account, 0, Decimal("577.37")),
    ]
    assert sim.simulator.kit.state.trial_balance()["balanced"] is True
    # SuiteQL reports the full total as foreigntotal (what the status feed reads back).
    rows = await sim.http.post(
        "/services/rest/query/v1/suiteql",
        json={"q": f"SELECT id, foreigntotal FROM transaction WHERE id = {doc_id}"},
        headers={"Prefer": "transient"},
    )
    assert rows.status_code == 200, rows.text
    assert Decimal(str(rows.json()["items"][0]["foreigntotal"])) == Decimal("577.37")


async def test_percentage_discount_is_taken_from_the_subtotal(sim: Sim) -> None:
    body = {"entity": {"id": "101"}, "discountItem": {"id": "701"}, "discountRate": "-10%"}
    body["item"] = {"items": [{"item": {"id": "501"}, "quantity": 3, "rate": Decimal("19.99")}]}
    doc_id = await sim.create(f"{RECORD}/creditMemo", body)
    record = sim.record("creditMemo", doc_id)
    assert (record["discountTotal"], record["total"]) == (Decimal("-6.00"), Decimal("53.97"))


def _without_override(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "taxDetailsOverride"}


def _tax_detail(**changes: Any) -> dict[str, Any]:
    detail = {**TAXED["taxDetails"]["items"][0], **changes}
    return {**TAXED, "taxDetails": {"items": [detail]}}


@pytest.mark.parametrize(
    ("body", "path", "fragment"),
    [
        (_without_override(TAXED), "taxDetails", "Tax Details Override"),
        (_tax_detail(taxDetailsReference="L9"), "taxDetails.items[0].taxDetailsReference", "'L9'"),
        (_tax_detail(taxCode={"id": "99"}), "taxDetails.items[0].taxCode", "taxCode"),
        (_tax_detail(taxAmount=Decimal("-1.00")), "taxDetails.items[0].taxAmount", "greater than zero"),
        (_tax_detail(taxAmount=Decimal("1.005")), "taxDetails.items[0].taxAmount", "2 decimal places"),
        ({**TAXED, "discountItem": {"id": "702"}}, "discountItem", "discountItem"),
        ({k: v for k, v in TAXED.items() if k != "discountItem"}, "discountItem", "Discount Item"),
        ({**TAXED, "discountRate": "abc"}, "discountRate", "discountRate"),
        ({**TAXED, "discountRate": Decimal("-9999.00")}, "discountRate", "cannot be negative"),
    ],
)
async def test_bad_tax_or_discount_is_refused_before_anything_posts(
    sim: Sim, body: dict[str, Any], path: str, fragment: str
) -> None:
    ra_id = await sim.create(f"{RECORD}/returnAuthorization", ra_body())
    response = await sim.send("POST", f"{RECORD}/returnAuthorization/{ra_id}/!transform/creditMemo", body)
    assert response.status_code == 400, response.text
    detail = error_of(response)
    assert detail["o:errorPath"] == path
    assert fragment in detail["detail"]
    assert sim.simulator.documents("creditMemo") == {}
    assert sim.simulator.kit.state.ledger == []
