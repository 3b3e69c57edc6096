"""Inventory reconciliation against the three simulators: planted drift of every kind is found, then repaired."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from delivery.pipeline_harness import Pipeline
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import inventory_pb2
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.cli import build_parser
from returnbridge.mapping import MappingRegistry
from returnbridge.reconcile_cli import _run_inventory, render_inventory
from returnbridge.sync.inventory import InventoryStore
from returnbridge.sync.inventory_reconcile import InventoryReconciler, InventoryReport
from returnbridge.sync.poller import Poller, PollerSettings, PollTarget, PollTargetConfig
from sync.test_erp_reconcile import TARGETS


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load()


@pytest.fixture
async def harnesses() -> AsyncIterator[dict[str, Any]]:
    started: dict[str, Any] = {}
    try:
        for target, (harness_cls, *_rest) in TARGETS.items():
            harness = harness_cls()
            await harness.start()
            started[target] = harness
        yield started
    finally:
        for harness in started.values():
            await harness.stop()


def _targets(harnesses: dict[str, Any]) -> list[PollTarget]:
    return [
        PollTarget(PollTargetConfig(target=t, tenant="acme"), h.connector(timeout=10.0))
        for t, h in harnesses.items()
    ]


def _found(report: InventoryReport) -> set[tuple[str, str, str, str]]:
    return {(d.kind, d.target, d.sku, d.site) for d in report.drifts}


async def test_planted_inventory_drift_is_found_and_repaired_from_the_erp(
    pipeline: Pipeline, registry: MappingRegistry, harnesses: dict[str, Any]
) -> None:
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    poller = Poller(
        _targets(harnesses),
        registry,
        pipeline.buckets[subjects.CURSORS_BUCKET],
        store,
        pipeline.buckets[subjects.SYNC_STATE_BUCKET],
        pipeline.publisher,
        PollerSettings(),
    )
    reconciler = InventoryReconciler(store, registry, _targets(harnesses), publisher=pipeline.publisher)

    # Once the poller has read everything, the projection equals each ERP: a clean run finds nothing.
    async def clean() -> None:
        await poller.poll_once()
        (report,) = await reconciler.run()
        assert report.drifts == [] and report.unreadable == 0, report.as_dict()
        assert report.erp_levels == report.rms_levels > 0

    await assert_eventually(clean, timeout=60)

    planted: set[tuple[str, str, str, str]] = set()
    for target in TARGETS:
        levels = await store.levels("acme", target)
        dal = [level for level in levels if level.location.site == "DAL1"]
        wrong, lost = dal[0], dal[1]
        wrong.on_hand = str(Decimal(wrong.on_hand) + 7)
        await store.put(wrong)
        planted.add(("quantity_mismatch", target, wrong.sku, "DAL1"))
        await store.delete(lost)
        planted.add(("missing_in_rms", target, lost.sku, "DAL1"))
        ghost = inventory_pb2.InventoryLevel()
        ghost.CopyFrom(wrong)
        ghost.sku, ghost.on_hand = "SKU-GHOST", "3"
        await store.put(ghost)
        planted.add(("missing_in_erp", target, "SKU-GHOST", "DAL1"))
        # A clerk's stock count in the ERP that no poll has read yet.
        async with httpx.AsyncClient(base_url=harnesses[target].running.url) as http:
            counted = await http.post(
                "/_sim/actions/stock/adjust", json={"sku": "SKU-1005", "site": "DAL1", "delta": "-1"}
            )
        assert counted.status_code == 200, counted.text
        planted.add(("quantity_mismatch", target, "SKU-1005", "DAL1"))

    (report,) = await reconciler.run()
    assert _found(report) == planted
    for target in TARGETS:
        assert (
            REGISTRY.get_sample_value("rb_inventory_drift", {"target": target, "kind": "missing_in_erp"}) == 1
        )
        assert (
            REGISTRY.get_sample_value("rb_inventory_drift", {"target": target, "kind": "quantity_mismatch"})
            == 2
        )

    (repaired,) = await reconciler.run(repair=True)
    assert repaired.repaired == len(planted)
    (after,) = await reconciler.run()
    assert after.drifts == [] and after.erp_levels == after.rms_levels
    assert (
        REGISTRY.get_sample_value("rb_inventory_drift", {"target": "sap", "kind": "quantity_mismatch"}) == 0
    )
    # Rebuilt from the ERP, never the other way round: the ERP's stock is what the planted count left.
    sap_stock = harnesses["sap"].sim.kit.state.stock
    assert sap_stock[("SKU-1005", "DAL1", "0001")] == 99
    levels = [
        lv for lv in await store.levels("acme", "sap") if lv.sku == "SKU-1005" and lv.location.site == "DAL1"
    ]
    assert [Decimal(lv.on_hand) for lv in levels] == [Decimal(99)]


def test_cli_parses_reconcile_inventory() -> None:
    args = build_parser().parse_args(
        ["reconcile", "inventory", "--tenant", "acme", "--format", "json", "--repair"]
    )
    assert (args.what, args.tenant, args.format, args.repair, args.since) == (
        "inventory",
        "acme",
        "json",
        True,
        None,
    )
    documents = build_parser().parse_args(["reconcile", "--tenant", "acme", "--since", "1h"])
    assert documents.what == "documents"


async def test_reconcile_inventory_command_reports_json(
    pipeline: Pipeline, harnesses: dict[str, Any], nats_server: EmbeddedNatsServer
) -> None:
    store = InventoryStore(pipeline.buckets[subjects.INVENTORY_BUCKET])
    level = inventory_pb2.InventoryLevel(tenant_id="acme", sku="SKU-GHOST", on_hand="5", target="netsuite")
    level.location.site = "DAL1"
    await store.put(level)
    args = argparse.Namespace(
        tenant="acme",
        erp=["netsuite"],
        format="json",
        repair=False,
        config=None,
        nats_url=nats_server.url,
        connector=[("netsuite", harnesses["netsuite"].config())],
    )
    out = json.loads(render_inventory(await _run_inventory(args), "json"))
    assert out["targets"] == ["netsuite"] and out["rms_levels"] == 1 and out["erp_levels"] > 1
    assert out["counts"]["missing_in_rms"] == out["erp_levels"]
    assert {"kind": "missing_in_erp", "sku": "SKU-GHOST"}.items() <= next(
        d for d in out["drifts"] if d["kind"] == "missing_in_erp"
    ).items()
    args.repair = True
    repaired = json.loads(render_inventory(await _run_inventory(args), "json"))
    assert repaired["repaired"] == len(out["drifts"])
    args.repair = False
    assert json.loads(render_inventory(await _run_inventory(args), "json"))["drifts"] == []
    assert "no drift" in render_inventory(await _run_inventory(args), "table")
