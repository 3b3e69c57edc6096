"""NATS requests and publishes one SubmitReturn costs the gateway, counted on its own connection.

Runs the submit path (``Intake.submit``, audit on as served) against a fresh embedded nats-server and counts what
the gateway's NATS client sends: requests (a reply awaited: JetStream publishes, KV writes and reads) and plain
publishes (events, no reply), per submission, listed by subject kind, and how many of the requests the answer
waited for one after another (``sequential_per_submit``: a request sent while none of the same submission is
outstanding starts a new round trip; writes the answer does not wait for are counted apart, as
``background_requests_per_submit``). Works on this tree and, with
``PYTHONPATH=<other tree>/python``, on another one (main before the audit scribe), for a side-by-side list.

    .venv/bin/python benchmarks/submit_round_trips.py --calls 200 [--cpu-calls 2000 --in-flight 200]

``cpu_ms_per_submit``: the process's CPU time per submission over ``--cpu-calls`` submissions with ``--in-flight``
at once (the handler's share of a gateway's CPU: no gRPC; nats-server runs in its own process).
``sync_state_bytes_per_return``: the bytes each submitted return leaves in the ``rb_sync_state`` bucket's stream.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).parent))
from concurrency_load import _order
from returnbridge.bus import subjects
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.bus.publisher import Publisher
from returnbridge.bus.streams import StreamsConfig, ensure_streams
from returnbridge.domain.context import Principal, set_principal
from returnbridge.routing.router import Router
from returnbridge.services.intake import Intake
from returnbridge.sync.status import SyncStateStore


def _kind(subject: str) -> str:
    """A subject with its keys and ids folded away: ``$KV.rb_sync_state.<key>`` -> ``$KV.rb_sync_state``."""
    if subject.startswith("$KV."):
        return ".".join(subject.split(".")[:2])
    if subject.startswith("$JS.API.DIRECT.GET."):
        return "$JS.API.DIRECT.GET." + subject.split(".")[4]
    if subject.startswith("$JS.API."):
        return re.sub(r"\.[^.]*$", "", subject) if subject.count(".") > 3 else subject
    return ".".join(subject.split(".")[:2])


async def _count(calls: int, url: str, cpu_calls: int, in_flight: int) -> dict[str, Any]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    buckets = await ensure_streams(js, StreamsConfig())
    publisher = Publisher(nc, js)
    status = SyncStateStore(
        buckets[subjects.SYNC_STATE_BUCKET], publisher, rma_index=buckets[subjects.RMA_INDEX_BUCKET]
    )
    kwargs: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(Intake)}
    if "audit" in fields:  # the tree before the audit scribe appended return.submitted on the submit path
        from returnbridge.audit.log import AuditLog

        kwargs["audit"] = await AuditLog.open(js)
    else:
        from returnbridge.bus.consumer import ensure_submitted_audit_consumer

        await ensure_submitted_audit_consumer(js)
    intake = Intake(Router(), publisher, buckets[subjects.IDEMPOTENCY_BUCKET], status, **kwargs)
    set_principal(Principal(name="rms", tenant_id="bench"))
    from returnbridge.api.v1 import returns_pb2

    # Warm up (stream info, the audit tail) outside the count.
    await intake.submit(returns_pb2.SubmitReturnRequest(return_order=_order("warm", 0)))
    requests: Counter[str] = Counter()
    publishes: Counter[str] = Counter()
    original = nc.publish

    async def counting(subject: str, payload: bytes = b"", reply: str = "", headers: Any = None) -> None:
        (requests if reply else publishes)[_kind(subject)] += 1
        await original(subject, payload, reply=reply, headers=headers)

    original_request = nc.request
    waves = 0
    outstanding = 0
    background = 0
    answering = False

    async def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal waves, outstanding, background
        if not answering:
            background += 1
        elif outstanding == 0:
            waves += 1
        outstanding += 1
        try:
            return await original_request(*args, **kwargs)
        finally:
            outstanding -= 1

    nc.publish = counting  # type: ignore[method-assign]
    nc.request = timed  # type: ignore[method-assign]
    drain = getattr(intake, "drain", None)  # writes the answer does not wait for (this tree)
    # One at a time: what a single submission costs, not what batching hides.
    for i in range(calls):
        answering = True
        await intake.submit(returns_pb2.SubmitReturnRequest(return_order=_order("rt", i)))
        answering = False
        if drain is not None:
            await drain()
    nc.publish = original  # type: ignore[method-assign]
    nc.request = original_request  # type: ignore[method-assign]
    # CPU per submission in this process (the gateway's handler share, no gRPC), many in flight as under load:
    # process time, not wall time, so other work on a shared machine moves it far less than a throughput.
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            await intake.submit(returns_pb2.SubmitReturnRequest(return_order=_order("cpu", i)))

    started = time.process_time()
    await asyncio.gather(*(one(i) for i in range(cpu_calls)))
    if drain is not None:
        await drain()
    cpu_ms = (time.process_time() - started) * 1000 / max(cpu_calls, 1)
    # What each return leaves in the sync state bucket's stream (every revision the bucket's history keeps).
    stored = (await js.stream_info(f"KV_{subjects.SYNC_STATE_BUCKET}")).state
    await nc.drain()
    return {
        "calls": calls,
        "requests_per_submit": round(sum(requests.values()) / calls, 2),
        "publishes_per_submit": round(sum(publishes.values()) / calls, 2),
        "sequential_per_submit": round(waves / calls, 2),
        "background_requests_per_submit": round(background / calls, 2),
        "cpu_ms_per_submit": round(cpu_ms, 3),
        "cpu_calls": cpu_calls,
        "sync_state_bytes_per_return": round(stored.bytes / (1 + calls + cpu_calls)),
        "requests": {k: round(v / calls, 2) for k, v in sorted(requests.items())},
        "publishes": {k: round(v / calls, 2) for k, v in sorted(publishes.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cpu-calls", type=int, default=2000, help="submissions of the CPU measurement")
    parser.add_argument(
        "--in-flight", type=int, default=200, help="concurrent submissions when measuring CPU"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store, EmbeddedNatsServer(store, sync_always=True) as server:
        result = asyncio.run(_count(args.calls, server.url, args.cpu_calls, args.in_flight))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
