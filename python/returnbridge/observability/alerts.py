"""Operational alerts to a webhook and to NATS ``rb.alerts.<severity>``, de-duplicated per incident and rate-limited."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx
import orjson
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.audit.redact import redact_mapping, redact_text
from returnbridge.bus import subjects
from returnbridge.bus.kv import JsonRecord, modify_json, values_matching
from returnbridge.errors import BusUnavailableError
from returnbridge.observability.metrics import count_alert

__all__ = ["ALERT_KINDS", "SEVERITIES", "AlertConfig", "Alerter", "post_webhook"]

log = logging.getLogger(__name__)

ALERT_KINDS: Final = frozenset(
    {
        "dead_letter",
        "erp_auth",
        "erp_unreachable",
        "backlog",
        "reconciliation_drift",
        "nats_disconnected",
        "process_restarted",
        "stream_leader_elected",
    }
)
SEVERITIES: Final = subjects.SEVERITIES
# Incidents that explain a delivery backlog: while one is open, anywhere, the backlog is its symptom, not a page of
# its own (one fault, one page); a backlog that outlives it by ``backlog_for_s`` pages.
BACKLOG_CAUSES: Final = frozenset({"nats_disconnected", "stream_leader_elected", "erp_unreachable"})
# How long one look at the shared incident records answers "is a cause open elsewhere" (a monitor tick checks
# every consumer; one listing serves them all).
_CAUSES_FRESH_S: Final = 5.0
# The least time between two looks at the shared record of an incident kept quiet here: an outage reports every
# failed call, and a hold-down of 0 must not turn each into a KV round trip.
_QUIET_RECHECK_S: Final = 5.0


class AlertConfig(BaseModel):
    """``alerts:`` section of the service configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: str | None = Field(
        default=None, description="HTTP(S) endpoint receiving JSON alerts; none = off"
    )
    # The webhook's bearer token comes from the environment so it never sits in a YAML file.
    webhook_token_env: str | None = None
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    publish_nats: bool = True
    realert_interval_s: float = Field(default=3600.0, ge=0, description="0 = alert once per open incident")
    max_alerts_per_minute: int = Field(default=30, ge=1, le=10_000)
    erp_unreachable_after_s: float = Field(default=300.0, ge=0)
    # A client that fails over to another node of a cluster is back within milliseconds (the lost node's leader
    # elections page as stream_leader_elected); a NATS outage lasts longer than this.
    nats_disconnected_after_s: float = Field(default=2.0, ge=0)
    backlog_threshold: int = Field(default=1000, ge=1)
    backlog_for_s: float = Field(
        default=300.0,
        ge=0,
        description="a backlog pages once it stayed above the threshold this long with no open NATS, leader "
        "election or ERP incident to explain it (a peak or a recovery drains sooner)",
    )
    incident_hold_down_s: float = Field(
        default=300.0,
        ge=0,
        description="an incident re-opened this soon after its resolution stays quiet (flapping) until it has "
        "been open this long",
    )


@dataclass(slots=True)
class _Incident:
    severity: str
    summary: str
    opened_at: str
    last_sent: float
    # False when another process (or a flapping hold-down) owns the notification of this incident.
    notified: bool = True


