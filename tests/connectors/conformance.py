"""The connector conformance suite: one set of behaviours every ERP connector must show against its simulator.

Subclass ``ConnectorConformance`` in a test module that provides a ``harness`` fixture yielding a started
``ConnectorHarness`` (tests/connectors/test_conformance.py does this for every discovered harness).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest

from connectors.harness import (
    CAP_AUTH,
    CAP_COMMIT_THEN_DROP,
    CAP_HANG,
    CAP_HTTP,
    CAP_INVENTORY,
    CAP_RETRY_AFTER,
    CAP_STATUS_CHANGES,
    ConnectorHarness,
)
from returnbridge.connectors.base import (
    ChangeBatch,
    Connector,
    DocumentReader,
    DocumentRequest,
    DocumentResult,
)
from returnbridge.connectors.tally import tally_requests
from returnbridge.errors import (
    AmbiguousErpError,
    ErpAuthError,
    PermanentErpError,
    TransientErpError,
)

# A change feed that needs more pages than this for a handful of records is broken (or loops).
MAX_PAGES = 200


def new_reference() -> str:
    """A fresh external reference shaped like the worker's ``<rma_number>-<version>`` (<= 35 chars)."""
    return f"RMA-{uuid.uuid4().hex[:12].upper()}-1"


def require(harness: ConnectorHarness, capability: str) -> None:
    if capability not in harness.capabilities:
        pytest.skip(f"{harness.name} lacks capability {capability!r}")


async def worker_style_create(connector: Connector, request: DocumentRequest) -> DocumentResult:
    """What the delivery worker does after an ambiguous failure: look up first, create only if absent."""
    found = await connector.find_document(request.document_type, request.external_reference)
    if found is not None:
        return found
    return await connector.create_document(request)


async def drain(read: Any, cursor: str | None, *, limit: int = 500) -> tuple[list[dict[str, Any]], str]:
    """Follow a change feed until ``has_more`` is False; returns the decoded records and the last cursor."""
    records: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        batch: ChangeBatch = await read(cursor, limit)
        assert isinstance(batch.cursor, str) and batch.cursor, "every batch must carry a resumable cursor"
        assert len(batch.records) <= limit, f"asked for at most {limit} records, got {len(batch.records)}"
        for raw in batch.records:
            assert isinstance(raw, bytes), "records cross the interface as JSON bytes"
            decoded = json.loads(raw, parse_float=Decimal)
            assert isinstance(decoded, dict), "each record is one JSON object"
            records.append(decoded)
        cursor = batch.cursor
        if not batch.has_more:
            return records, cursor
    raise AssertionError(f"change feed still has_more after {MAX_PAGES} pages")


