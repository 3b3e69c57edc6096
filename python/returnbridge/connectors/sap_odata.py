"""SAP S/4HANA OData v2 connector: customer returns, returns-delivery goods receipt, credit memo requests, stock."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from returnbridge.connectors.base import (
    ChangeBatch,
    DocumentRequest,
    DocumentResult,
    ErpHolding,
    magnitude,
    magnitudes,
)
from returnbridge.connectors.http import HttpTransport
from returnbridge.connectors.sap_odata_wire import (
    SapODataConfig,
    check_no_json_numbers,
    date_ms,
    entity_record,
    key_literal,
    numeric_key,
    parse_odata_error,
    quote_literal,
)
from returnbridge.connectors.secrets import read_secret
from returnbridge.domain.erps import SAP_S4HANA
from returnbridge.errors import (
    AmbiguousErpError,
    ErpAuthError,
    ErpError,
    PermanentErpError,
    TransientErpError,
)

ERP = SAP_S4HANA.name
CUSTOMER_RETURN = "A_CustomerReturn"
RETURNS_DELIVERY = "A_ReturnsDeliveryHeader"
CREDIT_MEMO_REQUEST = "A_CreditMemoRequest"
_ODATA_ROOT = "/sap/opu/odata/sap/"
# Delivery item fields the goods-receipt payload may set (PATCH A_ReturnsDeliveryItem).
_DELIVERY_ITEM_FIELDS = (
    "ActualDeliveryQuantity",
    "DeliveryQuantityUnit",
    "Plant",
    "StorageLocation",
    "Batch",
    "CostCenter",
    "ProfitCenter",
    "GLAccount",
    "ControllingArea",
    "GoodsMovementReasonCode",
    "WarehouseStockCategory",
)
_STOCK_ORDER = (
    "Material,Plant,StorageLocation,Batch,Supplier,Customer,WBSElementInternalID,SDDocument,"
    "SDDocumentItem,InventorySpecialStockType,InventoryStockType"
)
_SNAPSHOT = "snapshot:"


class SapODataConnector:
    """The ``Connector`` for S/4HANA over OData v2 (basic auth or OAuth 2.0, CSRF token + session cookie).

    Args:
        config: the ``sap_odata`` section.
        client: an ``httpx.AsyncClient`` to use instead of a pooled one (tests with ``MockTransport``).
    """

    kind = "sap_odata"
    erp = ERP

    def __init__(self, config: SapODataConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = HttpTransport(
            erp=ERP,
            base_url=config.base_url,
            max_concurrency=config.max_concurrency,
            timeout=config.timeout,
            error_parser=parse_odata_error,
            headers={"Accept": "application/json"},
            client=client,
        )
        self._password = (
            read_secret(config.password, config.password_env, config.password_file, name="sap_odata password")
            if config.auth == "basic"
            else None
        )
        self._client_secret = (
            read_secret(
                config.client_secret,
                config.client_secret_env,
                config.client_secret_file,
                name="sap_odata client_secret",
            )
            if config.auth == "oauth2"
            else None
        )
        self._csrf: str | None = None
        self._csrf_lock = asyncio.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    # -- plumbing ---------------------------------------------------------------------------------------

    def _url(self, service: str, path: str = "") -> str:
        return f"{_ODATA_ROOT}{service}/{path}"

    def _params(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        params = dict(extra or {})
        if self.config.sap_client:
            params["sap-client"] = self.config.sap_client
        return params

    async def _auth_header(self, *, refresh: bool = False) -> str:
        if self.config.auth == "basic":
            assert self._password is not None
            raw = f"{self.config.username}:{self._password.get_secret_value()}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        async with self._token_lock:
            if refresh or self._token is None or time.monotonic() >= self._token_expires:
                await self._fetch_token()
            return f"Bearer {self._token}"

    async def _fetch_token(self) -> None:
        assert self._client_secret is not None and self.config.token_url
        data = {"grant_type": "client_credentials"}
        if self.config.scope:
            data["scope"] = self.config.scope
        response = await self._http.send(
            "POST",
            self.config.token_url,
            data=data,
            auth=(self.config.client_id or "", self._client_secret.get_secret_value()),
        )
        if response.status_code in (400, 401, 403):
            raise ErpAuthError(
                f"OAuth token request refused: {response.text[:200]}",
                erp=ERP,
                code="OAUTH",
                http_status=response.status_code,
            )
        if response.status_code >= 400:
            raise self._http.error_for(response)
        try:
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ErpAuthError("OAuth token response without access_token", erp=ERP, code="OAUTH") from exc
        # Renew a little early so a token never expires in flight.
        self._token_expires = time.monotonic() + max(0.0, lifetime - 30)

    async def _fetch_csrf(self, service: str, deadline: float | None) -> str:
        response = await self._http.send(
            "GET",
            self._url(service),
            params=self._params(),
            headers={"X-CSRF-Token": "Fetch", "Authorization": await self._auth_header()},
            timeout=deadline,
        )
        if response.status_code >= 400:
            raise self._error(response)
        token: str | None = response.headers.get("x-csrf-token")
        if not token or token.lower() == "required":
            raise TransientErpError(
                "SAP returned no CSRF token", erp=ERP, code="CSRF", http_status=response.status_code
            )
        return token

    def _error(self, response: httpx.Response) -> ErpError:
        error = self._http.error_for(response)
        if response.status_code == 403 and not isinstance(error, ErpAuthError):
            # 403 from SAP is a missing authorization (role) for the API user: a human must fix it.
            return ErpAuthError(error.erp_message, erp=ERP, code=error.code, http_status=403)
        return error

    async def _call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        deadline: float | None = None,
        allow: tuple[int, ...] = (),
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One OData call with auth, CSRF for writes (refreshed once on 403 Required), OAuth refresh on 401."""
        write = method not in ("GET", "HEAD")
        refreshed_csrf = refreshed_token = False
        while True:
            headers = {"Authorization": await self._auth_header(), **(extra_headers or {})}
            if write:
                async with self._csrf_lock:
                    if self._csrf is None:
                        self._csrf = await self._fetch_csrf(service, deadline)
                    headers["X-CSRF-Token"] = self._csrf
            kwargs: dict[str, Any] = {"params": self._params(params), "headers": headers, "timeout": deadline}
            if body is not None:
                kwargs["content"] = json.dumps(body, default=str).encode()
                headers["Content-Type"] = "application/json"
            response = await self._http.send(method, self._url(service, path), **kwargs)
            if (
                response.status_code == 403
                and (
                    response.headers.get("x-csrf-token", "").lower() == "required"
                    or "csrf token validation failed" in response.text.lower()
                )
                and write
                and not refreshed_csrf
            ):
                refreshed_csrf = True
                async with self._csrf_lock:
                    self._csrf = None
                continue
            if response.status_code == 401 and self.config.auth == "oauth2" and not refreshed_token:
                refreshed_token = True
                await self._auth_header(refresh=True)
                continue
            if response.status_code >= 400 and response.status_code not in allow:
                raise self._error(response)
            return response

    async def _patch(
        self, service: str, path: str, body: dict[str, Any], *, etag: str | None, deadline: float | None
    ) -> None:
        """A PATCH naming the ETag read: S/4HANA refuses a change without If-Match (428, KBA 3514624) and one
        whose ETag went stale (412). A stale one is read again, once: the values sent are the RMS's and win."""
        for _ in range(2):
            if etag is None:
                etag = await self._read_etag(service, path, deadline)
            response = await self._call(
                "PATCH",
                service,
                path,
                body=body,
                deadline=deadline,
                allow=(412,),
                extra_headers={"If-Match": etag} if etag else None,
            )
            if response.status_code != 412:
                return
            etag = None
        raise TransientErpError(f"{path} kept changing while we wrote it (412 twice)", erp=ERP, code="412")

    async def _read_etag(self, service: str, path: str, deadline: float | None) -> str | None:
        """The entity's current ETag (header, else ``__metadata``); None when the system sends none."""
        response = await self._call("GET", service, path, deadline=deadline)
        return response.headers.get("ETag") or _etag_of(self._json(response))

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise TransientErpError(
                f"SAP answered with invalid JSON: {exc}", erp=ERP, code="BAD_RESPONSE"
            ) from exc
        if not isinstance(body, dict) or not isinstance(body.get("d"), dict):
            raise TransientErpError("SAP answer lacks the OData 'd' envelope", erp=ERP, code="BAD_RESPONSE")
        return body["d"]  # type: ignore[no-any-return]

    def _service_for(self, document_type: str) -> tuple[str, str]:
        """(service, key property) of a header entity set."""
        if document_type == CUSTOMER_RETURN:
            return self.config.customer_return_service, "CustomerReturn"
        if document_type == CREDIT_MEMO_REQUEST:
            return self.config.credit_memo_request_service, "CreditMemoRequest"
        if document_type == RETURNS_DELIVERY:
            return self.config.returns_delivery_service, "DeliveryDocument"
        raise PermanentErpError(
            f"sap_odata cannot handle document type {document_type!r}",
            erp=ERP,
            code="UNSUPPORTED_DOCUMENT_TYPE",
        )

    def _result(
        self, document_type: str, entity: dict[str, Any], *, created: bool, reference: str = ""
    ) -> DocumentResult:
        _, key = self._service_for(document_type)
        number = str(entity.get(key, ""))
        status_field = (
            "OverallGoodsMovementStatus" if document_type == RETURNS_DELIVERY else "OverallSDProcessStatus"
        )
        ref_field = (
            "DeliveryDocumentBySupplier" if document_type == RETURNS_DELIVERY else "PurchaseOrderByCustomer"
        )
        return DocumentResult(
            document_type=document_type,
            document_id=number,
            external_reference=reference or str(entity.get(ref_field, "")),
            document_number=number,
            created=created,
            status=str(entity.get(status_field, "")),
            raw=entity_record(entity),
        )

    # -- Connector interface ------------------------------------------------------------------------------

    async def create_document(self, request: DocumentRequest) -> DocumentResult:
        try:
            payload = json.loads(request.payload, parse_float=Decimal)
        except ValueError as exc:
            raise PermanentErpError(f"payload is not JSON: {exc}", erp=ERP, code="PAYLOAD") from exc
        if not isinstance(payload, dict):
            raise PermanentErpError("payload must be a JSON object", erp=ERP, code="PAYLOAD")
        check_no_json_numbers(payload)
        if not request.external_reference or len(request.external_reference) > 35:
            raise PermanentErpError(
                "external_reference must be 1..35 characters (PurchaseOrderByCustomer)",
                erp=ERP,
                code="REFERENCE",
            )
        try:
            async with asyncio.timeout(request.timeout):
                if request.document_type in (CUSTOMER_RETURN, CREDIT_MEMO_REQUEST):
                    return await self._create_sales_document(request, payload)
                if request.document_type == RETURNS_DELIVERY:
                    return await self._post_goods_receipt(request, payload)
                self._service_for(request.document_type)
                raise AssertionError("unreachable")
        except TimeoutError as exc:
            raise AmbiguousErpError(
                f"deadline of {request.timeout}s passed while creating {request.document_type}",
                erp=ERP,
                code="DEADLINE",
            ) from exc

    async def _create_sales_document(
        self, request: DocumentRequest, payload: dict[str, Any]
    ) -> DocumentResult:
        # One request per document: S/4HANA accepts a repeated customer reference by default, so the
        # worker looks up first whenever an earlier attempt's outcome is unknown, not this method.
        doc_type, ref = request.document_type, request.external_reference
        body = dict(payload)
        body["PurchaseOrderByCustomer"] = ref
        if (
            doc_type == CREDIT_MEMO_REQUEST
            and request.source_document_id
            and not body.get("ReferenceSDDocument")
        ):
            body["ReferenceSDDocument"] = request.source_document_id
        service, _ = self._service_for(doc_type)
        try:
            response = await self._call("POST", service, doc_type, body=body, deadline=request.timeout)
        except PermanentErpError as exc:
            if exc.code == "V4/115":  # the system refuses a repeated customer reference: it is already there
                found = await self.find_document(doc_type, ref, deadline=request.timeout)
                if found is not None:
                    return found
            raise
        return self._result(doc_type, self._json(response), created=True, reference=ref)

    async def _post_goods_receipt(self, request: DocumentRequest, payload: dict[str, Any]) -> DocumentResult:
        service = self.config.returns_delivery_service
        source = request.source_document_id
        if not source:
            raise PermanentErpError(
                "A_ReturnsDeliveryHeader needs source_document_id (the customer return)",
                erp=ERP,
                code="SOURCE_REQUIRED",
            )
        items_in = payload.get("Items")
        if not isinstance(items_in, list) or not items_in:
            raise PermanentErpError("payload needs a non-empty Items array", erp=ERP, code="PAYLOAD")
        response = await self._call(
            "GET",
            service,
            "A_ReturnsDeliveryItem",
            params={
                "$filter": f"ReferenceSDDocument eq {quote_literal(source)}",
                "$expand": "to_SerialDeliveryItem/to_MaintenanceItemObject",
            },
            deadline=request.timeout,
        )
        delivery_items = self._json(response).get("results", [])
        if not delivery_items:
            # The returns delivery is created by a follow-up process; it may simply not exist yet.
            raise TransientErpError(
                f"no returns delivery for customer return {source} yet", erp=ERP, code="NO_RETURNS_DELIVERY"
            )
        number = str(delivery_items[0]["DeliveryDocument"])
        header = self._json(
            await self._call(
                "GET", service, f"A_ReturnsDeliveryHeader({key_literal(number)})", deadline=request.timeout
            )
        )
        if header.get("OverallGoodsMovementStatus") == "C":
            return self._result(RETURNS_DELIVERY, header, created=False)
        by_ref_item = {int(str(i["ReferenceSDDocumentItem"]) or 0): i for i in delivery_items}
        plan: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = []
        for index, item in enumerate(items_in):
            if not isinstance(item, dict):
                raise PermanentErpError(f"Items[{index}] must be an object", erp=ERP, code="PAYLOAD")
            ref_item = str(item.get("ReferenceSDDocumentItem", ""))
            if not ref_item.isdigit() or int(ref_item) not in by_ref_item:
                raise PermanentErpError(
                    f"Items[{index}]: customer return {source} has no delivery item for return item {ref_item!r}",
                    erp=ERP,
                    code="NO_DELIVERY_ITEM",
                )
            target = by_ref_item[int(ref_item)]
            changes = {k: item[k] for k in _DELIVERY_ITEM_FIELDS if item.get(k) not in (None, "")}
            serials = item.get("SerialNumbers") or []
            if not isinstance(serials, list) or not all(isinstance(s, str) for s in serials):
                raise PermanentErpError(
                    f"Items[{index}].SerialNumbers must be strings", erp=ERP, code="PAYLOAD"
                )
            plan.append((target, changes, serials))
        for target, changes, serials in plan:
            key = (
                f"A_ReturnsDeliveryItem(DeliveryDocument={key_literal(number)},"
                f"DeliveryDocumentItem={key_literal(str(target['DeliveryDocumentItem']))})"
            )
            if changes:
                await self._patch(service, key, changes, etag=_etag_of(target), deadline=request.timeout)
            serial_list = target.get("to_SerialDeliveryItem") or {}
            present = {
                o.get("SerialNumber")
                for o in (serial_list.get("to_MaintenanceItemObject") or {}).get("results", [])
            }
            for serial in serials:
                if serial in present:
                    continue
                await self._call(
                    "POST",
                    service,
                    f"A_ReturnsDeliverySrlNmbr({numeric_key(serial_list.get('MaintenanceItemObjectList'))})/to_MaintenanceItemObject",
                    body={"SerialNumber": serial, "Material": target.get("Material", "")},
                    deadline=request.timeout,
                )
        await self._patch(
            service,
            f"A_ReturnsDeliveryHeader({key_literal(number)})",
            {"DeliveryDocumentBySupplier": request.external_reference},
            etag=_etag_of(header),
            deadline=request.timeout,
        )
        movement_ms = date_ms(payload.get("ActualGoodsMovementDate"))
        moved = (
            datetime.fromtimestamp(movement_ms / 1000, UTC) if movement_ms is not None else datetime.now(UTC)
        )
        params = {
            "DeliveryDocument": quote_literal(number),
            "ActualGoodsMovementDate": f"datetime'{moved:%Y-%m-%dT00:00}'",
        }
        try:
            response = await self._call(
                "POST", service, "PostGoodsReceipt", params=params, deadline=request.timeout
            )
        except PermanentErpError as exc:
            if exc.code == "VL/609":  # already posted by an earlier attempt whose answer was lost
                header = self._json(
                    await self._call(
                        "GET",
                        service,
                        f"A_ReturnsDeliveryHeader({key_literal(number)})",
                        deadline=request.timeout,
                    )
                )
                return self._result(RETURNS_DELIVERY, header, created=False)
            raise
        return self._result(
            RETURNS_DELIVERY, self._json(response), created=True, reference=request.external_reference
        )

    async def find_document(
        self, document_type: str, external_reference: str, *, deadline: float | None = None
    ) -> DocumentResult | None:
        service, key = self._service_for(document_type)
        if document_type == RETURNS_DELIVERY:
            flt = f"DeliveryDocumentBySupplier eq {quote_literal(external_reference)}"
        else:
            flt = f"PurchaseOrderByCustomer eq {quote_literal(external_reference)}"
        response = await self._call(
            "GET",
            service,
            document_type,
            params={"$filter": flt, "$orderby": key, "$top": "5"},
            deadline=deadline,
        )
        for entity in self._json(response).get("results", []):
            # A delivery only counts once its goods receipt is posted; before that the step is not done.
            if document_type == RETURNS_DELIVERY and entity.get("OverallGoodsMovementStatus") != "C":
                continue
            return self._result(document_type, entity, created=False, reference=external_reference)
        return None

    async def read_documents(self, document_type: str, external_reference: str) -> list[ErpHolding]:
        """Every header with this reference (PurchaseOrderByCustomer / DeliveryDocumentBySupplier), with items."""
        service, key = self._service_for(document_type)
        delivery = document_type == RETURNS_DELIVERY
        ref_field = "DeliveryDocumentBySupplier" if delivery else "PurchaseOrderByCustomer"
        params = {
            "$filter": f"{ref_field} eq {quote_literal(external_reference)}",
            "$orderby": key,
            "$top": "50",
        }
        if not delivery:
            params["$expand"] = "to_Item"
        response = await self._call("GET", service, document_type, params=params)
        out = []
        for entity in self._json(response).get("results", []):
            result = self._result(document_type, entity, created=False, reference=external_reference)
            items = entity.get("to_Item") or {}
            items = items.get("results", []) if isinstance(items, dict) else items
            out.append(
                ErpHolding(
                    document_type=document_type,
                    document_id=result.document_id,
                    external_reference=external_reference,
                    status=result.status,
                    # Sales documents carry their net value; a delivery carries none.
                    amount=None if delivery else magnitude(entity.get("TotalNetAmount")),
                    currency=str(entity.get("TransactionCurrency") or ""),
                    quantities=None
                    if delivery
                    else magnitudes([i.get("RequestedQuantity") for i in items if isinstance(i, dict)]),
                )
            )
        return out

    async def get_document_status(self, document_type: str, document_id: str) -> DocumentResult:
        service, _ = self._service_for(document_type)
        response = await self._call("GET", service, f"{document_type}({key_literal(document_id)})")
        return self._result(document_type, self._json(response), created=False)

    async def read_inventory(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Walks the stock snapshot page by page (the stock entity has no change timestamp)."""
        skip = 0
        if cursor:
            if not cursor.startswith(_SNAPSHOT) or not cursor[len(_SNAPSHOT) :].isdigit():
                raise PermanentErpError(
                    f"not a sap_odata inventory cursor: {cursor!r}", erp=ERP, code="CURSOR"
                )
            skip = int(cursor[len(_SNAPSHOT) :])
        params = {
            "$orderby": _STOCK_ORDER,
            "$top": str(limit),
            "$skip": str(skip),
            "$inlinecount": "allpages",
        }
        if self.config.stock_filter:
            params["$filter"] = self.config.stock_filter
        d = self._json(
            await self._call("GET", self.config.material_stock_service, "A_MatlStkInAcctMod", params=params)
        )
        rows = d.get("results", [])
        total = int(d.get("__count", skip + len(rows)))
        has_more = bool(rows) and skip + len(rows) < total
        records = [json.dumps(entity_record(r), default=str).encode() for r in rows]
        return ChangeBatch(
            records=records, cursor=f"{_SNAPSHOT}{skip + len(rows) if has_more else 0}", has_more=has_more
        )

    async def read_status_changes(self, cursor: str | None, limit: int = 500) -> ChangeBatch:
        """Customer returns, then credit memo requests, changed since the cursor (by LastChangeDateTime)."""
        try:
            state: dict[str, Any] = json.loads(cursor) if cursor else {}
        except ValueError as exc:
            raise PermanentErpError(
                f"not a sap_odata status cursor: {cursor!r}", erp=ERP, code="CURSOR"
            ) from exc
        records: list[bytes] = []
        has_more = False
        for doc_type in (CUSTOMER_RETURN, CREDIT_MEMO_REQUEST):
            remaining = limit - len(records)
            if remaining <= 0:
                has_more = True
                break
            service, key = self._service_for(doc_type)
            mark = state.get(doc_type) or {}
            since, seen = mark.get("ms"), set(mark.get("ids", []))
            params = {"$orderby": f"LastChangeDateTime,{key}", "$top": str(remaining + len(seen))}
            if since is not None:
                stamp = datetime.fromtimestamp(since / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
                params["$filter"] = f"LastChangeDateTime ge datetimeoffset'{stamp}Z'"
            rows = self._json(await self._call("GET", service, doc_type, params=params)).get("results", [])
            fresh = [
                r for r in rows if not (date_ms(r.get("LastChangeDateTime")) == since and r.get(key) in seen)
            ]
            taken = fresh[:remaining]
            if len(fresh) > remaining or len(rows) == remaining + len(seen):
                has_more = True
            for row in taken:
                ms = date_ms(row.get("LastChangeDateTime"))
                if ms != since:
                    since, seen = ms, set()
                seen.add(row.get(key))
                record = {"DocumentType": doc_type, "SDDocument": row.get(key, ""), **entity_record(row)}
                records.append(json.dumps(record, default=str).encode())
            if since is not None:
                state[doc_type] = {"ms": since, "ids": sorted(str(s) for s in seen)}
        return ChangeBatch(
            records=records, cursor=json.dumps(state, separators=(",", ":")) or "{}", has_more=has_more
        )

    async def aclose(self) -> None:
        await self._http.aclose()


__all__ = ["ERP", "SapODataConfig", "SapODataConnector", "parse_odata_error"]


def _etag_of(entity: dict[str, Any]) -> str | None:
    metadata = entity.get("__metadata")
    etag = metadata.get("etag") if isinstance(metadata, dict) else None
    return etag if isinstance(etag, str) and etag else None
