"""The fetch mark (delivery/sessions.py) only ever rises, whichever worker raises it, on a real nats-server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from delivery.pipeline_harness import Pipeline
from returnbridge.bus import subjects
from returnbridge.delivery.sessions import Sessions


def fetched(*sequences: int) -> list[Any]:
    """What ``mark_fetched`` reads of a fetched message: its stream sequence."""
    return [SimpleNamespace(metadata=SimpleNamespace(sequence=SimpleNamespace(stream=s))) for s in sequences]


async def stored(pipeline: Pipeline) -> int:
    entry = await pipeline.buckets[subjects.CURSORS_BUCKET].get(subjects.cursor_key("netsuite", "fetched"))
    return int(entry.value or b"0")


async def test_two_workers_raise_the_mark_and_never_lower_it(pipeline: Pipeline) -> None:
    js = pipeline.nc.jetstream()
    a, b = (
        Sessions(js, settle_seconds=1, target="netsuite"),
        Sessions(js, settle_seconds=1, target="netsuite"),
    )
    await a.open()
    await b.open()

    assert await a.mark_fetched(fetched(3, 5))  # created
    assert await stored(pipeline) == 5
    assert await b.mark_fetched(fetched(4))  # below the mark: read, nothing written
    assert await b.mark_fetched(fetched(9))  # raised over a's revision
    assert await stored(pipeline) == 9
    assert await a.mark_fetched(fetched(7))  # a's revision is old: it reads 9 and writes nothing
    assert await stored(pipeline) == 9
    assert await a.mark_fetched(fetched(12))
    assert await stored(pipeline) == 12

    # A new process starts its first session on the mark.
    fresh = Sessions(js, settle_seconds=1, target="netsuite")
    await fresh.open()
    await fresh.refresh()
    assert fresh._floors[fresh.current()] == 12
