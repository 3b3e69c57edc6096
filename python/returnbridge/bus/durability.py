"""Does an external nats-server fsync every JetStream write? Read from its varz (monitoring port or $SYS).

An embedded server is started with ``sync_always`` from our settings; an external one is configured by its
operator, and JetStream's default (fsync every two minutes) can lose acknowledged submissions in a power cut.
No client API reports the setting, so we ask the two places that do: the HTTP monitoring endpoint
(``nats.monitor_url``, ``/varz``) and the system account's ``$SYS.REQ.SERVER.PING.VARZ`` (only answered when
our credentials belong to the system account).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import nats.errors
from nats.aio.client import Client as NatsClient

__all__ = ["SyncSetting", "probe_sync_setting"]

_SYS_VARZ = "$SYS.REQ.SERVER.PING.VARZ"


@dataclass(frozen=True, slots=True)
class SyncSetting:
    """``sync_always`` as the server reports it (None: it could not be read), and where it came from."""

    sync_always: bool | None
    source: str
    sync_interval_seconds: float | None = None


def _from_varz(varz: dict[str, Any], source: str) -> SyncSetting:
    config = (varz.get("jetstream") or {}).get("config") or {}
    if not config:
        return SyncSetting(None, f"{source}: no JetStream config in varz")
    interval = config.get("sync_interval")
    return SyncSetting(
        bool(config.get("sync_always", False)),
        source,
        None if interval is None else float(interval) / 1e9,
    )


async def probe_sync_setting(
    nc: NatsClient, monitor_url: str | None = None, *, timeout: float = 2.0
) -> SyncSetting:
    """Ask the monitoring endpoint when given, else the system account; never raises."""
    if monitor_url:
        url = monitor_url.rstrip("/") + "/varz"
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.get(url)
                response.raise_for_status()
                return _from_varz(response.json(), url)
        except (httpx.HTTPError, ValueError) as exc:
            return SyncSetting(None, f"{url}: {type(exc).__name__}: {exc}")
    try:
        reply = await nc.request(_SYS_VARZ, b"", timeout=timeout)
        body = json.loads(reply.data)
        return _from_varz(body.get("data") or {}, _SYS_VARZ)
    except (nats.errors.Error, TimeoutError, ValueError) as exc:
        return SyncSetting(
            None, f"{_SYS_VARZ} not answered ({type(exc).__name__}; needs system-account credentials)"
        )
