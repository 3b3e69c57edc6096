"""Example RMS client: submits one return's life (authorized -> received -> refunded) to each ERP and
follows it until every ERP document is confirmed. Uses only the stubs shipped in ``returnbridge.api.v1``.

    .venv/bin/python examples/submit_return.py --target 127.0.0.1:50051 --token-file .returnbridge/dev-token
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

import grpc

from returnbridge.api.v1 import (
    common_pb2,
    inventory_pb2,
    inventory_pb2_grpc,
    returns_pb2,
    returns_pb2_grpc,
    sync_pb2,
)

# Region custom field -> the shipped routing file's target: us -> NetSuite, eu -> SAP, apac -> Oracle Fusion.
ERPS = {
    "netsuite": {"region": "us", "customer": "101", "order": "9001"},
    "sap": {"region": "eu", "customer": "10100001", "order": "5000001"},
    "oracle": {"region": "apac", "customer": "1001", "order": "520001"},
}


def money(amount: str) -> common_pb2.Money:
    return common_pb2.Money(amount=amount, currency="USD")


def build_return(erp: str, run_id: str, version: int, event: int) -> returns_pb2.ReturnOrder:
    facts = ERPS[erp]
    lines = [
        returns_pb2.ReturnLine(
            line_id="L1",
            sku="SKU-1001",
            product_type="apparel",
            description="Trail jacket",
            quantity="2",
            unit_of_measure="EA",
            unit_price=money("49.95"),
            tax_amount=money("8.24"),
            condition=returns_pb2.ITEM_CONDITION_OPENED,
            disposition=returns_pb2.DISPOSITION_RESTOCK,
            cost_center="CC-100",
            vendor_code="V-200",
            reason_code="DEFECTIVE",
            location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
        ),
        returns_pb2.ReturnLine(
            line_id="L2",
            sku="SKU-1003",
            product_type="electronics",
            description="Headset",
            quantity="2",
            unit_of_measure="EA",
            unit_price=money("120.00"),
            tax_amount=money("19.80"),
            serialized=True,
            # A serial is on one open return of a tenant at a time: each ERP's return has its own units.
            serial_numbers=[f"SN-{run_id}-{erp[0].upper()}{n}" for n in (1, 2)],
            condition=returns_pb2.ITEM_CONDITION_DEFECTIVE,
            disposition=returns_pb2.DISPOSITION_RETURN_TO_VENDOR,
            cost_center="CC-101",
            vendor_code="V-201",
            reason_code="DEFECTIVE",
            location=common_pb2.WarehouseLocation(site="DAL1", sub_location="RTN"),
        ),
    ]
    subtotal = sum(Decimal(ln.unit_price.amount) * Decimal(ln.quantity) for ln in lines)
    tax = sum(Decimal(ln.tax_amount.amount) for ln in lines)
    fee = Decimal("5.00")
    total = subtotal + tax - fee
    order = returns_pb2.ReturnOrder(
        return_id=f"demo-{erp}-{run_id}",
        rma_number=f"RMA-{run_id}-{erp[:2].upper()}",
        version=version,
        return_type=returns_pb2.RETURN_TYPE_REFUND,
        event=event,
        reason_code="DEFECTIVE",
        currency="USD",
        customer=returns_pb2.Customer(
            customer_id="CUST-0001", erp_customer_ref=facts["customer"], tier="gold"
        ),
        original_order=returns_pb2.OriginalOrder(
            order_id="SO-1", erp_order_ref=facts["order"], order_date="2026-11-01"
        ),
        lines=lines,
        restocking_fee=money(str(fee)),
        tax_total=money(str(tax)),
        total_amount=money(str(total)),
        custom_fields={"region": common_pb2.CustomValue(string_value=facts["region"])},
    )
    order.event_time.GetCurrentTime()
    if event == returns_pb2.LIFECYCLE_EVENT_REFUNDED:
        order.refund.CopyFrom(
            returns_pb2.RefundDetails(
                method=returns_pb2.REFUND_METHOD_ORIGINAL_PAYMENT, amount=money(str(total))
            )
        )
    return order


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--token-file", type=Path, default=Path(".returnbridge/dev-token"))
    parser.add_argument("--erp", choices=[*ERPS, "all"], default="all")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    token = os.environ.get("RETURNBRIDGE_TOKEN") or args.token_file.read_text().strip()
    metadata = (("authorization", f"Bearer {token}"),)
    run_id = str(int(time.time()))
    erps = list(ERPS) if args.erp == "all" else [args.erp]
    events = [
        returns_pb2.LIFECYCLE_EVENT_AUTHORIZED,
        returns_pb2.LIFECYCLE_EVENT_RECEIVED,
        returns_pb2.LIFECYCLE_EVENT_REFUNDED,
    ]

    async with grpc.aio.insecure_channel(args.target) as channel:
        returns = returns_pb2_grpc.ReturnsServiceStub(channel)
        for erp in erps:
            for version, event in enumerate(events, start=1):
                order = build_return(erp, run_id, version, event)
                reply = await returns.SubmitReturn(
                    returns_pb2.SubmitReturnRequest(return_order=order), metadata=metadata, timeout=10
                )
                print(
                    f"{erp:9} v{version} {returns_pb2.LifecycleEvent.Name(event):26} -> "
                    f"{returns_pb2.SubmitOutcome.Name(reply.outcome)} seq={reply.stream_sequence} "
                    f"route={reply.route.target}/{reply.route.rule or 'default'}"
                )

        deadline = time.monotonic() + args.timeout
        pending = set(erps)
        while pending and time.monotonic() < deadline:
            for erp in sorted(pending):
                status = await returns.GetReturnStatus(
                    returns_pb2.GetReturnStatusRequest(return_id=f"demo-{erp}-{run_id}"),
                    metadata=metadata,
                    timeout=5,
                )
                docs = status.documents
                if len(docs) == 3 and all(d.state == sync_pb2.SYNC_STATE_DELIVERED for d in docs):
                    pending.discard(erp)
                    print(f"\n{erp}: all ERP documents confirmed")
                    for d in docs:
                        print(
                            f"  v{d.version} {d.step:22} {d.document_type:26} id={d.erp_document_id:12} attempts={d.attempts}"
                        )
            await asyncio.sleep(0.5)
        if pending:
            print(f"not confirmed within {args.timeout}s: {sorted(pending)}", file=sys.stderr)
            return 1

        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        listing = await inventory.ListInventory(
            inventory_pb2.ListInventoryRequest(skus=["SKU-1001"], page_size=10), metadata=metadata, timeout=5
        )
        print("\ninventory SKU-1001 (as the ERPs report it):")
        for level in listing.levels:
            erp_name = common_pb2.ErpSystem.Name(level.source_erp)
            print(
                f"  {level.target:14} {level.location.site}/{level.location.sub_location or '-':8} on hand {level.on_hand} ({erp_name})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
