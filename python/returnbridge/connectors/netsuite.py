"""NetSuite SuiteTalk REST connector: record upserts and transforms, SuiteQL lookups and change feeds."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from returnbridge import exactjson
from returnbridge.connectors.base import ChangeBatch, DocumentRequest, DocumentResult
from returnbridge.connectors.http import HttpTransport
from returnbridge.connectors.netsuite_auth import (
    ERP,
    NetSuiteAuthConfig,
    OAuth2AuthConfig,
    OAuth2ClientCredentials,
    TbaAuth,
    TbaAuthConfig,
    fetch_oauth2_token,
)
from returnbridge.connectors.secrets import read_secret
from returnbridge.errors import AmbiguousErpError, PermanentErpError, TransientErpError

RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"

# Connector document type -> SuiteQL transaction.type code.
TRANSACTION_TYPES: dict[str, str] = {
    "returnAuthorization": "RtnAuth",
    "itemReceipt": "ItemRcpt",
    "creditMemo": "CustCred",
    "cashRefund": "CashRfnd",
}
DOCUMENT_TYPES = {code: doc for doc, code in TRANSACTION_TYPES.items()}
# Which record types each document type may be transformed from.
TRANSFORM_SOURCES: dict[str, frozenset[str]] = {
    "returnAuthorization": frozenset({"salesOrder", "cashSale", "invoice"}),
    "itemReceipt": frozenset({"returnAuthorization"}),
    "creditMemo": frozenset({"returnAuthorization"}),
    "cashRefund": frozenset({"returnAuthorization"}),
}
# A payload's ``createdFrom`` names a record of this type when the worker gave no source.
DEFAULT_SOURCE = {
    "returnAuthorization": "salesOrder",
    "itemReceipt": "returnAuthorization",
    "creditMemo": "returnAuthorization",
    "cashRefund": "returnAuthorization",
}
# NetSuite cannot create these without a source record.
SOURCE_REQUIRED = frozenset({"itemReceipt", "cashRefund"})

_STATUS_COLUMNS = (
    "id, tranid, externalid, type, status, BUILTIN.DF(status) AS statusname, entity, "
    "BUILTIN.DF(currency) AS currency, foreigntotal AS total, createdfrom, trandate, "
    "TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified"
)
_INVENTORY_COLUMNS = (
    "item, BUILTIN.DF(item) AS itemid, location, BUILTIN.DF(location) AS locationname, quantityonhand, "
    "quantityavailable, quantitycommitted, quantityonorder, "
    "TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified"
)
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class NetSuiteConfig(BaseModel):
    """One NetSuite account (``kind: netsuite``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["netsuite"] = "netsuite"
    #: Account id as NetSuite shows it: "1234567", sandbox "1234567_SB1".
    account_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")
    #: Default https://<account id, "_" -> "-", lower case>.suitetalk.api.netsuite.com
    base_url: str | None = None
    #: OAuth 1.0a realm; default: the account id in upper case with "-" -> "_".
    realm: str | None = None
    auth: NetSuiteAuthConfig
    #: This integration's share of the account concurrency limit (developer accounts: 5 in total).
    max_concurrency: int = Field(default=5, ge=1, le=200)
    timeout: float = Field(default=30.0, gt=0, le=900)
    #: SuiteQL rows per request (NetSuite caps it at 1000).
    page_size: int = Field(default=1000, ge=1, le=1000)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    def resolved_base_url(self) -> str:
        return (
            self.base_url or f"https://{self.account_id.replace('_', '-').lower()}.suitetalk.api.netsuite.com"
        )

    def resolved_realm(self) -> str:
        return self.realm or self.account_id.replace("-", "_").upper()


# -- exact JSON: shared encoder, re-exported under the names this module always had ----------------


def parse_netsuite_error(response: httpx.Response) -> tuple[str, str]:
    """(o:errorCode, detail [+ error path]) from a NetSuite error body; OAuth bodies use ``error``."""
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("error body is not an object")
    details = body.get("o:errorDetails")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        message = str(first.get("detail") or body.get("title") or "")
        if first.get("o:errorPath"):
            message += f" (path: {first['o:errorPath']})"
        return str(first.get("o:errorCode") or body.get("status") or ""), message
    if "error" in body:
        return str(body["error"]), str(body.get("error_description") or body["error"])
    return str(body.get("status") or response.status_code), str(body.get("title") or body.get("detail") or "")


def suiteql_literal(value: str) -> str:
    """A SuiteQL string literal; quotes doubled, control characters refused (never reach the query)."""
    if any(ord(c) < 32 for c in value):
        raise PermanentErpError(
            "control characters are not allowed in a lookup value", erp=ERP, code="INVALID_REFERENCE"
        )
    return "'" + value.replace("'", "''") + "'"


# -- cursors --------------------------------------------------------------------------------------


def _decode_cursor(cursor: str | None) -> tuple[str, set[str]]:
    """``"<timestamp>|<key>,<key>"``: the last second delivered and the rows already delivered in it."""
    if not cursor:
        return "", set()
    stamp, _, keys = cursor.partition("|")
    if not _TIMESTAMP.match(stamp):
        raise PermanentErpError(f"malformed NetSuite cursor {cursor!r}", erp=ERP, code="INVALID_CURSOR")
    return stamp, {k for k in keys.split(",") if k}


def _encode_cursor(stamp: str, keys: set[str]) -> str:
    return stamp + "|" + ",".join(sorted(keys))


class NetSuiteConnector:
    """Connector for one NetSuite account (see docs/erp/netsuite.md for payloads and records).

    Args:
        config: the account's configuration; secrets are resolved here and never logged.
        client: an httpx client to use instead of a pooled one (tests inject ``MockTransport``).
    """

    kind = "netsuite"
    erp = ERP

    def __init__(self, config: NetSuiteConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        base_url = config.resolved_base_url()
        self._http = HttpTransport(
            erp=ERP,
            base_url=base_url,
            max_concurrency=config.max_concurrency,
            timeout=config.timeout,
            error_parser=parse_netsuite_error,
            headers={"Accept": "application/json"},
            client=client,
        )
        self._auth: httpx.Auth = self._build_auth(config, base_url)

    def _build_auth(self, config: NetSuiteConfig, base_url: str) -> httpx.Auth:
        auth = config.auth
        if isinstance(auth, TbaAuthConfig):
            return TbaAuth(
                realm=config.resolved_realm(),
                consumer_key=auth.consumer_key,
                consumer_secret=read_secret(
                    auth.consumer_secret,
                    auth.consumer_secret_env,
                    auth.consumer_secret_file,
                    name="consumer_secret",
                ),
                token_id=auth.token_id,
                token_secret=read_secret(
                    auth.token_secret, auth.token_secret_env, auth.token_secret_file, name="token_secret"
                ),
            )
        assert isinstance(auth, OAuth2AuthConfig)
        key: SecretStr = read_secret(
            auth.private_key, auth.private_key_env, auth.private_key_file, name="private_key"
        )
        token_url = auth.token_url or base_url + TOKEN_PATH
        oauth2 = auth

        async def fetch(deadline: float | None) -> tuple[str, float]:
            limit = min(deadline, config.timeout) if deadline is not None else config.timeout
            return await fetch_oauth2_token(self._http.client, oauth2, key, token_url, deadline=limit)

        return OAuth2ClientCredentials(fetch)

    def __repr__(self) -> str:
        return f"NetSuiteConnector(account_id={self.config.account_id!r}, auth={self.config.auth.method!r})"

    # -- Connector interface ----------------------------------------------------------------------

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        doc_type = request.document_type
        if doc_type not in TRANSACTION_TYPES:
            raise PermanentErpError(
                f"unsupported NetSuite document type {doc_type!r}; expected one of {', '.join(TRANSACTION_TYPES)}",
                erp=ERP,
                code="UNSUPPORTED_DOCUMENT_TYPE",
            )
        ref = request.external_reference
        if not ref or len(ref) > 255:
            raise PermanentErpError(
                "external_reference must be 1..255 characters", erp=ERP, code="INVALID_REFERENCE"
            )
        body = self._payload(request)
        source_type, source_id = self._source(request, body)
        # One request per document: the PUT upsert by external id is idempotent, and a transform that
        # repeats an externalId is refused. Looking up first is the worker's job, and only when an earlier
        # attempt's outcome is unknown; the 204 + Location answer names the record, so nothing is read back.
        if source_id:
            try:
                response = await self._request(
                    "POST",
                    f"{RECORD_PATH}/{source_type}/{_path_id(source_id)}/!transform/{doc_type}",
                    content=exactjson.dumps_bytes(body),
                    headers={"Content-Type": "application/json"},
                    deadline=request.timeout,
                )
            except PermanentErpError:
                # NetSuite's code for a repeated externalId is not documented (the simulator says DUP_RCRD),
                # so any refusal is checked: if an earlier attempt's document holds our externalId, it is the
                # answer. This costs a lookup only on the error path.
                again = await self.find_document(doc_type, ref, deadline=request.timeout)
                if again is None:
                    raise
                return replace(again, created=False)
        else:
            response = await self._request(
                "PUT",
                f"{RECORD_PATH}/{doc_type}/eid:{_path_id(ref)}",
                content=exactjson.dumps_bytes(body),
                headers={"Content-Type": "application/json"},
                deadline=request.timeout,
            )
        return DocumentResult(doc_type, _id_from_location(response), ref, created=True)

    async def find_document(
        self, document_type: str, external_reference: str, *, deadline: float | None = None
    ) -> DocumentResult | None:
        code = TRANSACTION_TYPES.get(document_type)
        if code is None:
            raise PermanentErpError(
                f"unsupported NetSuite document type {document_type!r}",
                erp=ERP,
                code="UNSUPPORTED_DOCUMENT_TYPE",
            )
        query = (
            f"SELECT {_STATUS_COLUMNS} FROM transaction "
            f"WHERE externalid = {suiteql_literal(external_reference)} AND type = {suiteql_literal(code)}"
        )
        rows, _ = await self._suiteql(query, limit=2, offset=0, deadline=deadline)
        if not rows:
            return None
        row = rows[0]
        return DocumentResult(
            document_type=document_type,
            document_id=row["id"],
            external_reference=row.get("externalid", ""),
            document_number=row.get("tranid", ""),
            created=False,
            status=row.get("statusname", ""),
            raw=row,
        )

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        if document_type not in TRANSACTION_TYPES:
            raise PermanentErpError(
                f"unsupported NetSuite document type {document_type!r}",
                erp=ERP,
                code="UNSUPPORTED_DOCUMENT_TYPE",
            )
        record = await self._get_record(document_type, document_id, None)
        return _result_from_record(document_type, document_id, record, created=False)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        return await self._feed(
            "aggregateItemLocation", _INVENTORY_COLUMNS, "", "item, location", cursor, limit, _inventory_key
        )

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        types = ", ".join(suiteql_literal(code) for code in TRANSACTION_TYPES.values())
        return await self._feed(
            "transaction", _STATUS_COLUMNS, f"type IN ({types})", "id", cursor, limit, _status_key
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- helpers ----------------------------------------------------------------------------------

    def _payload(self, request: DocumentRequest) -> dict[str, Any]:
        try:
            body = exactjson.loads(request.payload) if request.payload else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentErpError(f"payload is not JSON: {exc}", erp=ERP, code="INVALID_PAYLOAD") from exc
        if not isinstance(body, dict):
            raise PermanentErpError(
                "payload must be a JSON object (a NetSuite record body)", erp=ERP, code="INVALID_PAYLOAD"
            )
        body["externalId"] = request.external_reference
        return body

    def _source(self, request: DocumentRequest, body: dict[str, Any]) -> tuple[str, str]:
        doc_type = request.document_type
        created_from = body.pop("createdFrom", None)
        source_type, source_id = request.source_document_type, request.source_document_id
        if not source_id and isinstance(created_from, dict) and created_from.get("id"):
            source_type, source_id = DEFAULT_SOURCE[doc_type], str(created_from["id"])
        if source_id:
            source_type = source_type or DEFAULT_SOURCE[doc_type]
            if source_type not in TRANSFORM_SOURCES[doc_type]:
                raise PermanentErpError(
                    f"NetSuite cannot transform {source_type!r} into {doc_type!r}",
                    erp=ERP,
                    code="INVALID_TRANSFORM",
                )
        elif doc_type in SOURCE_REQUIRED:
            raise PermanentErpError(
                f"{doc_type} is created from its returnAuthorization: source_document_id (or createdFrom) is required",
                erp=ERP,
                code="MISSING_SOURCE_DOCUMENT",
            )
        return source_type, source_id

    async def _request(
        self, method: str, url: str, *, deadline: float | None, **kwargs: Any
    ) -> httpx.Response:
        return await self._http.request(method, url, timeout=deadline, auth=self._auth, **kwargs)

    async def _get_record(
        self, document_type: str, document_id: str, deadline: float | None
    ) -> dict[str, Any]:
        response = await self._request(
            "GET", f"{RECORD_PATH}/{document_type}/{_path_id(document_id)}", deadline=deadline
        )
        try:
            record = exactjson.loads(response.content)
        except ValueError as exc:
            raise TransientErpError(
                f"NetSuite sent a record that is not JSON: {exc}", erp=ERP, code="BAD_RESPONSE"
            ) from exc
        if not isinstance(record, dict):
            raise TransientErpError(
                "NetSuite sent a record that is not an object", erp=ERP, code="BAD_RESPONSE"
            )
        return record

    async def _suiteql(
        self, query: str, *, limit: int, offset: int, deadline: float | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        try:
            response = await self._request(
                "POST",
                SUITEQL_PATH,
                params={"limit": str(limit), "offset": str(offset)},
                content=exactjson.dumps_bytes({"q": query}),
                headers={"Content-Type": "application/json", "Prefer": "transient"},
                deadline=deadline,
            )
        except AmbiguousErpError as exc:
            # SuiteQL only reads; a lost answer changed nothing.
            raise TransientErpError(
                exc.erp_message, erp=ERP, code=exc.code, http_status=exc.http_status
            ) from exc
        try:
            body = exactjson.loads(response.content)
            items = body["items"]
            has_more = bool(body.get("hasMore", False))
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientErpError(
                f"unexpected SuiteQL response: {exc}", erp=ERP, code="BAD_RESPONSE"
            ) from exc
        rows = [
            {k: _as_text(v) for k, v in item.items() if k != "links"}
            for item in items
            if isinstance(item, dict)
        ]
        return rows, has_more

    async def _feed(
        self,
        table: str,
        columns: str,
        condition: str,
        order: str,
        cursor: str | None,
        limit: int,
        key: Any,
    ) -> ChangeBatch:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        stamp, seen = _decode_cursor(cursor)
        where = [condition] if condition else []
        if stamp:
            where.append(
                f"lastmodifieddate >= TO_TIMESTAMP({suiteql_literal(stamp)}, 'YYYY-MM-DD HH24:MI:SS')"
            )
        query = f"SELECT {columns} FROM {table}"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += f" ORDER BY lastmodifieddate, {order}"
        # Rows already delivered at the cursor's second come back (>=); fetch enough to get past them.
        want = min(limit + len(seen), self.config.page_size)
        rows, more = await self._suiteql(query, limit=want, offset=0)
        fresh = [r for r in rows if not (r.get("lastmodified") == stamp and key(r) in seen)]
        page = fresh[:limit]
        has_more = more or len(fresh) > limit
        if not page:
            if has_more:
                raise TransientErpError(
                    f"more than {self.config.page_size} {table} rows share the second {stamp}; cannot page past them",
                    erp=ERP,
                    code="CURSOR_STALLED",
                )
            return ChangeBatch(
                records=[], cursor=cursor or _encode_cursor("0001-01-01 00:00:00", set()), has_more=False
            )
        last = page[-1].get("lastmodified", "")
        if not _TIMESTAMP.match(last):
            raise TransientErpError(
                f"SuiteQL row without a usable lastmodified: {last!r}", erp=ERP, code="BAD_RESPONSE"
            )
        keys = {key(r) for r in page if r.get("lastmodified") == last}
        if last == stamp:
            keys |= seen
        records = [exactjson.dumps_bytes(_with_document_type(r)) for r in page]
        return ChangeBatch(records=records, cursor=_encode_cursor(last, keys), has_more=has_more)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def _inventory_key(row: dict[str, Any]) -> str:
    # The quantity is part of the key: a second change within the same second must not be skipped.
    return f"{row.get('item', '')}:{row.get('location', '')}:{row.get('quantityonhand', '')}"


def _status_key(row: dict[str, Any]) -> str:
    return f"{row.get('id', '')}:{row.get('status', '')}:{row.get('total', '')}"


def _with_document_type(row: dict[str, Any]) -> dict[str, Any]:
    if "type" in row and row["type"] in DOCUMENT_TYPES:
        return {**row, "documenttype": DOCUMENT_TYPES[row["type"]]}
    return row


def _path_id(value: str) -> str:
    """An id or external id as one URL path segment: percent-encoded, so ``%41`` stays ``%41``.

    A "/" is refused rather than encoded: servers and proxies commonly decode ``%2F`` before routing.
    """
    if not value or "/" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PermanentErpError(f"invalid NetSuite id {value!r}", erp=ERP, code="INVALID_REFERENCE")
    return urllib.parse.quote(value, safe="")


def _id_from_location(response: httpx.Response) -> str:
    location = response.headers.get("Location", "")
    document_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
    if not document_id or not document_id.isdigit():
        # The write went through but we cannot tell which record it made: look it up before retrying.
        raise AmbiguousErpError(
            f"NetSuite answered {response.status_code} without a usable Location header ({location!r})",
            erp=ERP,
            code="NO_LOCATION",
            http_status=response.status_code,
        )
    return document_id


def _ref_name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("refName") or value.get("id") or "")
    return "" if value is None else str(value)


def _result_from_record(
    document_type: str, document_id: str, record: dict[str, Any], *, created: bool
) -> DocumentResult:
    return DocumentResult(
        document_type=document_type,
        document_id=str(record.get("id") or document_id),
        external_reference=str(record.get("externalId") or ""),
        document_number=str(record.get("tranId") or ""),
        created=created,
        status=_ref_name(record.get("status")),
        raw=record,
    )


__all__ = [
    "NetSuiteConfig",
    "NetSuiteConnector",
    "OAuth2AuthConfig",
    "TbaAuthConfig",
    "parse_netsuite_error",
]
