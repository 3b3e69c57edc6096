"""Durable pull consumers for delivery workers and ordered (ephemeral) consumers for watchers."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel, ConfigDict, Field

from returnbridge.bus import subjects


class ConsumerSettings(BaseModel):
    """Delivery consumer limits; ``ack_wait`` must exceed the ERP call timeout (workers heartbeat meanwhile)."""

    model_config = ConfigDict(extra="forbid")

    ack_wait_seconds: float = Field(default=60.0, gt=0)
    # Server-side cap; workers dead-letter on their own attempt budget long before it (WAITING naks count too).
    max_deliver: int = Field(default=1000, ge=2)
    max_ack_pending: int = Field(default=5000, ge=1)


async def delivery_subscription(
    js: JetStreamContext, target: str, settings: ConsumerSettings | None = None
) -> JetStreamContext.PullSubscription:
    """Bind to (creating if needed) the durable pull consumer every worker of ``target`` shares."""
    settings = settings or ConsumerSettings()
    config = ConsumerConfig(
        durable_name=subjects.deliver_consumer(target),
        filter_subject=subjects.deliver_target_filter(target),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
    )
    return await js.pull_subscribe(
        subjects.deliver_target_filter(target),
        durable=subjects.deliver_consumer(target),
        stream=subjects.DELIVER_STREAM,
        config=config,
    )


def ordered_config(
    after_sequence: int = 0, from_beginning: bool = False
) -> tuple[DeliverPolicy, ConsumerConfig]:
    """Deliver policy for a resumable watch: all, after a sequence, or only new messages."""
    if from_beginning:
        return DeliverPolicy.ALL, ConsumerConfig()
    if after_sequence > 0:
        return DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=after_sequence + 1)
    return DeliverPolicy.NEW, ConsumerConfig()
