"""Secrets at rest and in logs: the embedded nats-server needs its generated credentials (0600), the dev token is
written 0600 atomically, and a canary secret never reaches a log line or a file of the data dir."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest
from nats.errors import Error as NatsError

from returnbridge.api.v1 import admin_pb2, returns_pb2
from returnbridge.app import App
from returnbridge.bus.embedded import CREDENTIALS_FILE, client_login, local_credentials
from returnbridge.config import load_settings
from returnbridge.errors import ConfigError
from returnbridge.private_file import write_private_file
from security.conftest import CANARY, Served, bearer, key_md, make_jwt


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_embedded_nats_refuses_anonymous_clients(served: Served) -> None:
    store = served.data_dir / "nats"
    creds = local_credentials(store)
    assert creds is not None and CANARY not in creds.password and len(creds.password) >= 32
    assert _mode(store / CREDENTIALS_FILE) == 0o600 and _mode(store / "nats-server.conf") == 0o600
    url = served.app.endpoints.nats
    assert creds.password not in url
    with pytest.raises((NatsError, OSError, TimeoutError)):
        await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
    with pytest.raises((NatsError, OSError, TimeoutError)):
        await nats.connect(
            url,
            user=creds.user,
            password="wrong",
            connect_timeout=2,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0, **creds.connect_options())
    await nc.close()


def test_client_login_picks_the_right_credentials(served: Served, tmp_path: Path) -> None:
    local = client_login("nats://127.0.0.1:4222", served.data_dir)
    assert set(local) == {"user", "password"}
    assert client_login("nats://10.0.0.5:4222", served.data_dir) == {}
    assert client_login("nats://127.0.0.1:1,nats://10.0.0.5:2", served.data_dir) == {}
    creds_file = tmp_path / "rb.creds"
    assert client_login("tls://nats.example.com:4222", served.data_dir, creds_file) == {
        "user_credentials": str(creds_file)
    }
    assert client_login("nats://127.0.0.1:4222", tmp_path / "nowhere") == {}
    # A login in the URL is the caller's: a data dir left by another run (make run, then make test) must not
    # replace it (audit verify --nats-url nats://user:pw@127.0.0.1:port was refused as an authorization violation).
    assert client_login("nats://someone:secret@127.0.0.1:4222", served.data_dir) == {}
    assert client_login("nats://127.0.0.1:1,nats://someone:secret@127.0.0.1:2", served.data_dir) == {}


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_private_file_is_0600_from_the_first_byte(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "dir" / "secret"
    write_private_file(target, "one\n")
    assert _mode(target) == 0o600 and target.read_text() == "one\n"
    target.chmod(0o644)
    write_private_file(target, "two\n")
    assert _mode(target) == 0o600 and target.read_text() == "two\n"
    assert [p.name for p in target.parent.iterdir()] == ["secret"]  # no temp file left behind


def test_dev_token_is_written_0600(tmp_path: Path, open_umask: None) -> None:
    settings = load_settings(None, env={}, overrides={"data_dir": str(tmp_path / "data")})
    app = App(settings)
    security = app._security()
    token_file = Path(app.endpoints.dev_token_file)
    assert _mode(token_file) == 0o600
    assert security.api_keys and security.api_keys[0].tenant_id == "demo"
    assert token_file.read_text().strip() not in json.dumps(security.model_dump(mode="json"))


async def test_canary_secret_never_reaches_logs_or_the_data_dir(served: Served) -> None:
    # Things a careless service would log: a refused bearer token, a JWT signed with the wrong (canary) secret,
    # and a request whose fields carry the canary.
    attempts = [
        bearer(f"rbk_{CANARY}_guessed"),
        bearer(
            make_jwt("acme", ["auditor"], secret=f"{CANARY}-other-secret-0123456789abcdef0123456789abcdef")
        ),
    ]
    for metadata in attempts:
        with pytest.raises(grpc.aio.AioRpcError):
            await served.returns.GetReturnStatus(
                returns_pb2.GetReturnStatusRequest(return_id="x"), metadata=metadata
            )
    with pytest.raises(grpc.aio.AioRpcError):
        await served.returns.GetReturnStatus(
            returns_pb2.GetReturnStatusRequest(return_id=f"{CANARY}\n"), metadata=key_md("acme", "reader")
        )
    # A valid JWT is signed with the configured secret, which holds the canary.
    verified = await served.admin.VerifyAudit(
        admin_pb2.VerifyAuditRequest(), metadata=bearer(make_jwt("acme", ["auditor"]))
    )
    assert verified.intact
    leaked = [line for line in served.logs.lines if CANARY in line]
    assert leaked == []
    creds = local_credentials(served.data_dir / "nats")
    assert creds is not None
    assert not [line for line in served.logs.lines if creds.password in line]
    holders = {CREDENTIALS_FILE, "nats-server.conf"}  # where the generated NATS password is meant to live
    for path in served.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CANARY.encode() not in data, path
            if path.name not in holders:
                assert creds.password.encode() not in data, path


async def test_another_local_process_joins_with_the_generated_credentials(
    served: Served, tmp_path: Path
) -> None:
    """A `returnbridge worker` of the same host: same data_dir, loopback URL, no credentials configured."""
    url = served.app.endpoints.nats
    common = {
        "grpc": {"port": 0},
        "metrics": {"enabled": False},
        "simulators": {"enabled": False},
        "process": {"gateway": False, "workers": [], "sync": False},
    }
    worker = App(
        load_settings(
            None, env={}, overrides={**common, "data_dir": str(served.data_dir), "nats": {"url": url}}
        )
    )
    await worker.start()
    try:
        assert worker.nc is not None and worker.nc.is_connected
    finally:
        await worker.stop()
    # Without the data dir that holds them, the same URL is refused.
    stranger = App(
        load_settings(None, env={}, overrides={**common, "data_dir": str(tmp_path), "nats": {"url": url}})
    )
    with pytest.raises(ConfigError, match="refused our credentials"):
        await stranger.start()
