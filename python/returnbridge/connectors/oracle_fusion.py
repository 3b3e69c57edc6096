"""Oracle Fusion Cloud REST connector: return orders, RMA receipts, AR credit memos, on-hand, status feed."""

from __future__ import annotations

import base64
import json
import urllib.parse
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from returnbridge import exactjson
from returnbridge.connectors.base import (
    ChangeBatch,
    DocumentRequest,
    DocumentResult,
    ErpHolding,
    magnitude,
    magnitudes,
)
from returnbridge.connectors.http import HttpTransport
from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import ORACLE_FUSION
from returnbridge.errors import ErpError, PermanentErpError

ORDERS = "salesOrdersForOrderHub"
RECEIPTS = "receivingReceiptRequests"
CREDIT_MEMOS = "receivablesCreditMemos"
ONHAND = "onhandQuantityDetails"
DOCUMENT_TYPES = (ORDERS, RECEIPTS, CREDIT_MEMOS)
ERP = ORACLE_FUSION.name

# Per document type: the id attribute, the human number, the field our external reference goes into,
# and the status attribute.
_KEYS: dict[str, tuple[str, str, str, str]] = {
    ORDERS: ("HeaderId", "OrderNumber", "SourceTransactionNumber", "StatusCode"),
    RECEIPTS: ("HeaderInterfaceId", "ReceiptNumber", "ShipmentNumber", "ProcessingStatusCode"),
    CREDIT_MEMOS: ("CustomerTransactionId", "TransactionNumber", "PurchaseOrder", "TransactionStatus"),
}
# Line child and quantity field per resource, for reconciliation's read-back.
_LINES: dict[str, tuple[str, str]] = {
    ORDERS: ("lines", "OrderedQuantity"),
    RECEIPTS: ("lines", "Quantity"),
    CREDIT_MEMOS: ("receivablesCreditMemoLines", "LineQuantityCredit"),
}
# Error codes (JSON bodies) or message fragments (plain-text bodies) meaning "that reference exists".
_DUPLICATE_CODES = frozenset(
    {"DOO_DUPLICATE_SOURCE_ORDER", "RCV_DUPLICATE_SHIPMENT", "AR_DUPLICATE_REFERENCE"}
)
_DUPLICATE_TEXT = "already exists"
# Number attributes of the payloads we send: decimal strings from the mapper become exact JSON numbers.
_NUMERIC_FIELDS = frozenset(
    {
        "OrderedQuantity",
        "UnitListPrice",
        "UnitSellingPrice",
        "Quantity",
        "TransactionQuantity",
        "LineQuantityCredit",
        "LineAmountCredit",
        "LineNumber",
        "BusinessUnitId",
        "BuyingPartyId",
    }
)


