"""Periodic queue-depth and DLQ-size gauges from JetStream, with backlog alerts."""

from __future__ import annotations

import asyncio
import logging

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js import errors as js_errors
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.bus import subjects
from returnbridge.observability.alerts import Alerter
from returnbridge.observability.metrics import set_dlq_size, set_queue_depth

__all__ = ["MonitorConfig", "QueueMonitor"]

log = logging.getLogger(__name__)


class MonitorConfig(BaseModel):
    """How often queue gauges are refreshed and which streams count as work queues."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(default=15.0, gt=0)
    work_streams: list[str] = Field(default_factory=lambda: [subjects.DELIVER_STREAM])
    dlq_stream: str = subjects.DLQ_STREAM


class QueueMonitor:
    """Reads every consumer of the work streams and the DLQ stream, sets the gauges, checks backlog alerts.

    Depth of a consumer = messages not yet delivered + delivered but not yet acknowledged.
    """

    def __init__(
        self, js: JetStreamContext, config: MonitorConfig | None = None, *, alerter: Alerter | None = None
    ) -> None:
        self._js = js
        self._config = config or MonitorConfig()
        self._alerter = alerter
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> dict[str, int]:
        """One refresh; returns ``{"<stream>/<consumer>": depth, ..., "<dlq stream>": size}`` for what it read.

        Streams that do not exist (yet) are skipped.
        """
        seen: dict[str, int] = {}
        for stream in self._config.work_streams:
            try:
                consumers = await self._js.consumers_info(stream)
            except js_errors.NotFoundError:
                continue
            for consumer in consumers:
                depth = int(consumer.num_pending or 0) + int(consumer.num_ack_pending or 0)
                set_queue_depth(stream, consumer.name, depth)
                key = f"{stream}/{consumer.name}"
                seen[key] = depth
                if self._alerter is not None:
                    await self._alerter.check_backlog(key=key, depth=depth)
        try:
            info = await self._js.stream_info(self._config.dlq_stream)
        except js_errors.NotFoundError:
            return seen
        size = int(info.state.messages or 0)
        set_dlq_size(size)
        seen[self._config.dlq_stream] = size
        return seen

    async def run(self) -> None:
        """Poll until cancelled; a failed poll is logged and retried at the next interval."""
        while True:
            try:
                await self.poll_once()
            except (NatsError, TimeoutError) as exc:
                log.warning("queue monitor poll failed: %s", exc)
            await asyncio.sleep(self._config.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="rb-queue-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
