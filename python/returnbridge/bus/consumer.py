"""Durable pull consumers for delivery workers and ordered (ephemeral) consumers for watchers."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError
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


#: Durable consumer that writes the ``return.submitted`` audit entry of every accepted submission.
SUBMITTED_AUDIT_CONSUMER = "rb-audit-submitted"


def submitted_audit_config(start_sequence: int = 0) -> ConsumerConfig:
    """The audit scribe's consumer: every delivery message from ``start_sequence`` (0: from the first)."""
    return ConsumerConfig(
        durable_name=SUBMITTED_AUDIT_CONSUMER,
        filter_subject=subjects.DELIVER_ALL,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start_sequence else DeliverPolicy.ALL,
        opt_start_seq=start_sequence or None,
        ack_wait=30.0,
        # Audit appends fail only while NATS does; the scribe retries until they land, never gives up.
        max_deliver=-1,
        max_ack_pending=20_000,
    )


async def ensure_submitted_audit_consumer(js: JetStreamContext) -> None:
    """Create the audit scribe's consumer before anything is accepted, so no submission precedes it.

    Every process calls this at start-up. Created on a stream that already holds messages (an upgrade from
    gateways that audited submissions themselves), it starts after them: those already have their entries.
    """
    try:
        await js.consumer_info(subjects.DELIVER_STREAM, SUBMITTED_AUDIT_CONSUMER)
        return
    except NotFoundError:
        pass
    info = await js.stream_info(subjects.DELIVER_STREAM)
    last = int(info.state.last_seq or 0)
    try:
        await js.add_consumer(subjects.DELIVER_STREAM, submitted_audit_config(last + 1 if last else 0))
    except BadRequestError:
        # Another process created it between our look and our create: theirs stands.
        await js.consumer_info(subjects.DELIVER_STREAM, SUBMITTED_AUDIT_CONSUMER)


def ordered_config(
    after_sequence: int = 0, from_beginning: bool = False
) -> tuple[DeliverPolicy, ConsumerConfig]:
    """Deliver policy for a resumable watch: all, after a sequence, or only new messages."""
    if from_beginning:
        return DeliverPolicy.ALL, ConsumerConfig()
    if after_sequence > 0:
        return DeliverPolicy.BY_START_SEQUENCE, ConsumerConfig(opt_start_seq=after_sequence + 1)
    return DeliverPolicy.NEW, ConsumerConfig()
