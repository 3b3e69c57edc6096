"""The RBAC table in docs/security.md, checked against the proto (every RPC has a rule) and the live server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import pytest

from returnbridge.gateway.rbac import METHOD_PERMISSIONS, ROLES
from security.conftest import ROLES as SUITE_ROLES
from security.conftest import Served, bearer, key_md, make_jwt
from security.rpcs import Rpc, api_rpcs

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
_ROW = re.compile(r"^\| `(?P<perm>[a-z.]+)` \| (?P<rpcs>[^|]+) \|(?P<grants>( [^|]+ \|){4})\s*$")


def doc_table() -> dict[str, tuple[str, set[str]]]:
    """RPC (``Service.Method``) -> (permission, roles granted), as the documentation states it."""
    header = "| permission | RPCs | submitter | reader | integration_admin | auditor |"
    text = DOC.read_text(encoding="utf-8")
    assert header in text, "docs/security.md lost its RBAC table header"
    table: dict[str, tuple[str, set[str]]] = {}
    for line in text[text.index(header) :].splitlines()[2:]:
        match = _ROW.match(line)
        if not match:
            break
        grants = [g.strip() for g in match["grants"].strip(" |").split("|")]
        roles = {role for role, mark in zip(SUITE_ROLES, grants, strict=True) if mark == "yes"}
        for rpc in match["rpcs"].split(","):
            assert rpc.strip() not in table, f"{rpc.strip()} listed twice"
            table[rpc.strip()] = (match["perm"], roles)
    return table


def test_every_rpc_of_the_contract_has_exactly_one_documented_rule() -> None:
    table = doc_table()
    served = {rpc.short for rpc in api_rpcs()}
    assert served - set(table) == set(), "RPCs without a row in docs/security.md"
    # v1 reflection is documented (and mapped) although grpcio-reflection serves only v1alpha today.
    assert set(table) - served <= {"v1.ServerReflection.ServerReflectionInfo"}


def test_documented_table_is_what_the_code_enforces() -> None:
    table = doc_table()
    for rpc in api_rpcs():
        permission, roles = table[rpc.short]
        assert METHOD_PERMISSIONS[rpc.path] == permission, rpc.short
        assert {r for r in SUITE_ROLES if permission in ROLES[r]} == roles, rpc.short


async def _outcome(served: Served, rpc: Rpc, metadata: object) -> grpc.StatusCode:
    try:
        # Watch streams of an allowed caller wait for events: their deadline is an allowed outcome.
        await rpc.call(served.channel, metadata=metadata, timeout=3.0)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("credential", ["api_key", "jwt"])
async def test_live_matrix_matches_the_table(served: Served, credential: str) -> None:
    table = doc_table()
    cases = [(rpc, role) for rpc in api_rpcs() for role in SUITE_ROLES]

    def md(role: str) -> object:
        if credential == "api_key":
            return key_md("beta", role)
        return bearer(make_jwt("beta", [role]))

    codes = await asyncio.gather(*(_outcome(served, rpc, md(role)) for rpc, role in cases))
    wrong = []
    for (rpc, role), code in zip(cases, codes, strict=True):
        allowed = role in table[rpc.short][1]
        if allowed and code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            wrong.append(f"{role} refused {rpc.short}: {code.name}")
        if not allowed and code != grpc.StatusCode.PERMISSION_DENIED:
            wrong.append(f"{role} not denied {rpc.short}: {code.name}")
    assert not wrong
    assert len(cases) == 4 * len(api_rpcs()) >= 72
