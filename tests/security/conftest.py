"""One served App for the whole security suite: embedded NATS (with its generated credentials), two tenants x four
roles of API keys plus HS256 JWTs, and every log record captured for the canary-secret check."""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2_grpc

from returnbridge.api.v1 import admin_pb2_grpc, inventory_pb2_grpc, returns_pb2_grpc, translation_pb2_grpc
from returnbridge.app import App
from returnbridge.config import load_settings
from returnbridge.gateway.auth import hash_api_key

TENANTS = ("acme", "beta")
ROLES = ("submitter", "reader", "integration_admin", "auditor")
#: A value that must never show up in any log line or any file of the data dir but the ones meant to hold it.
CANARY = "CANARY-7f3c1e9a2b"
JWT_SECRET_ENV = "RB_SECURITY_SUITE_JWT"
JWT_SECRET = f"{CANARY}-jwt-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
ISSUER = "https://idp.security-suite.test"
AUDIENCE = "returnbridge"


def api_key(tenant: str, role: str) -> str:
    return f"rbk_suite_{tenant}_{role}_0123456789abcdef"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def key_md(tenant: str, role: str) -> tuple[tuple[str, str]]:
    return bearer(api_key(tenant, role))


def make_jwt(tenant: str = "acme", roles: list[str] | None = None, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"jwt-{tenant}",
        "tenant_id": tenant,
        "roles": roles or ["reader"],
        "iat": now,
        "exp": now + 600,
    }
    secret = changes.pop("secret", JWT_SECRET)
    algorithm = changes.pop("algorithm", "HS256")
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm=algorithm)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name} {record.levelname} {text}")


@dataclass
class Served:
    app: App
    data_dir: Path
    channel: grpc.aio.Channel
    logs: _Capture
    stubs: dict[str, Any] = field(default_factory=dict)

    @property
    def returns(self) -> returns_pb2_grpc.ReturnsServiceStub:
        return self.stubs["returns"]

    @property
    def inventory(self) -> inventory_pb2_grpc.InventoryServiceStub:
        return self.stubs["inventory"]

    @property
    def translation(self) -> translation_pb2_grpc.TranslationServiceStub:
        return self.stubs["translation"]

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return self.stubs["admin"]

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return self.stubs["health"]


_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Async tests of this suite share the package's event loop (and so its one served App)."""
    for item in items:
        function = getattr(item, "function", None)
        if Path(str(item.fspath)).parent == _HERE and inspect.iscoroutinefunction(function):
            item.own_markers = [m for m in item.own_markers if m.name != "asyncio"]
            item.add_marker(pytest.mark.asyncio(loop_scope="package"))


@pytest.fixture(scope="package")
def log_capture() -> Iterator[_Capture]:
    capture = _Capture()
    root, ours = logging.getLogger(), logging.getLogger("returnbridge")
    old_levels = root.level, ours.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(old_levels[0])
        ours.setLevel(old_levels[1])


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def served(tmp_path_factory: pytest.TempPathFactory, log_capture: _Capture) -> AsyncIterator[Served]:
    # The authenticator reads the JWT secret from the process environment, as in production.
    previous = os.environ.get(JWT_SECRET_ENV)
    os.environ[JWT_SECRET_ENV] = JWT_SECRET
    data_dir = tmp_path_factory.mktemp("security") / "data"
    api_keys = [
        {
            "name": f"{tenant}-{role}",
            "tenant_id": tenant,
            "roles": [role],
            "sha256": hash_api_key(api_key(tenant, role)),
        }
        for tenant in TENANTS
        for role in ROLES
    ]
    settings = load_settings(
        None,
        env={JWT_SECRET_ENV: JWT_SECRET},
        overrides={
            "data_dir": str(data_dir),
            "nats": {"sync_always": False},
            "grpc": {"port": 0},
            "metrics": {"enabled": False},
            "console": {"port": 0},
            "simulators": {"enabled": False},
            "process": {"workers": [], "sync": False},
            "security": {
                "api_keys": api_keys,
                "jwt": {
                    "algorithms": ["HS256"],
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "hmac_secret_env": JWT_SECRET_ENV,
                },
            },
        },
    )
    app = App(settings)
    await app.start()
    channel = grpc.aio.insecure_channel(app.endpoints.grpc)
    served = Served(app, data_dir, channel, log_capture)
    served.stubs = {
        "returns": returns_pb2_grpc.ReturnsServiceStub(channel),
        "inventory": inventory_pb2_grpc.InventoryServiceStub(channel),
        "translation": translation_pb2_grpc.TranslationServiceStub(channel),
        "admin": admin_pb2_grpc.AdminServiceStub(channel),
        "health": health_pb2_grpc.HealthStub(channel),
    }
    try:
        yield served
    finally:
        await channel.close()
        await app.stop()
        if previous is None:
            os.environ.pop(JWT_SECRET_ENV, None)
        else:
            os.environ[JWT_SECRET_ENV] = previous