class Alerter:
    """Sends alerts for incidents identified by ``(kind, key)``: once per open incident, globally rate-limited.

    ``erp_unreachable`` fires only once the same key has been reported unreachable for longer than
    ``erp_unreachable_after_s``; ``check_backlog`` fires ``backlog`` above ``backlog_threshold``. Delivery
    failures are logged and counted, never raised: alerting must not break the caller.
    """

    def __init__(
        self,
        config: AlertConfig,
        *,
        nc: NatsClient | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        incidents: KeyValue | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        # Shared incident records (rb_incidents): the first process to open an incident notifies.
        self._shared = incidents
        self._link = nc
        self._wall = wall
        self._shared_down = False
        self._nc = nc if config.publish_nats else None
        self._http = http
        self._owns_http = False
        if http is None and config.webhook_url:
            self._http = httpx.AsyncClient(timeout=config.webhook_timeout_s)
            self._owns_http = True
        self._clock = clock
        self._lock = asyncio.Lock()
        self._incidents: dict[tuple[str, str], _Incident] = {}
        self._unreachable_since: dict[str, float] = {}
        # Backlog key -> since when it stands above the threshold unexplained (monotonic).
        self._backlog_since: dict[str, float] = {}
        self._causes_seen: tuple[float, bool] = (float("-inf"), False)
        self._tokens = float(config.max_alerts_per_minute)
        self._tokens_at = clock()
        self._headers: dict[str, str] = {"content-type": "application/json"}
        if config.webhook_token_env:
            token = os.environ.get(config.webhook_token_env, "")
            if token:
                self._headers["authorization"] = f"Bearer {token}"

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()

    def open_incidents(self) -> list[tuple[str, str]]:
        return sorted(self._incidents)

    def _take_token(self, now: float) -> bool:
        rate = self._config.max_alerts_per_minute / 60.0
        capacity = float(self._config.max_alerts_per_minute)
        self._tokens = min(capacity, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def alert(
        self, *, kind: str, key: str, severity: str, summary: str, details: dict[str, str] | None = None
    ) -> bool:
        """Raise an alert; returns True when it was sent to at least one sink.

        Raises:
            ValueError: unknown kind or severity, or an empty key.
        """
        if kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; expected one of {sorted(ALERT_KINDS)}")
        if severity not in SEVERITIES:
            raise ValueError(f"unknown alert severity {severity!r}; expected one of {sorted(SEVERITIES)}")
        if not key:
            raise ValueError("alert key must not be empty")
        async with self._lock:
            now = self._clock()
            if kind == "erp_unreachable":
                since = self._unreachable_since.setdefault(key, now)
                if now - since < self._config.erp_unreachable_after_s:
                    return False
            incident = self._incidents.get((kind, key))
            if incident is not None and not self._due_again(incident, now):
                count_alert(kind, "deduplicated")
                return False
            claimed = await self._claim_shared(kind, key)
            if claimed is False:
                # Another process notified (or the incident flaps within the hold-down): stay quiet, but keep
                # it open here so the resolution goes through the shared record too.
                opened = incident.opened_at if incident else datetime.now(UTC).isoformat(timespec="seconds")
                notified = incident.notified if incident else False
                self._incidents[(kind, key)] = _Incident(
                    severity, redact_text(summary), opened, now, notified
                )
                count_alert(kind, "deduplicated")
                return False
            if not self._take_token(now):
                count_alert(kind, "rate_limited")
                log.warning("alert rate limit reached; dropped %s alert for %s", kind, redact_text(key))
                if claimed:
                    await self._release_shared(kind, key)
                return False
            opened_at = incident.opened_at if incident else datetime.now(UTC).isoformat(timespec="seconds")
            # Reserve the incident before sending, so concurrent callers dedup against it while the lock is free.
            reserved = _Incident(severity, redact_text(summary), opened_at, now)
            self._incidents[(kind, key)] = reserved
        # Deliver outside the lock: a slow webhook must not hold up every other alert and resolution.
        payload = self._payload("firing", kind, key, severity, summary, details, opened_at)
        sent = await self._deliver(payload, severity)
        if not sent:
            async with self._lock:
                # Nothing accepted it: undo the reservation so the next call tries again.
                if self._incidents.get((kind, key)) is reserved:
                    if incident is None:
                        del self._incidents[(kind, key)]
                    else:
                        self._incidents[(kind, key)] = incident
            if claimed:
                await self._release_shared(kind, key)
        count_alert(kind, "sent" if sent else "failed")
        return sent

    def _due_again(self, incident: _Incident, now: float) -> bool:
        """Whether an incident open here may notify again: a notified one after the re-alert interval; a quiet
        one (flapping, or another process notified) is asked about in the shared records after the hold-down,
        since a quiet re-open that stays open that long is a sustained fault, not flapping."""
        if incident.notified:
            interval = self._config.realert_interval_s
            return interval > 0 and now - incident.last_sent >= interval
        return now - incident.last_sent >= max(self._config.incident_hold_down_s, _QUIET_RECHECK_S)

    async def resolve(self, *, kind: str, key: str) -> None:
        """Close an incident; a resolution notice goes out only if the incident had alerted."""
        async with self._lock:
            if kind == "erp_unreachable":
                self._unreachable_since.pop(key, None)
            incident = self._incidents.pop((kind, key), None)
            if incident is None:
                return
            shared = await self._resolve_shared(kind, key)
        if shared is False or (shared is None and not incident.notified):
            return
        payload = self._payload(
            "resolved", kind, key, incident.severity, incident.summary, None, incident.opened_at
        )
        await self._deliver(payload, incident.severity)
        count_alert(kind, "resolved")

    async def check_backlog(self, *, key: str, depth: int, severity: str = "warning") -> bool:
        """Alert once ``depth`` stayed above the backlog threshold for ``backlog_for_s`` with no open cause;
        resolve once it is back at or below the threshold.

        A backlog is usually the symptom of something already paged: NATS away, a leader election, an ERP down
        (``BACKLOG_CAUSES``, open in this process or, through the shared records, in any other). While such an
        incident is open the backlog's clock restarts, so it pages only if it outlives its cause by
        ``backlog_for_s``; a peak that drains within that time pages nobody (like a Prometheus rule's ``for``).
        """
        threshold = self._config.backlog_threshold
        now = self._clock()
        if depth <= threshold:
            self._backlog_since.pop(key, None)
            await self.resolve(kind="backlog", key=key)
            return False
        if await self._backlog_explained(now):
            self._backlog_since.pop(key, None)  # its clock starts once the cause is gone
            return False
        since = self._backlog_since.setdefault(key, now)
        if now - since < self._config.backlog_for_s:
            return False
        return await self.alert(
            kind="backlog",
            key=key,
            severity=severity,
            summary=f"backlog of {depth} messages on {key} exceeds {threshold} for {now - since:.0f} s",
            details={"depth": str(depth), "threshold": str(threshold), "for_s": f"{now - since:.0f}"},
        )

    async def _backlog_explained(self, now: float) -> bool:
        """True while an incident of ``BACKLOG_CAUSES`` is open here or in the shared records, or an ERP this
        process calls is failing (before its own alert is due)."""
        if self._unreachable_since or any(kind in BACKLOG_CAUSES for kind, _ in self._incidents):
            return True
        kv = self._shared_usable()
        if kv is None:
            return False
        checked_at, open_elsewhere = self._causes_seen
        if now - checked_at < _CAUSES_FRESH_S:
            return open_elsewhere
        try:
            records = await values_matching(kv, ">", timeout=self._config.webhook_timeout_s)
        except (NatsError, TimeoutError, BusUnavailableError) as exc:
            self._degraded(exc)
            return False
        open_elsewhere = any(_open_cause(key, value) for key, value in records.items())
        self._causes_seen = (now, open_elsewhere)
        return open_elsewhere

    # ------------------------------------------------------------------ shared incidents
    def _shared_usable(self) -> KeyValue | None:
        if self._shared is None:
            return None
        if self._link is not None and not self._link.is_connected:
            self._degraded("the NATS connection is down")
            return None
        return self._shared

    def _degraded(self, why: object) -> None:
        if not self._shared_down:
            self._shared_down = True
            log.warning(
                "alert incidents cannot be shared across processes (%s): de-duplicating in this process only",
                redact_text(str(why)),
            )

    async def _claim_shared(self, kind: str, key: str) -> bool | None:
        """True: this process notifies; False: another process did (or flapping hold-down); None: no shared store."""
        kv = self._shared_usable()
        if kv is None:
            return None
        wall = self._wall()
        interval = self._config.realert_interval_s
        hold_down = self._config.incident_hold_down_s
        claimed = False

        def change(current: JsonRecord | None) -> JsonRecord | None:
            nonlocal claimed
            claimed = False
            fresh: JsonRecord = {"status": "open", "opened_at": wall, "notified_at": wall, "notified": True}
            if current is None:
                claimed = True
                return fresh
            if current.get("status") == "open":
                since = wall - float(current.get("notified_at", wall))
                if current.get("notified", True):
                    due = bool(interval) and since >= interval  # re-alert of a long-open incident
                else:
                    # A quiet re-open still open after the hold-down is a sustained fault, no longer flapping:
                    # an outage starting minutes after a resolved blip must page, not wait out the re-alert hour.
                    due = since >= hold_down
                if due:
                    claimed = True
                    current.update(notified_at=wall, notified=True)
                    return current
                return None
            if wall - float(current.get("resolved_at", 0.0)) < hold_down:
                # Flapping: re-open quietly (``notified_at`` is then the re-open time).
                current.update(status="open", notified_at=wall, notified=False)
                return current
            claimed = True
            return fresh

        try:
            await modify_json(kv, _shared_key(kind, key), change, attempts=10)
        except (NatsError, TimeoutError, BusUnavailableError) as exc:
            self._degraded(exc)
            return None
        self._shared_down = False
        return claimed

    async def _release_shared(self, kind: str, key: str) -> None:
        """Undo a claim whose notification reached no sink, so the next report (from any process) tries again."""
        if (kv := self._shared_usable()) is None:
            return
        try:
            await kv.delete(_shared_key(kind, key))
        except (NatsError, TimeoutError) as exc:
            self._degraded(exc)

    async def _resolve_shared(self, kind: str, key: str) -> bool | None:
        """True: this process sends the resolution; False: nothing to send (already resolved, or never notified);
        None: no shared record (opened while the store was unreachable, or expired): this process decides alone."""
        kv = self._shared_usable()
        if kv is None:
            return None
        wall = self._wall()
        send: bool | None = False

        def change(current: JsonRecord | None) -> JsonRecord | None:
            nonlocal send
            send = None if current is None else False
            if current is None or current.get("status") != "open":
                return None
            send = bool(current.get("notified"))
            current.update(status="resolved", resolved_at=wall)
            return current

        try:
            await modify_json(kv, _shared_key(kind, key), change, attempts=10)
        except (NatsError, TimeoutError, BusUnavailableError) as exc:
            self._degraded(exc)
            return None
        return send

    @staticmethod
    def _payload(
        status: str,
        kind: str,
        key: str,
        severity: str,
        summary: str,
        details: dict[str, str] | None,
        opened_at: str,
    ) -> dict[str, object]:
        return {
            "service": "returnbridge",
            "status": status,
            "kind": kind,
            "key": redact_text(key),
            "severity": severity,
            "summary": redact_text(summary),
            "details": redact_mapping(details),
            "opened_at": opened_at,
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    async def _deliver(self, payload: dict[str, object], severity: str) -> bool:
        body = json.dumps(payload, sort_keys=True).encode()
        delivered = False
        if self._http is not None and self._config.webhook_url:
            try:
                response = await self._http.post(
                    self._config.webhook_url,
                    content=body,
                    headers=self._headers,
                    timeout=self._config.webhook_timeout_s,
                )
                response.raise_for_status()
                delivered = True
            except httpx.HTTPError as exc:
                log.warning("alert webhook failed: %s", redact_text(str(exc)))
        if self._nc is not None:
            try:
                await self._nc.publish(subjects.alerts(severity), body)
                await self._nc.flush(timeout=max(1, int(self._config.webhook_timeout_s)))
                delivered = True
            except (NatsError, TimeoutError) as exc:
                log.warning("alert publish to NATS failed: %s", redact_text(str(exc)))
        return delivered


def post_webhook(
    config: AlertConfig,
    *,
    kind: str,
    key: str,
    severity: str,
    summary: str,
    details: dict[str, str] | None = None,
) -> bool:
    """Send one firing alert to the webhook, synchronously (for the ``serve`` supervisor, which runs no event loop
    and has no NATS connection). Never raises; False when there is no webhook or it refused the alert."""
    if kind not in ALERT_KINDS or severity not in SEVERITIES or not config.webhook_url:
        return False
    opened_at = datetime.now(UTC).isoformat(timespec="seconds")
    payload = Alerter._payload("firing", kind, key, severity, summary, details, opened_at)
    headers = {"content-type": "application/json"}
    token = os.environ.get(config.webhook_token_env, "") if config.webhook_token_env else ""
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        with httpx.Client(timeout=config.webhook_timeout_s) as client:
            response = client.post(
                config.webhook_url, content=json.dumps(payload, sort_keys=True).encode(), headers=headers
            )
            response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("alert webhook failed: %s", redact_text(str(exc)))
        count_alert(kind, "failed")
        return False
    count_alert(kind, "sent")
    return True


def _open_cause(shared_key: str, value: bytes) -> bool:
    """Whether an ``rb_incidents`` record is an open incident of a kind that explains a backlog."""
    if shared_key.split(".", 1)[0] not in BACKLOG_CAUSES:
        return False
    try:
        return bool(orjson.loads(value).get("status") == "open")
    except (ValueError, AttributeError):  # not a record this module wrote: it explains nothing
        return False


def _shared_key(kind: str, key: str) -> str:
    """The rb_incidents key of an incident: the kind, then the key base64url-encoded (any text is a valid KV key)."""
    return f"{kind}.{base64.urlsafe_b64encode(key.encode()).decode().rstrip('=') or '_'}"
