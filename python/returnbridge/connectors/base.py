"""The one small interface every ERP transport implements, and the values it exchanges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """Create one ERP document from a payload the mapper produced.

    ``payload`` is the ERP's request body as JSON bytes (REST/OData), or a JSON object of call
    parameters for RFC (``{"RETURN_HEADER_IN": {...}, "RETURN_ITEMS_IN": [...]}``) and EBS PL/SQL
    (``{"p_header_rec": {...}, "p_line_tbl": [...]}``).

    ``external_reference`` is our idempotency reference: the connector writes it onto the document
    (NetSuite ``externalId``, SAP ``PurchaseOrderByCustomer``, Oracle ``SourceTransactionNumber`` ...)
    overriding whatever the payload holds. ``find_document`` looks it up; the delivery worker does that
    before a create only when an earlier attempt's outcome is unknown.

    ``source_document_type``/``source_document_id`` name the document this one follows from
    (NetSuite ``!transform`` source, SAP reference document, Oracle original return order).
    """

    document_type: str
    external_reference: str
    payload: bytes
    source_document_type: str = ""
    source_document_id: str = ""
    tenant_id: str = ""
    return_id: str = ""
    # Per-call deadline in seconds; the connector never waits longer than this.
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class DocumentResult:
    """A document the ERP holds."""

    document_type: str
    document_id: str
    external_reference: str = ""
    # Human-facing number when it differs from the id (tranId, SAP doc number, Oracle OrderNumber).
    document_number: str = ""
    # False when an earlier attempt had already created it (found by lookup or refused as duplicate).
    created: bool = True
    status: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """ERP records changed since a cursor, as raw ERP JSON objects for the inbound mapper."""

    records: list[bytes]
    cursor: str
    has_more: bool = False


@runtime_checkable
class Connector(Protocol):
    """An ERP transport. Errors are raised as the ``returnbridge.errors.ErpError`` subclasses."""

    #: Registered transport name, e.g. "netsuite", "sap_odata", "sap_rfc", "oracle_fusion", "oracle_ebs".
    kind: str
    #: ERP family for metrics and events: "netsuite", "sap_s4hana", "oracle_fusion", "oracle_ebs".
    erp: str

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        """Create (or transform into) a document with one ERP call where the ERP allows it.

        No lookup first and no read-back of what the answer already gives: where the ERP accepts a
        repeated reference (S/4HANA by default) a blind second call makes a second document, so callers
        look up first when an earlier attempt's outcome is unknown. A refusal as duplicate is answered
        with the existing document (``created=False``).
        """
        ...

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        """Look a document up by our external reference; None when the ERP has none."""
        ...

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        """Read a document's current status (raises PermanentErpError when it does not exist)."""
        ...

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Stock records changed since ``cursor`` (None = full snapshot), one ERP JSON object each."""
        ...

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Document status records changed since ``cursor``, one ERP JSON object each."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...
