"""Security configuration, RBAC coverage of the proto, asymmetric JWTs (PEM and JWKS), mTLS identities, audit."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from nats.aio.client import Client as NatsClient
from pydantic import ValidationError as PydanticValidationError

from gateway.certs import ScratchCa
from gateway.support import AUDIENCE, ISSUER, KEYS, bearer, security_config, start, stop
from returnbridge.api.v1 import admin_pb2, inventory_pb2, returns_pb2, translation_pb2
from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.log import AuditLog
from returnbridge.domain.context import Principal, set_principal
from returnbridge.errors import AuthError, ConfigError, PermissionDeniedError
from returnbridge.gateway.auth import Authenticator, generate_api_key, hash_api_key, server_credentials
from returnbridge.gateway.rbac import METHOD_PERMISSIONS, PERMISSIONS, ROLES, authorize, require_tenant_match
from returnbridge.gateway.security_config import SecurityConfig


def _all_rpcs() -> set[str]:
    methods = set()
    for module in (returns_pb2, inventory_pb2, translation_pb2, admin_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    # Reflection is behind authentication too (issue 12), so it has a permission like any RPC.
    for prefix in ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"):
        methods.add(f"/{prefix}/ServerReflectionInfo")
    return methods


def test_every_rpc_of_every_service_is_mapped() -> None:
    assert set(METHOD_PERMISSIONS) == _all_rpcs()
    assert set(METHOD_PERMISSIONS.values()) <= set(PERMISSIONS)
    for role, permissions in ROLES.items():
        assert permissions <= set(PERMISSIONS), role
    assert {"submitter", "reader", "integration_admin", "auditor"} <= set(ROLES)


def test_unknown_rpc_and_missing_permission_are_denied() -> None:
    admin = Principal("root-ish", "acme", frozenset(ROLES) - {"system"})
    with pytest.raises(PermissionDeniedError, match="not an allowed RPC"):
        authorize(admin, "/returnbridge.api.v1.AdminService/DropEverything")
    with pytest.raises(PermissionDeniedError):
        authorize(
            Principal("r", "acme", frozenset({"reader"})), "/returnbridge.api.v1.AdminService/QueryAudit"
        )
    assert authorize(
        Principal("a", "acme", frozenset({"auditor"})), "/returnbridge.api.v1.AdminService/QueryAudit"
    )


def test_require_tenant_match() -> None:
    set_principal(None)
    with pytest.raises(AuthError):
        require_tenant_match("")
    set_principal(Principal("rms", "acme", frozenset({"submitter"})))
    assert require_tenant_match("") == "acme" and require_tenant_match("acme") == "acme"
    with pytest.raises(PermissionDeniedError, match="tenant_id 'beta'"):
        require_tenant_match("beta")
    set_principal(Principal("system", "", frozenset({"system"}), "system"))
    assert require_tenant_match("beta") == "beta"
    set_principal(None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"api_keys": [{"name": "x", "tenant_id": "acme", "roles": ["reader"], "sha256": "abc"}]},
            "64 lower-case hex",
        ),
        (
            {"api_keys": [{"name": "x", "tenant_id": "acme", "roles": ["god"], "sha256": "a" * 64}]},
            "unknown roles",
        ),
        (
            {"api_keys": [{"name": "x", "tenant_id": "acme", "roles": ["system"], "sha256": "a" * 64}]},
            "reserved",
        ),
        (
            {"api_keys": [{"name": "x", "tenant_id": "a.b", "roles": ["reader"], "sha256": "a" * 64}]},
            "tenant id",
        ),
        (
            {"api_keys": [{"name": "x", "tenant_id": "acme", "roles": [], "sha256": "a" * 64}]},
            "at least one role",
        ),
        (
            {
                "api_keys": [
                    {"name": n, "tenant_id": "acme", "roles": ["reader"], "sha256": "a" * 64} for n in "xy"
                ]
            },
            "configured twice",
        ),
        (
            {"jwt": {"algorithms": ["none"], "issuer": "i", "audience": "a", "hmac_secret_env": "E"}},
            "never allowed",
        ),
        ({"jwt": {"algorithms": ["HS256"], "issuer": "i", "audience": "a"}}, "exactly one"),
        (
            {"jwt": {"algorithms": ["RS256"], "issuer": "i", "audience": "a", "hmac_secret_env": "E"}},
            "HMAC secret",
        ),
        (
            {"jwt": {"algorithms": ["HS256"], "issuer": "i", "audience": "a", "public_key_file": "k.pem"}},
            "need hmac",
        ),
        ({"jwt": {"algorithms": [], "issuer": "i", "audience": "a", "hmac_secret_env": "E"}}, "at least 1"),
        ({"tls": {"cert_file": "c", "key_file": "k"}}, "client_ca_file"),
        ({"rate_limits": {"principal_burst": 0}}, "greater than or equal to 1"),
        ({"unknown_section": {}}, "Extra inputs"),
    ],
)
def test_bad_security_config_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PydanticValidationError, match=message):
        SecurityConfig.model_validate(change)


def test_key_hashing_helpers() -> None:
    raw, digest = generate_api_key()
    assert raw.startswith("rbk_") and len(raw) > 40 and digest == hash_api_key(raw)
    assert hash_api_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hmac_secret_must_exist_and_be_long() -> None:
    config = security_config()
    with pytest.raises(ConfigError, match="RB_TEST_JWT_SECRET"):
        Authenticator(config, env={})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Authenticator(config, env={"RB_TEST_JWT_SECRET": "short"})


def test_raw_key_never_accepted_as_its_digest() -> None:
    auth = Authenticator(security_config(jwt=None))
    assert auth.authenticate(bearer(KEYS["reader"]), None).name == "reader-svc"
    with pytest.raises(AuthError):
        auth.authenticate(bearer(hash_api_key(KEYS["reader"])), None)


@pytest.fixture
def rsa_keys(tmp_path: Path) -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem_file = tmp_path / "jwt.pub.pem"
    pem_file.write_bytes(public_pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk |= {"kid": "key-1", "use": "sig", "alg": "RS256"}
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    return {"private": private, "public_pem": public_pem, "pem_file": pem_file, "jwks_file": jwks_file}


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "rms", "tenant_id": "acme", "roles": ["reader"],
            "iat": now, "exp": now + 300, **extra}  # fmt: skip


def _rs_config(**source: Any) -> SecurityConfig:
    return SecurityConfig.model_validate(
        {"jwt": {"algorithms": ["RS256"], "issuer": ISSUER, "audience": AUDIENCE, **source}}
    )


def test_rs256_with_pem_and_algorithm_confusion(rsa_keys: dict[str, Any]) -> None:
    auth = Authenticator(_rs_config(public_key_file=str(rsa_keys["pem_file"])))
    token = jwt.encode(_claims(), rsa_keys["private"], algorithm="RS256")
    principal = auth.authenticate(bearer(token), None)
    assert (principal.name, principal.tenant_id, principal.roles, principal.auth_method) == (
        "rms", "acme", frozenset({"reader"}), "jwt",
    )  # fmt: skip
    # The classic attack: sign HS256 with the public key as the secret (by hand: PyJWT refuses to).
    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = jwt.utils.base64url_encode(json.dumps(_claims()).encode())
    signature = hmac.new(rsa_keys["public_pem"], header + b"." + body, hashlib.sha256).digest()
    forged = (header + b"." + body + b"." + jwt.utils.base64url_encode(signature)).decode()
    with pytest.raises(AuthError, match="'HS256' is not allowed"):
        auth.authenticate(bearer(forged), None)


def test_rs256_with_jwks_key_ids(rsa_keys: dict[str, Any]) -> None:
    auth = Authenticator(_rs_config(jwks_file=str(rsa_keys["jwks_file"])))
    good = jwt.encode(_claims(), rsa_keys["private"], algorithm="RS256", headers={"kid": "key-1"})
    assert auth.authenticate(bearer(good), None).tenant_id == "acme"
    unknown = jwt.encode(_claims(), rsa_keys["private"], algorithm="RS256", headers={"kid": "key-2"})
    with pytest.raises(AuthError, match="key id"):
        auth.authenticate(bearer(unknown), None)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = jwt.encode(_claims(), other_key, algorithm="RS256", headers={"kid": "key-1"})
    with pytest.raises(AuthError, match="Signature"):
        auth.authenticate(bearer(wrong), None)


def test_unreadable_key_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read JWT public key"):
        Authenticator(_rs_config(public_key_file=str(tmp_path / "nope.pem")))
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": "nope"}')
    with pytest.raises(ConfigError, match="jwks_file"):
        Authenticator(_rs_config(jwks_file=str(bad)))
    tls = SecurityConfig.model_validate(
        {
            "tls": {
                "cert_file": str(tmp_path / "c.pem"),
                "key_file": str(tmp_path / "k.pem"),
                "require_client_cert": False,
            }
        }
    )
    with pytest.raises(ConfigError, match="cannot read TLS"):
        server_credentials(tls)
    assert server_credentials(SecurityConfig()) is None


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


async def test_mtls_identity_maps_to_principal(tmp_path: Path) -> None:
    ca = ScratchCa()
    server = ca.issue("returnbridge", dns=("localhost",), ip=True)
    mapped = ca.issue("rms-client", uris=("spiffe://acme/rms",))
    unmapped = ca.issue("stranger")
    rogue_ca = ScratchCa("rogue CA")
    rogue = rogue_ca.issue("rms-client", uris=("spiffe://acme/rms",))
    config = security_config(
        tls={
            "cert_file": _write(tmp_path, "server.pem", server.cert_pem),
            "key_file": _write(tmp_path, "server.key", server.key_pem),
            "client_ca_file": _write(tmp_path, "ca.pem", ca.cert_pem),
            "principals": [
                {
                    "identity": "spiffe://acme/rms",
                    "name": "rms-mtls",
                    "tenant_id": "acme",
                    "roles": ["submitter"],
                }
            ],
        }
    )

    def channel_creds(pair: Any) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            ca.cert_pem, private_key=pair.key_pem, certificate_chain=pair.cert_pem
        )

    running = await start(
        config, credentials=server_credentials(config), channel_credentials=channel_creds(mapped)
    )
    try:
        response = await running.returns.SubmitReturn(returns_pb2.SubmitReturnRequest())
        assert (response.tenant_id, response.return_id) == ("acme", "rms-mtls")
        # A bearer token wins over the certificate.
        response = await running.returns.SubmitReturn(
            returns_pb2.SubmitReturnRequest(), metadata=bearer(KEYS["beta_submitter"])
        )
        assert response.tenant_id == "beta"
    finally:
        await stop(running)

    for pair, code in ((unmapped, grpc.StatusCode.UNAUTHENTICATED), (rogue, grpc.StatusCode.UNAVAILABLE)):
        running = await start(
            config, credentials=server_credentials(config), channel_credentials=channel_creds(pair)
        )
        try:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await running.returns.SubmitReturn(returns_pb2.SubmitReturnRequest(), timeout=10)
            assert info.value.code() == code
        finally:
            await stop(running)


async def test_permission_denials_are_audited(nats_client: NatsClient) -> None:
    audit = await AuditLog.open(nats_client.jetstream())
    running = await start(security_config(), audit=audit)
    try:
        with pytest.raises(grpc.aio.AioRpcError):
            await running.admin.VerifyAudit(admin_pb2.VerifyAuditRequest(), metadata=bearer(KEYS["reader"]))
        with pytest.raises(grpc.aio.AioRpcError):
            await running.admin.VerifyAudit(
                admin_pb2.VerifyAuditRequest(), metadata=bearer("rbk_not_a_real_key_000")
            )
    finally:
        await stop(running)
    entries = [AuditEntry.from_json(s.data) async for s in audit.raw_entries()]
    assert [(e.action, e.actor, e.tenant_id, e.object_id) for e in entries] == [
        ("access.denied", "reader-svc", "acme", "/returnbridge.api.v1.AdminService/VerifyAudit")
    ]
    assert entries[0].request_id and "audit.read" in entries[0].details["reason"]


def test_security_doc_table_matches_roles() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    roles = ["submitter", "reader", "integration_admin", "auditor"]
    rows = {}
    for line in doc.splitlines():
        if line.startswith("| `") and line.count("|") == 7:
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = (cells[1], [c == "yes" for c in cells[2:]])
    assert set(rows) == set(PERMISSIONS)
    for permission, (rpcs, grants) in rows.items():
        expected_rpcs = sorted(m.split("/", 2)[2] for m, p in METHOD_PERMISSIONS.items() if p == permission)
        assert sorted(r.split(".")[-1] for r in rpcs.split(", ")) == expected_rpcs, permission
        assert grants == [permission in ROLES[r] for r in roles], permission


def test_parse_section_names_each_bad_key() -> None:
    from returnbridge.domain.validation import ReferenceDataConfig
    from returnbridge.gateway.security_config import parse_section
    from returnbridge.observability.alerts import AlertConfig

    with pytest.raises(ConfigError) as info:
        parse_section(
            SecurityConfig,
            {"api_keys": [{"name": "x", "tenant_id": "acme", "roles": ["reader"], "sha256": "nope"}],
             "rate_limits": {"tenant_burst": 0}},
            "security",
        )  # fmt: skip
    message = str(info.value)
    assert "security.api_keys.0.sha256:" in message and "security.rate_limits.tenant_burst:" in message
    with pytest.raises(ConfigError, match=r"alerts\.backlog_threshold"):
        parse_section(AlertConfig, {"backlog_threshold": 0}, "alerts")
    assert parse_section(ReferenceDataConfig, None, "reference_data") == ReferenceDataConfig()
