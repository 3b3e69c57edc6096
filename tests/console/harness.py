"""The served app on its own event loop thread, so a synchronous browser driver can talk to it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.app import App
from returnbridge.client import ReturnBridgeClient
from returnbridge.config import load_settings
from returnbridge.console.samples import sample_json
from returnbridge.gateway.auth import hash_api_key

T = TypeVar("T")

#: Raw test keys: (key, tenant, roles).
KEYS = {
    "acme_admin": (
        "rbk_test_acme_admin_0123456789abcdef",
        "acme",
        ["integration_admin", "auditor", "submitter"],
    ),
    "acme_reader": ("rbk_test_acme_reader_0123456789abcdef", "acme", ["reader"]),
    "globex_admin": ("rbk_test_globex_admin_0123456789abcdef", "globex", ["integration_admin", "submitter"]),
}


class ServedApp:
    """``start()`` runs the whole service (NATS given, simulators on) on a private loop thread."""

    def __init__(self, data_dir: Path, nats_url: str) -> None:
        self.settings = load_settings(
            None,
            env={},
            overrides={
                "data_dir": str(data_dir),
                "nats": {"url": nats_url},
                "grpc": {"port": 0},
                "metrics": {"enabled": False},
                # A short form read timeout, so the stalled-body test waits 2 s, not the default 10 s.
                "console": {"port": 0, "kpi_sample_seconds": 0.5, "form_read_timeout_seconds": 2.0},
                "simulators": {"enabled": True, "netsuite_port": 0, "sap_port": 0, "oracle_port": 0},
                # Stock from every simulator for tenant acme (the inventory page and command show it).
                "sync": {
                    "interval_seconds": 0.5,
                    "targets": [
                        {"target": t, "tenant": "acme"} for t in ("netsuite", "sap", "oracle_fusion")
                    ],
                },
                "security": {
                    "api_keys": [
                        {"name": name, "tenant_id": tenant, "roles": roles, "sha256": hash_api_key(key)}
                        for name, (key, tenant, roles) in KEYS.items()
                    ]
                },
            },
        )
        self.app = App(self.settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="served-app", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self.app.start())

    def stop(self) -> None:
        try:
            self.run(self.app.stop(), timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def console_url(self) -> str:
        return self.app.endpoints.console.rstrip("/")

    def client(self, who: str) -> ReturnBridgeClient:
        """Only valid inside ``run`` (the channel belongs to the app's loop)."""
        return ReturnBridgeClient.connect(self.app.endpoints.grpc, token=KEYS[who][0])

    def submit(self, who: str, return_id: str) -> None:
        """Submit the NetSuite sample as ``return_id`` for the key's tenant and wait until it settles."""

        async def go() -> None:
            async with self.client(who) as client:
                order = sample_order(return_id, KEYS[who][1])
                async for _event in client.submit_and_watch(order):
                    pass

        self.run(go(), timeout=90)

    def put_faults(self, erp: str, plan: dict[str, Any]) -> None:
        import httpx

        async def go() -> None:
            async with httpx.AsyncClient() as http:
                url = self.app.endpoints.simulators[erp] + "/_sim/faults"
                response = await http.put(url, content=json.dumps(plan))
                response.raise_for_status()

        self.run(go())


def sample_order(return_id: str, tenant: str) -> returns_pb2.ReturnOrder:
    """The NetSuite sample return, routed to NetSuite (region us), under a new id and tenant."""
    order = returns_pb2.ReturnOrder()
    json_format.Parse(sample_json("us_authorized_netsuite"), order)
    order.return_id = return_id
    order.rma_number = "RMA-" + return_id
    order.tenant_id = tenant
    order.custom_fields["region"].CopyFrom(common_pb2.CustomValue(string_value="us"))
    for line in order.lines:  # a serial is on one open return of a tenant at a time: each return its own
        line.serial_numbers[:] = [f"SN-{return_id}-{n}" for n in range(1, len(line.serial_numbers) + 1)]
    return order