class OracleFusionConfig(BaseModel):
    """``kind: oracle_fusion`` connector section.

    Secrets come from ``password_env`` / ``password_file`` (or ``token_env`` / ``token_file`` for bearer
    auth); an inline ``password`` is accepted for local runs only and is never logged.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["oracle_fusion"] = "oracle_fusion"
    #: Pod URL, e.g. ``https://acme.fa.us2.oraclecloud.com`` (the REST path is appended).
    base_url: str
    api_version: str = "11.13.18.05"
    auth: Literal["basic", "bearer"] = "basic"
    username: str = ""
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    token_env: str | None = None
    token_file: Path | None = None
    #: REST-Framework-Version header; 2+ uses the RowMatch q syntax.
    rest_framework_version: Literal["1", "2", "3", "4"] = "4"
    #: Order hub SourceTransactionSystem when the payload has none (must be registered in Fusion).
    source_transaction_system: str = Field(default="RETBRIDGE", max_length=30)
    #: Requests in flight at once against this Fusion account.
    max_concurrency: int = Field(default=8, ge=1, le=256)
    timeout_seconds: float = Field(default=30.0, gt=0)
    #: Page size for on-hand and status reads (Fusion caps collections at 500).
    page_size: int = Field(default=500, ge=1, le=500)

    @model_validator(mode="after")
    def _check_auth(self) -> OracleFusionConfig:
        if self.auth == "basic":
            if not self.username:
                raise ValueError("basic auth needs username")
            if not (self.password or self.password_env or self.password_file):
                raise ValueError("basic auth needs one of password_env, password_file, password")
        elif not (self.token_env or self.token_file):
            raise ValueError("bearer auth needs token_env or token_file")
        return self

    def authorization(self) -> str:
        """The Authorization header value, reading the secret now (raises ConfigError if unreadable)."""
        if self.auth == "bearer":
            token = read_secret(None, self.token_env, self.token_file, name="oracle_fusion token")
            return f"Bearer {token.get_secret_value()}"
        password = read_secret(
            self.password, self.password_env, self.password_file, name="oracle_fusion password"
        ).get_secret_value()
        raw = f"{self.username}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def parse_fusion_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a Fusion error body: JSON ``title``/``o:errorDetails`` or plain text."""
    text = response.text
    if "json" in response.headers.get("content-type", ""):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            details = body.get("o:errorDetails") or []
            codes = [str(d.get("o:errorCode", "")) for d in details if isinstance(d, dict)]
            messages = [str(d.get("detail", "")) for d in details if isinstance(d, dict)]
            code = next((c for c in codes if c), str(body.get("status", response.status_code)))
            message = "; ".join(m for m in messages if m) or str(
                body.get("title") or body.get("detail") or ""
            )
            return code, message[:2000]
    return str(response.status_code), text.strip()[:2000]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class OracleFusionConnector:
    """Fusion REST connector (see docs/erp/oracle.md for payloads and record shapes).

    Args:
        config: the connector section.
        client: an ``httpx.AsyncClient`` to use instead of a pooled one (narrow unit tests).
    """

    kind = "oracle_fusion"
    erp = ERP

    def __init__(self, config: OracleFusionConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        base = f"{config.base_url.rstrip('/')}/fscmRestApi/resources/{config.api_version}/"
        headers = {
            "Authorization": config.authorization(),
            "REST-Framework-Version": config.rest_framework_version,
            "Accept": "application/json",
        }
        if client is not None:
            client.headers.update(headers)
        self.transport = HttpTransport(
            erp=ERP,
            base_url=base,
            max_concurrency=config.max_concurrency,
            timeout=config.timeout_seconds,
            error_parser=parse_fusion_error,
            headers=headers,
            client=client,
        )

    # -- writes --

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        doc_type = self._check_type(request.document_type)
        try:
            body = exactjson.loads(request.payload)
        except ValueError as exc:
            raise PermanentErpError(f"payload is not valid JSON: {exc}", erp=ERP, code="PAYLOAD") from exc
        if not isinstance(body, dict):
            raise PermanentErpError("payload must be a JSON object", erp=ERP, code="PAYLOAD")
        ref = request.external_reference
        if not ref:
            raise PermanentErpError("external_reference is required", erp=ERP, code="PAYLOAD")
        _numbers(body)
        if doc_type == ORDERS:
            body["SourceTransactionNumber"] = ref
            body["SourceTransactionId"] = ref
            body.setdefault("SourceTransactionSystem", self.config.source_transaction_system)
        elif doc_type == RECEIPTS:
            body["ShipmentNumber"] = ref
            await self._resolve_rma(body, request)
        else:
            body["PurchaseOrder"] = ref
        try:
            response = await self.transport.request(
                "POST",
                doc_type,
                content=exactjson.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
                timeout=request.timeout,
            )
        except PermanentErpError as exc:
            if exc.code in _DUPLICATE_CODES or _DUPLICATE_TEXT in exc.erp_message:
                existing = await self.find_document(doc_type, ref)
                if existing is not None:
                    return existing
            raise
        return self._result(doc_type, self._json(response), created=True)

    async def _resolve_rma(self, body: dict[str, Any], request: DocumentRequest) -> None:
        """Fill RMA DocumentNumber/DocumentLineNumber on receipt lines from the source return order."""
        lines = body.get("lines")
        if not isinstance(lines, list):
            return
        needs = any(
            isinstance(ln, dict) and (not ln.get("DocumentNumber") or not ln.get("DocumentLineNumber"))
            for ln in lines
        )
        if not needs:
            for line in lines:
                if isinstance(line, dict):
                    line.pop("SourceTransactionLineId", None)
            return
        if not request.source_document_id:
            raise PermanentErpError(
                "receipt lines lack DocumentNumber/DocumentLineNumber and no source return order was given",
                erp=ERP,
                code="PAYLOAD",
            )
        response = await self.transport.request(
            "GET",
            f"{ORDERS}/{_segment(request.source_document_id)}",
            params={"expand": "lines", "onlyData": "true"},
            timeout=request.timeout,
        )
        order = self._json(response)
        by_source_line = {str(ln.get("SourceTransactionLineId")): ln for ln in child_items(order, "lines")}
        for i, line in enumerate(lines, start=1):
            if not isinstance(line, dict):
                continue
            rms_line = line.pop("SourceTransactionLineId", None)
            line.setdefault("DocumentNumber", order.get("OrderNumber"))
            if not line.get("DocumentLineNumber"):
                match = by_source_line.get(str(rms_line)) if rms_line is not None else None
                if match is None:
                    raise PermanentErpError(
                        f"receipt line {i}: no line with SourceTransactionLineId {rms_line!r} on return order "
                        f"{order.get('OrderNumber')}",
                        erp=ERP,
                        code="PAYLOAD",
                    )
                line["DocumentLineNumber"] = str(match["LineNumber"])

    # -- reads --

    async def find_document(self, document_type: str, external_reference: str) -> DocumentResult | None:
        doc_type = self._check_type(document_type)
        conditions = [(_KEYS[doc_type][2], "=", external_reference)]
        if doc_type == ORDERS:
            conditions.append(("SourceTransactionSystem", "=", self.config.source_transaction_system))
        query = self._q(conditions)
        response = await self.transport.request(
            "GET",
            doc_type,
            params={"q": query, "onlyData": "true", "limit": "2", "orderBy": "CreationDate:asc"},
        )
        items = self._json(response).get("items") or []
        if not items:
            return None
        return self._result(doc_type, items[0], created=False)

    async def read_documents(self, document_type: str, external_reference: str) -> list[ErpHolding]:
        """Every document with this reference, oldest first, with line quantities where the resource has lines."""
        doc_type = self._check_type(document_type)
        conditions = [(_KEYS[doc_type][2], "=", external_reference)]
        if doc_type == ORDERS:
            conditions.append(("SourceTransactionSystem", "=", self.config.source_transaction_system))
        response = await self.transport.request(
            "GET",
            doc_type,
            params={"q": self._q(conditions), "limit": "50", "orderBy": "CreationDate:asc"},
        )
        out = []
        for item in self._json(response).get("items") or []:
            result = self._result(doc_type, item, created=False)
            lines, field = _LINES.get(doc_type, ("", ""))
            rows = item.get(lines) if lines else None
            if rows is None and lines and doc_type != RECEIPTS:
                child = await self.transport.request(
                    "GET", f"{doc_type}/{result.document_id}/child/{lines}", params={"limit": "500"}
                )
                rows = self._json(child).get("items")
            out.append(
                ErpHolding(
                    document_type=doc_type,
                    document_id=result.document_id,
                    external_reference=external_reference,
                    status=result.status,
                    amount=magnitude(item.get("EnteredAmount")) if doc_type == CREDIT_MEMOS else None,
                    currency=str(
                        item.get("CreditMemoCurrency") or item.get("TransactionalCurrencyCode") or ""
                    ),
                    quantities=None
                    if not isinstance(rows, list)
                    else magnitudes([r.get(field) for r in rows if isinstance(r, dict)]),
                )
            )
        return out

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        doc_type = self._check_type(document_type)
        response = await self.transport.request(
            "GET", f"{doc_type}/{_segment(document_id)}", params={"onlyData": "true"}
        )
        return self._result(doc_type, self._json(response), created=False)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        records, next_cursor, more = await self._changes(ONHAND, cursor, limit, fields=None)
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
            id_field, number_field, ref_field, status_field = _KEYS[doc_type]
            extra = ["TransactionalCurrencyCode"] if doc_type == ORDERS else []
            if doc_type == CREDIT_MEMOS:
                extra = ["EnteredAmount", "CreditMemoCurrency"]
            fields = [id_field, number_field, ref_field, status_field, "LastUpdateDate", *extra]
            records, _, has_more = await self._changes(doc_type, cursors.get(doc_type), limit, fields=fields)
            more = more or has_more
            fetched.extend((doc_type, r) for r in records)
        fetched.sort(key=lambda tr: str(tr[1].get("LastUpdateDate", "")))
        taken, rest = fetched[:limit], fetched[limit:]
        more = more or bool(rest)
        out: list[bytes] = []
        for doc_type, record in taken:
            cursors[doc_type] = _advance(cursors.get(doc_type), str(record.get("LastUpdateDate", "")))
            out.append(exactjson.dumps(self._status_record(doc_type, record)).encode())
        return ChangeBatch(records=out, cursor=json.dumps(cursors, sort_keys=True), has_more=more)

    async def _changes(
        self, resource: str, cursor: str | None, limit: int, *, fields: list[str] | None
    ) -> tuple[list[dict[str, Any]], str, bool]:
        """Records of ``resource`` ordered by LastUpdateDate after ``cursor`` ("<ts>|<n already seen at ts>")."""
        since, skip = _split_cursor(cursor)
        limit = max(1, min(limit, self.config.page_size))
        # The records already seen at ``since`` are skipped here, not by offset: a record updated again since
        # (a credit memo voided in the ERP) has left that instant, and an offset would skip a fresh one instead.
        params: dict[str, str] = {
            "onlyData": "true",
            "orderBy": "LastUpdateDate:asc",
            "limit": str(min(limit + skip, self.config.page_size) if since else limit),
            "offset": "0" if since else str(skip),
        }
        if since:
            params["q"] = self._q([("LastUpdateDate", ">=", since)])
        if fields:
            params["fields"] = ",".join(fields)
        body = self._json(await self.transport.request("GET", resource, params=params))
        items = [i for i in body.get("items") or [] if isinstance(i, dict)]
        if since:
            at_since = 0
            while (
                at_since < min(skip, len(items)) and str(items[at_since].get("LastUpdateDate", "")) == since
            ):
                at_since += 1
            cut = len(items) - at_since > limit
            items = items[at_since:][:limit]
        else:
            cut = False
        next_cursor = cursor or ""
        for item in items:
            next_cursor = _advance(next_cursor, str(item.get("LastUpdateDate", "")))
        return items, next_cursor, cut or bool(body.get("hasMore"))

    def _status_record(self, doc_type: str, record: dict[str, Any]) -> dict[str, Any]:
        id_field, number_field, ref_field, status_field = _KEYS[doc_type]
        amount = record.get("EnteredAmount") if doc_type == CREDIT_MEMOS else None
        currency = (
            record.get("CreditMemoCurrency")
            if doc_type == CREDIT_MEMOS
            else record.get("TransactionalCurrencyCode")
        )
        return {
            "DocumentType": doc_type,
            "DocumentId": _str(record.get(id_field)),
            "DocumentNumber": _str(record.get(number_field)),
            "ExternalReference": _str(record.get(ref_field)),
            "StatusCode": _str(record.get(status_field)),
            "Amount": amount,
            "CurrencyCode": currency,
            "LastUpdateDate": record.get("LastUpdateDate"),
        }

    # -- helpers --

    def _q(self, conditions: list[tuple[str, str, str]]) -> str:
        """A q filter in the syntax of the configured framework version (v1 query-by-example, v2+ RowMatch)."""
        if self.config.rest_framework_version == "1":
            for _, _, value in conditions:
                # Query-by-example has no quoting: these characters would split or end the condition.
                if any(c in value for c in ";'\"") or value != value.strip():
                    raise PermanentErpError(
                        f"{value!r} cannot be expressed in a REST-Framework-Version 1 q filter",
                        erp=ERP,
                        code="PAYLOAD",
                    )
            return ";".join(f"{name}{op}{value}" for name, op, value in conditions)
        return " and ".join(f"{name} {op} {_quote(value)}" for name, op, value in conditions)

    def _check_type(self, document_type: str) -> str:
        if document_type not in _KEYS:
            raise PermanentErpError(
                f"oracle_fusion cannot handle document type {document_type!r}; known: {', '.join(DOCUMENT_TYPES)}",
                erp=ERP,
                code="DOCUMENT_TYPE",
            )
        return document_type

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = exactjson.loads(response.content)
        except ValueError as exc:
            raise ErpError(f"Fusion answered with non-JSON: {response.text[:200]!r}", erp=ERP) from exc
        if not isinstance(body, dict):
            raise ErpError("Fusion answered with a non-object JSON body", erp=ERP)
        return body

    def _result(self, doc_type: str, item: dict[str, Any], *, created: bool) -> DocumentResult:
        id_field, number_field, ref_field, status_field = _KEYS[doc_type]
        return DocumentResult(
            document_type=doc_type,
            document_id=_str(item.get(id_field)),
            external_reference=_str(item.get(ref_field)),
            document_number=_str(item.get(number_field)),
            created=created,
            status=_str(item.get(status_field)),
            raw={k: v for k, v in item.items() if k != "links"},
        )

    async def aclose(self) -> None:
        await self.transport.aclose()


def child_items(item: dict[str, Any], child: str) -> list[dict[str, Any]]:
    """An expanded child's rows: a bare array up to framework version 2, a collection object from 3 on."""
    value = item.get(child)
    if isinstance(value, dict):
        value = value.get("items")
    if value is None:
        return []
    if not isinstance(value, list):
        raise ErpError(f"Fusion sent {child!r} as {type(value).__name__}, not a collection", erp=ERP)
    return [row for row in value if isinstance(row, dict)]


def _segment(value: str) -> str:
    """An id or key as one URL path segment (order keys hold ':'; ids never hold '/')."""
    if not value or "/" in value or any(ord(c) < 32 for c in value):
        raise PermanentErpError(f"invalid Fusion id {value!r}", erp=ERP, code="PAYLOAD")
    return urllib.parse.quote(value, safe=":")


def _numbers(node: Any) -> None:
    """Turn decimal strings in known number attributes into Decimals, in place (refusing non-numbers)."""
    if isinstance(node, list):
        for item in node:
            _numbers(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _NUMERIC_FIELDS and isinstance(value, str):
                try:
                    number = Decimal(value.strip())
                except InvalidOperation:
                    raise PermanentErpError(
                        f"{key} must be a decimal number, got {value!r}", erp=ERP, code="PAYLOAD"
                    ) from None
                if not number.is_finite():
                    raise PermanentErpError(
                        f"{key} must be a finite number, got {value!r}", erp=ERP, code="PAYLOAD"
                    )
                node[key] = number
            else:
                _numbers(value)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _split_cursor(cursor: str | None) -> tuple[str, int]:
    if not cursor:
        return "", 0
    ts, _, seen = cursor.rpartition("|")
    if not ts:
        return cursor, 0
    try:
        return ts, int(seen)
    except ValueError:
        raise PermanentErpError(f"invalid change cursor {cursor!r}", erp=ERP, code="CURSOR") from None


def _advance(cursor: str | None, ts: str) -> str:
    """The cursor after consuming one record stamped ``ts`` (records arrive in LastUpdateDate order)."""
    since, seen = _split_cursor(cursor)
    if ts == since:
        return f"{ts}|{seen + 1}"
    return f"{ts}|1"
