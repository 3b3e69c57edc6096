"""free_port: a port a child binds a moment later, out of the way of outgoing connections' local ports."""

from __future__ import annotations

import socket

import pytest

from returnbridge.bus import embedded
from returnbridge.bus.embedded import ephemeral_port_range, free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_bindable() -> None:
    low, high = ephemeral_port_range()
    assert 0 < low <= high
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)  # never the same port twice to two callers of one process
    for port in ports:
        assert port < low, (port, low)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_something_holds_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    low, _ = ephemeral_port_range()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        spare = next(port for port in range(low - 1, 10000, -1) if port not in embedded._handed_out)
        picks = iter([taken, spare])

        class Scripted:
            def randrange(self, start: int, stop: int) -> int:
                return next(picks)

        monkeypatch.setattr(embedded.secrets, "SystemRandom", Scripted)
        # The first pick is bound by someone else (the listener above): the next one is handed out.
        assert free_port() == spare
