"""The admission board ``serve``'s gateway processes share (gateway/admission_board.py): the bounds are the port's.

Two ``Admission`` objects on one board file stand for two gateway processes (the board is a plain memory-mapped
file: a record per process, one writer each); one test runs the other side in a real second process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pytest

from returnbridge.gateway.admission import Admission, AdmissionSettings
from returnbridge.gateway.admission_board import AdmissionBoard, create_board, read_board, tenant_code

SUBMIT = "/returnbridge.api.v1.ReturnsService/SubmitReturn"
STATUS = "/returnbridge.api.v1.ReturnsService/GetReturnStatus"


def _gateways(board: Path, count: int = 2, **bounds: float) -> list[Admission]:
    settings = {"max_in_flight": 8, "contended_in_flight": 4, "max_queued": 100, **bounds}
    return [
        Admission(AdmissionSettings(shared_board=str(board), board_slot=i, **settings))  # type: ignore[arg-type]
        for i in range(count)
    ]


async def _hold(admission: Admission, tenant: str, release: asyncio.Event) -> None:
    async with admission.slot(SUBMIT, tenant):
        await release.wait()


async def _submitting(
    admission: Admission, tenant: str, count: int, release: asyncio.Event
) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(_hold(admission, tenant, release)) for _ in range(count)]
    await asyncio.sleep(0)
    return tasks


async def test_a_gateway_takes_what_the_others_leave_of_the_ports_bound(tmp_path: Path) -> None:
    first, second = _gateways(create_board(tmp_path / "board", 2))
    release = asyncio.Event()
    # The other process has nothing: this one may use the port's whole bound, not half of it.
    held = await _submitting(first, "bulk", 10, release)
    assert (first.in_flight, first.queued) == (8, 2)
    # Now the other process gets calls too: it still gets an equal share at once, although the port is full.
    other = await _submitting(second, "bulk", 6, release)
    assert (second.capacity(), second.in_flight, second.queued) == (4, 4, 2)
    # And the first yields: it grants nothing more until its own calls are below what the second leaves it.
    assert first.capacity() == 4
    release.set()
    await asyncio.gather(*held, *other)
    assert [(a.in_flight, a.queued) for a in (first, second)] == [(0, 0), (0, 0)]
    assert first.capacity() == second.capacity() == 8


async def test_what_the_other_gateway_holds_is_left_to_it(tmp_path: Path) -> None:
    first, second = _gateways(create_board(tmp_path / "board", 2))
    release = asyncio.Event()
    held = await _submitting(second, "bulk", 3, release)
    # The second holds 3 of 8 and waits for nothing more: the first may take the other 5, not only its 4.
    assert first.capacity() == 5
    more = await _submitting(first, "bulk", 6, release)
    assert (first.in_flight, first.queued) == (5, 1)
    release.set()
    await asyncio.gather(*held, *more)


async def test_a_read_on_one_gateway_makes_every_gateway_yield(tmp_path: Path) -> None:
    first, second = _gateways(create_board(tmp_path / "board", 2), contended_seconds=30)
    assert first.capacity() == 8
    # A health check is no reader waiting on anyone.
    async with second.slot("/grpc.health.v1.Health/Check", "-"):
        pass
    assert first.capacity() == 8
    async with second.slot(STATUS, "small"):
        pass
    assert first.capacity() == 4 and second.capacity() == 4


async def test_a_second_tenant_on_another_gateway_makes_the_bound_the_contended_one(tmp_path: Path) -> None:
    first, second = _gateways(create_board(tmp_path / "board", 2))
    release = asyncio.Event()
    bulk = await _submitting(first, "bulk", 2, release)
    same = await _submitting(second, "bulk", 1, release)
    # One tenant on both processes: no one else is served, the bound stays the whole one.
    assert first.capacity() == 8 - 1 and second.capacity() == 8 - 2
    small = await _submitting(second, "small", 1, release)
    # Each process holds one tenant, but they are two: both drop to the contended bound (4 for the port).
    assert first.capacity() == 2 and second.capacity() == 2
    release.set()
    await asyncio.gather(*bulk, *same, *small)
    assert first.capacity() == second.capacity() == 8


async def test_a_restarted_gateway_clears_what_its_killed_predecessor_held(tmp_path: Path) -> None:
    board = create_board(tmp_path / "board", 2)
    first, second = _gateways(board)
    release = asyncio.Event()
    held = await _submitting(second, "bulk", 6, release)
    assert first.capacity() == 4
    # kill -9: the record stays as it was; the restarted process opens its record again and starts from nothing.
    AdmissionBoard(board, 1)
    assert first.capacity() == 8
    release.set()
    await asyncio.gather(*held)


def test_the_board_reads_without_clearing_a_record(tmp_path: Path) -> None:
    board = create_board(tmp_path / "board", 2)
    second = AdmissionBoard(board, 1)
    second.post(3, 2, 12.5, tenant_code("acme"))
    before = read_board(board)
    assert [(r.in_flight, r.queued, r.last_read) for r in before] == [(0, 0, float("-inf")), (3, 2, 12.5)]
    assert read_board(board) == before and before[1].tenants == tenant_code("acme") > 0


def test_a_board_without_the_record_is_refused(tmp_path: Path) -> None:
    board = create_board(tmp_path / "board", 2)
    with pytest.raises(ValueError, match="no admission record 2"):
        AdmissionBoard(board, 2)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="no admission record 0"):
        AdmissionBoard(tmp_path / "empty", 0)


def _bulk_gateway(board: str, holding: EventType, release: EventType) -> None:
    """Another gateway process: holds 6 submissions of the bulk tenant until told to let go."""

    async def run() -> None:
        admission = Admission(
            AdmissionSettings(max_in_flight=8, contended_in_flight=4, shared_board=board, board_slot=1)
        )
        done = asyncio.Event()
        tasks = await _submitting(admission, "bulk", 6, done)
        holding.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        done.set()
        await asyncio.gather(*tasks)
        admission.close()

    asyncio.run(run())


async def test_another_process_holding_calls_leaves_this_one_the_rest(tmp_path: Path) -> None:
    board = create_board(tmp_path / "board", 2)
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_bulk_gateway, args=(str(board), holding, release))
    other.start()
    try:
        first = Admission(
            AdmissionSettings(max_in_flight=8, contended_in_flight=4, shared_board=str(board), board_slot=0)
        )
        assert await asyncio.get_running_loop().run_in_executor(None, holding.wait, 60)
        # The other process holds 6 (more than half) and waits for nothing: this one gets its equal share.
        assert first.capacity() == 4
        release.set()
        other.join(60)
        assert other.exitcode == 0
        # It closed its record on the way out: the whole bound is this one's again.
        assert first.capacity() == 8
    finally:
        release.set()
        other.join(10)