class ConnectorConformance:
    """The behaviours; each test gets a fresh simulator through the ``harness`` fixture."""

    # -- create, idempotency, lookup, status -------------------------------------------------------

    async def test_create_returns_the_new_document(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        ref = new_reference()
        result = await connector.create_document(harness.request(ref))
        assert result.document_id
        assert result.document_type == harness.document_type
        assert result.external_reference == ref
        assert result.created is True
        assert await harness.count_documents(harness.document_type, ref) == 1

    async def test_retry_after_unknown_outcome_yields_one_document(self, harness: ConnectorHarness) -> None:
        """The worker's retry (look up, create only if absent) never makes a second document."""
        connector = harness.connector()
        ref = new_reference()
        first = await connector.create_document(harness.request(ref))
        second = await worker_style_create(connector, harness.request(ref))
        assert second.document_id == first.document_id
        assert second.created is False
        assert await harness.count_documents(harness.document_type, ref) == 1

    async def test_blind_recreate_follows_the_duplicate_policy(self, harness: ConnectorHarness) -> None:
        """Without a lookup a second create is a duplicate wherever the ERP accepts one.

        This is what makes a missing lookup visible: under ``accept`` the simulator stores the second
        document (as S/4HANA does by default), so only the worker's lookup keeps delivery exactly-once.
        """
        connector = harness.connector()
        ref = new_reference()
        first = await connector.create_document(harness.request(ref))
        second = await connector.create_document(harness.request(ref))
        if harness.upsert or harness.duplicates == "refuse":
            assert second.document_id == first.document_id
            assert await harness.count_documents(harness.document_type, ref) == 1
        else:
            assert second.document_id != first.document_id
            assert await harness.count_documents(harness.document_type, ref) == 2

    async def test_happy_path_create_is_one_request(self, harness: ConnectorHarness) -> None:
        """No lookup and no read-back around a create: one ERP request per document."""
        require(harness, CAP_HTTP)
        connector = harness.connector()
        # The first write may fetch a session token (SAP CSRF) once per connector, not per document.
        await connector.create_document(harness.request(new_reference()))
        with tally_requests() as tally:
            created = await connector.create_document(harness.request(new_reference()))
        assert created.document_id
        assert tally.count == 1, f"{tally.count} ERP requests for one document"

    async def test_find_document_by_external_reference(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        ref = new_reference()
        assert await connector.find_document(harness.document_type, ref) is None
        created = await connector.create_document(harness.request(ref))
        found = await connector.find_document(harness.document_type, ref)
        assert found is not None
        assert found.document_id == created.document_id
        assert found.external_reference == ref
        assert found.document_type == harness.document_type

    async def test_read_documents_returns_every_document_of_a_reference(
        self, harness: ConnectorHarness
    ) -> None:
        """Reconciliation reads back through every connector: each document of a reference, with its lines."""
        connector = harness.connector()
        assert isinstance(connector, DocumentReader), f"{harness.name} cannot be reconciled"
        ref = new_reference()
        assert await connector.read_documents(harness.document_type, ref) == []
        created = await connector.create_document(harness.request(ref, quantity=Decimal("3")))
        [holding] = await connector.read_documents(harness.document_type, ref)
        assert (holding.document_id, holding.external_reference) == (created.document_id, ref)
        assert holding.document_type == harness.document_type
        assert holding.quantities in (None, (Decimal("3"),)), holding
        assert holding.amount is None or isinstance(holding.amount, Decimal)
        if (
            harness.duplicates == "accept"
        ):  # a blind second create: every document it made is read, oldest first
            again = await connector.create_document(harness.request(ref, quantity=Decimal("3")))
            holdings = await connector.read_documents(harness.document_type, ref)
            made = list(dict.fromkeys([created.document_id, again.document_id]))
            assert [h.document_id for h in holdings] == made

    async def test_document_status(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        created = await connector.create_document(harness.request(new_reference()))
        status = await connector.get_document_status(harness.document_type, created.document_id)
        assert status.document_id == created.document_id
        assert status.status, "a created document reports its ERP status"

    async def test_status_of_unknown_document_is_permanent(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        with pytest.raises(PermanentErpError):
            await connector.get_document_status(harness.document_type, harness.unknown_document_id())

    async def test_money_and_quantities_stay_exact(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        quantity, price = Decimal("3"), Decimal("9876543.21")
        created = await connector.create_document(
            harness.request(new_reference(), quantity=quantity, unit_price=price)
        )
        lines = await harness.stored_lines(harness.document_type, created.document_id)
        assert lines == [(quantity, price)]
        assert all(isinstance(q, Decimal) and isinstance(p, Decimal) for q, p in lines)

    async def test_distinct_references_in_parallel(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        refs = [new_reference() for _ in range(6)]
        results = await asyncio.gather(*(connector.create_document(harness.request(r)) for r in refs))
        assert len({r.document_id for r in results}) == len(refs)
        for ref in refs:
            assert await harness.count_documents(harness.document_type, ref) == 1

    # -- error classes -----------------------------------------------------------------------------

    async def test_validation_error_is_permanent_and_keeps_erp_code(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        ref = new_reference()
        with pytest.raises(PermanentErpError) as info:
            await connector.create_document(harness.invalid_request(ref))
        assert info.value.code, "the ERP's own error code is kept"
        assert info.value.erp_message, "the ERP's own message is kept"
        assert info.value.erp == connector.erp
        assert await harness.count_documents(harness.document_type, ref) == 0

    @pytest.mark.parametrize("status", [500, 503])
    async def test_server_errors_are_transient(self, harness: ConnectorHarness, status: int) -> None:
        connector = harness.connector()
        ref = new_reference()
        await harness.set_faults({"error_rate": 1.0, "error_statuses": [status]})
        with pytest.raises(TransientErpError) as info:
            await connector.create_document(harness.request(ref))
        assert info.value.http_status in (status, 0)
        await harness.clear_faults()
        created = await worker_style_create(connector, harness.request(ref))
        assert created.document_id
        assert await harness.count_documents(harness.document_type, ref) == 1

    async def test_throttling_is_transient_with_retry_after(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_RETRY_AFTER)
        connector = harness.connector()
        await harness.set_faults({"error_rate": 1.0, "error_statuses": [429], "retry_after": 7})
        with pytest.raises(TransientErpError) as info:
            await connector.create_document(harness.request(new_reference()))
        assert not isinstance(info.value, AmbiguousErpError), "a 429 was refused, not applied"
        assert info.value.retry_after == 7.0
        with pytest.raises(TransientErpError) as read_info:
            await connector.find_document(harness.document_type, new_reference())
        assert read_info.value.retry_after == 7.0

    async def test_outage_on_reads_is_transient_not_ambiguous(self, harness: ConnectorHarness) -> None:
        connector = harness.connector()
        await harness.set_faults({"outage": True})
        with pytest.raises(TransientErpError) as info:
            await connector.find_document(harness.document_type, new_reference())
        assert not isinstance(info.value, AmbiguousErpError)

    async def test_refused_credentials_raise_auth_error(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_AUTH)
        connector = harness.connector(bad_credentials=True)
        ref = new_reference()
        with pytest.raises(ErpAuthError):
            await connector.create_document(harness.request(ref))
        with pytest.raises(ErpAuthError):
            await connector.find_document(harness.document_type, ref)
        assert await harness.count_documents(harness.document_type, ref) == 0

    async def test_hanging_erp_times_out(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_HANG)
        connector = harness.connector(timeout=0.5)
        await harness.set_faults({"hang": True})
        started = time.monotonic()
        with pytest.raises(TransientErpError):
            await connector.create_document(harness.request(new_reference()))
        with pytest.raises(TransientErpError) as info:
            await connector.find_document(harness.document_type, new_reference())
        assert not isinstance(info.value, AmbiguousErpError), "a lookup never applies anything"
        assert time.monotonic() - started < 10, "the connector's timeout must bound each call"

    async def test_request_deadline_bounds_the_call(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_HANG)
        connector = harness.connector(timeout=30)
        await harness.set_faults({"hang": True})
        started = time.monotonic()
        with pytest.raises(TransientErpError):
            await connector.create_document(harness.request(new_reference(), timeout=0.5))
        assert time.monotonic() - started < 10

    async def test_commit_then_drop_then_worker_sequence_gives_one_document(
        self, harness: ConnectorHarness
    ) -> None:
        require(harness, CAP_COMMIT_THEN_DROP)
        connector = harness.connector()
        ref = new_reference()
        await harness.set_faults(
            {"commit_then_drop_rate": 1.0, "path_pattern": harness.write_path_pattern, "remaining": 1}
        )
        with pytest.raises(AmbiguousErpError):
            await connector.create_document(harness.request(ref))
        await harness.clear_faults()
        assert await harness.count_documents(harness.document_type, ref) == 1, "the write was applied"
        recovered = await worker_style_create(connector, harness.request(ref))
        again = await worker_style_create(connector, harness.request(ref))
        assert again.document_id == recovered.document_id
        assert recovered.created is False and again.created is False
        assert await harness.count_documents(harness.document_type, ref) == 1

    # -- change feeds ------------------------------------------------------------------------------

    async def test_inventory_snapshot_then_changes_since_cursor(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_INVENTORY)
        connector = harness.connector()
        records, cursor = await drain(connector.read_inventory, None)
        levels = {harness.inventory_entry(r)[:2]: harness.inventory_entry(r)[2] for r in records}
        key = (harness.stock_sku, harness.stock_site)
        assert key in levels, f"seeded stock {key} missing from the snapshot"
        before = levels[key]
        assert isinstance(before, Decimal)

        await harness.change_stock(harness.stock_sku, harness.stock_site, Decimal("1.5"))
        changed, _ = await drain(connector.read_inventory, cursor)
        after = [harness.inventory_entry(r)[2] for r in changed if harness.inventory_entry(r)[:2] == key]
        assert after, "the stock change is in the feed after the cursor"
        assert after[-1] == before + Decimal("1.5")

    async def test_inventory_pages(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_INVENTORY)
        connector = harness.connector()
        full, _ = await drain(connector.read_inventory, None)
        assert len(full) >= 2, "the seed data has several stock records"
        first = await connector.read_inventory(None, 1)
        assert len(first.records) == 1 and first.has_more
        paged, _ = await drain(connector.read_inventory, None, limit=1)
        assert {harness.inventory_entry(r)[:2] for r in paged} == {
            harness.inventory_entry(r)[:2] for r in full
        }

    async def test_status_changes_follow_the_cursor(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_STATUS_CHANGES)
        connector = harness.connector()
        first = await connector.create_document(harness.request(new_reference()))
        records, cursor = await drain(connector.read_status_changes, None)
        statuses = {harness.status_entry(r)[0]: harness.status_entry(r)[1] for r in records}
        assert first.document_id in statuses
        assert statuses[first.document_id], "the created document's record names its status"

        second = await connector.create_document(harness.request(new_reference()))
        later, _ = await drain(connector.read_status_changes, cursor)
        assert second.document_id in {harness.status_entry(r)[0] for r in later}

    async def test_status_changes_page_without_losing_records(self, harness: ConnectorHarness) -> None:
        require(harness, CAP_STATUS_CHANGES)
        connector = harness.connector()
        created = [await connector.create_document(harness.request(new_reference())) for _ in range(3)]
        records, _ = await drain(connector.read_status_changes, None, limit=1)
        seen = {harness.status_entry(r)[0] for r in records}
        assert {c.document_id for c in created} <= seen
