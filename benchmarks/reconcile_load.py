"""Reconciliation at scale: thousands of returns through the three ERP simulators, then one reconcile run.

Every return goes through its whole life (authorized, received, refunded: three ERP documents), delivered by the
real workers, mappers and connectors; then ``ErpReconciler`` reads every document back from the simulators by
external reference and must find no drift. Prints one JSON line: counts, drifts, delivery and reconcile times.

    .venv/bin/python benchmarks/reconcile_load.py --returns-per-erp 400   # 1,200 returns, 3,600 documents
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parents[1]
# The simulator harnesses and the three-ERP fixture of the test suite, reused as they are.
sys.path.insert(0, str(ROOT / "tests"))

from delivery.pipeline_harness import Pipeline  # noqa: E402
from returnbridge.bus.embedded import EmbeddedNatsServer  # noqa: E402
from returnbridge.mapping import MappingRegistry  # noqa: E402
from sync.test_erp_reconcile import Erps  # noqa: E402


async def run(per_erp: int, page_size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNatsServer(Path(tmp) / "nats", sync_always=False)
        server.start()
        try:
            nc = await nats.connect(server.url, connect_timeout=5)
            pipeline = await Pipeline.create(nc)
            erps = Erps(pipeline, MappingRegistry.load())
            await erps.start()
            try:
                started = time.monotonic()
                await erps.submit_lifecycles(per_erp)
                await erps.all_delivered(timeout=3600)
                delivered = time.monotonic() - started
                pages = 0

                def progress(done: int, total: int) -> None:
                    nonlocal pages
                    pages += 1

                started = time.monotonic()
                report = await erps.reconciler(page_size=page_size).run(
                    "acme", since=time.time() - 86_400, progress=progress
                )
                reconciled = time.monotonic() - started
            finally:
                await erps.stop()
                await pipeline.close()
                await nc.drain()
        finally:
            server.stop()
    return {
        "returns": 3 * per_erp,
        "submissions": report.submissions,
        "documents_checked": report.documents_checked,
        "drifts": len(report.drifts),
        "drift_counts": report.counts(),
        "pages": pages,
        "deliver_seconds": round(delivered, 1),
        "reconcile_seconds": round(reconciled, 1),
        "documents_per_second": round(report.documents_checked / reconciled, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--returns-per-erp", type=int, default=400)
    parser.add_argument("--page-size", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.returns_per_erp, args.page_size))))


if __name__ == "__main__":
    main()
