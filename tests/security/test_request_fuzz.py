"""Hostile values anywhere in a request never end as INTERNAL or UNKNOWN: a fixed-seed fuzz over every unary RPC of
the served app (valid requests with one to three fields changed by ``mutate``; ERP JSON for the inbound mappings
with values replaced at any depth). Each call is refused with a client error, or served."""

from __future__ import annotations

import json
import random
from typing import Any

import grpc

from returnbridge.api.v1 import admin_pb2, inventory_pb2, returns_pb2, translation_pb2
from returnbridge.gateway.rbac import METHOD_PERMISSIONS, ROLES
from security.conftest import ROLES as SUITE_ROLES
from security.conftest import Served, key_md
from security.mutate import mutate
from security.rpcs import Rpc, api_rpcs
from security.test_tenant_isolation import order as valid_order

#: Codes that mean the server, not the request, failed (DEADLINE_EXCEEDED: it hung on the input).
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
OUTBOUND = ("netsuite/return_authorization", "sap/customer_return", "oracle/return_order", "oracle_ebs/rma")
JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    1e308,
    2**64,
    -(2**63) - 1,
    "",
    "x" * 70_000,
    "NaN",
    "1e999",
    "2024-13-45",
    "9999-12-31T23:59:59Z",
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": None}},
    "12.345678901234567890",
    " 12 ",
)


def _rpc(short: str) -> Rpc:
    return next(r for r in api_rpcs() if r.short == short)


def _md(rpc: Rpc) -> Any:
    permission = METHOD_PERMISSIONS[rpc.path]
    return key_md("acme", next(r for r in SUITE_ROLES if permission in ROLES[r]))


def _replace_somewhere(document: Any, rng: random.Random) -> Any:
    """``document`` with one value, at a random depth, replaced by a hostile one."""
    if isinstance(document, dict) and document and rng.random() < 0.7:
        key = rng.choice(sorted(document))
        document[key] = _replace_somewhere(document[key], rng)
        return document
    if isinstance(document, list) and document and rng.random() < 0.7:
        index = rng.randrange(len(document))
        document[index] = _replace_somewhere(document[index], rng)
        return document
    return rng.choice(JSON_VALUES)


async def _call(served: Served, short: str, request: Any, what: str, faults: list[str]) -> str:
    rpc = _rpc(short)
    try:
        await rpc.call(served.channel, request, metadata=_md(rpc), timeout=30)
    except grpc.aio.AioRpcError as error:
        if error.code() in SERVER_FAULTS:
            faults.append(f"{short} {what}: {error.code().name} {error.details()}")
        return str(error.code().name)
    return "OK"


async def test_hostile_values_never_end_as_a_server_error(served: Served) -> None:
    rng = random.Random(20261207)
    faults: list[str] = []
    outcomes: dict[str, set[str]] = {}

    def note(short: str, code: str) -> None:
        outcomes.setdefault(short, set()).add(code)

    for i in range(240):
        order = valid_order(f"FUZZ-{i}")
        if i % 3 == 2:  # a later event of a return accepted above
            order.return_id, order.version, order.event = f"FUZZ-{i - 2}", 2, rng.choice((2, 3, 4, 5, 6, 7))
        what = [mutate(order, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        request = returns_pb2.SubmitReturnRequest(return_order=order)
        note("SubmitReturn", await _call(served, "ReturnsService.SubmitReturn", request, f"{what}", faults))

    payloads: dict[str, bytes] = {}
    for mapping in OUTBOUND:
        answer = await served.translation.Translate(
            translation_pb2.TranslateRequest(mapping_id=mapping, return_order=valid_order("FUZZ-T")),
            metadata=key_md("acme", "submitter"),
        )
        payloads[mapping] = answer.output
    for i in range(160):
        mapping = rng.choice(OUTBOUND)
        if i % 2:
            order = valid_order(f"FUZZ-T{i}")
            what = [mutate(order, rng) for _ in range(rng.choice((1, 2, 3)))]
            request: Any = translation_pb2.TranslateRequest(mapping_id=mapping, return_order=order)
        else:
            document = json.loads(payloads[mapping])
            for _ in range(rng.choice((1, 2, 4))):
                document = _replace_somewhere(document, rng)
            what = [json.dumps(document)[:200]]
            body = json.dumps(document).encode()
            request = translation_pb2.TranslateRequest(mapping_id=f"{mapping}_in", erp_payload=body)
        note("Translate", await _call(served, "TranslationService.Translate", request, f"{what}", faults))

    reads: list[tuple[str, Any]] = [
        ("ReturnsService.GetReturnStatus", returns_pb2.GetReturnStatusRequest(return_id="FUZZ-0")),
        ("InventoryService.GetInventory", inventory_pb2.GetInventoryRequest(sku="SKU-1001")),
        ("InventoryService.ListInventory", inventory_pb2.ListInventoryRequest(page_size=10)),
        ("AdminService.ListDeadLetters", admin_pb2.ListDeadLettersRequest(page_size=10)),
        ("AdminService.QueryAudit", admin_pb2.QueryAuditRequest(page_size=10)),
        ("AdminService.GetReconciliationReport", admin_pb2.ReconciliationRequest()),
        (
            "TranslationService.TranslateBatch",
            translation_pb2.TranslateBatchRequest(
                mapping_id=OUTBOUND[0], return_orders=[valid_order("FUZZ-B1"), valid_order("FUZZ-B2")]
            ),
        ),
    ]
    for i in range(140):
        short, base = reads[i % len(reads)]
        request = type(base)()
        request.CopyFrom(base)
        what = [mutate(request, rng) for _ in range(rng.choice((1, 2)))]
        note(short.split(".")[1], await _call(served, short, request, f"{what}", faults))

    assert faults == [], "\n".join(faults[:20])
    # The corpus reaches past the edge: some submissions and translations are served, some refused as invalid.
    assert {"OK", "INVALID_ARGUMENT"} <= outcomes["SubmitReturn"], outcomes
    assert {"OK", "INVALID_ARGUMENT"} <= outcomes["Translate"], outcomes
