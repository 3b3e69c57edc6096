"""What each gateway process of one port is admitting, posted in a memory-mapped file, so the bounds are the port's.

The kernel spreads connections, not calls, over ``serve``'s gateway processes (SO_REUSEPORT): 20 connections land
12/8 or 14/6 as often as 10/10. With a fixed share of the port's bound (4 of 8 each), the process with fewer
connections finished its calls early and sat nearly idle for the last third of a spike while the other worked
through its queue with 4 slots; and a read served by one process did not make the other yield. On the board each
process sees the others' calls in flight, their queues, their last read and the tenants they serve.

Layout: one record per gateway (``in_flight``, ``queued``, ``last_read``, ``tenants``). Each process writes only its
own record, so no lock is needed; a reader may see a record half a change old, which admission tolerates (it
corrects itself at the next call). ``time.monotonic`` is the system-wide CLOCK_MONOTONIC on Linux, so read times
compare across processes. A restarted gateway clears its own record, so a killed one's calls stop counting.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "NO_TENANT",
    "SEVERAL_TENANTS",
    "AdmissionBoard",
    "Others",
    "Record",
    "combine_tenants",
    "create_board",
    "read_board",
    "tenant_code",
]

_RECORD = struct.Struct("<qqdq")
#: ``tenants`` of a process with no submission in hand, or with submissions of more than one tenant.
NO_TENANT, SEVERAL_TENANTS = 0, -1


def create_board(path: Path, processes: int) -> Path:
    """Create (or reset) an empty board for ``processes`` gateways at ``path``; the supervisor calls this once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_RECORD.pack(0, 0, float("-inf"), NO_TENANT) * processes)
    return path


@lru_cache(maxsize=4096)
def tenant_code(tenant: str) -> int:
    """A tenant as a positive 62-bit number: equal across processes, never NO_TENANT or SEVERAL_TENANTS."""
    return (int.from_bytes(hashlib.blake2b(tenant.encode(), digest_size=8).digest(), "little") >> 2) or 1


def combine_tenants(first: int, second: int) -> int:
    """The code of the tenants two records serve together: NO_TENANT, one tenant's code, or SEVERAL_TENANTS."""
    if first == NO_TENANT or first == second:
        return second
    if second == NO_TENANT:
        return first
    return SEVERAL_TENANTS


@dataclass(frozen=True, slots=True)
class Record:
    """One gateway's record as it stands: what an operator or a test reads off the board."""

    in_flight: int
    queued: int
    last_read: float
    tenants: int


def read_board(path: str | Path) -> list[Record]:
    """Every gateway's record, by slot, without opening one (opening a record clears it)."""
    data = Path(path).read_bytes()
    return [
        Record(*_RECORD.unpack_from(data, at)) for at in range(0, len(data) - _RECORD.size + 1, _RECORD.size)
    ]


@dataclass(frozen=True, slots=True)
class Others:
    """The other gateways of the port, as their records say now."""

    in_flight: int
    #: Processes with submissions in flight or waiting.
    busy: int
    last_read: float
    #: The tenants they serve, folded into one code (``combine_tenants``).
    tenants: int


class AdmissionBoard:
    """One gateway's view of the board: it posts its own record (``slot``) and reads the others'."""

    def __init__(self, path: str | Path, slot: int) -> None:
        self._fd = os.open(path, os.O_RDWR)
        size = os.fstat(self._fd).st_size
        if size < _RECORD.size or size % _RECORD.size or slot * _RECORD.size >= size:
            os.close(self._fd)
            raise ValueError(f"{path}: no admission record {slot} ({size} bytes)")
        self._map = mmap.mmap(self._fd, size)
        self._own = slot * _RECORD.size
        self._others = [at for at in range(0, size, _RECORD.size) if at != self._own]
        self.post(0, 0, float("-inf"), NO_TENANT)

    def close(self) -> None:
        self.post(0, 0, float("-inf"), NO_TENANT)
        self._map.close()
        os.close(self._fd)

    def post(self, in_flight: int, queued: int, last_read: float, tenants: int) -> None:
        _RECORD.pack_into(self._map, self._own, in_flight, queued, last_read, tenants)

    def others(self) -> Others:
        in_flight = busy = 0
        last_read = float("-inf")
        tenants = NO_TENANT
        for at in self._others:
            flying, queued, read, code = _RECORD.unpack_from(self._map, at)
            in_flight += flying
            busy += flying + queued > 0
            last_read = max(last_read, read)
            tenants = combine_tenants(tenants, code)
        return Others(in_flight, busy, last_read, tenants)
