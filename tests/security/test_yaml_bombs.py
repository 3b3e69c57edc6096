"""Untrusted YAML stays bounded: alias bombs, depth bombs, node floods, oversized text and slow parses are refused
by name, quickly, off the event loop (ValidateMapping, `mapping check`, override files)."""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import time
from pathlib import Path

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from helpers.yaml_bombs import laughs
from returnbridge import safe_yaml
from returnbridge.api.v1 import admin_pb2
from returnbridge.errors import SpecError
from returnbridge.mapping import MappingRegistry
from returnbridge.mapping.cli import add_mapping_commands
from security.conftest import Served, key_md


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    bomb = laughs()
    assert len(bomb) < 600
    with pytest.raises(safe_yaml.YamlLimitError) as info:
        safe_yaml.load(bomb)
    # Refused by the alias rule, i.e. at the first anchor, before any expansion (no wall-clock bound needed).
    assert info.value.limit == "aliases"
    with pytest.raises(safe_yaml.YamlLimitError, match="anchors and aliases"):
        safe_yaml.compose("a: &x 1\n")


@pytest.mark.parametrize(
    ("text", "limits", "limit"),
    [
        ("[" * 500 + "]" * 500, safe_yaml.DEFAULT_LIMITS, "max_depth"),
        (
            "\n".join(f"- {i}" for i in range(2_000)),
            safe_yaml.YamlLimits(max_nodes=1_000, time_budget_seconds=60),
            "max_nodes",
        ),
        ("a: " + "x" * 2_000, safe_yaml.YamlLimits(max_bytes=1_000), "max_bytes"),
        ("a: [1, 2, 3]", safe_yaml.YamlLimits(time_budget_seconds=0.0), "time_budget"),
    ],
)
def test_each_limit_is_named(text: str, limits: safe_yaml.YamlLimits, limit: str) -> None:
    with pytest.raises(safe_yaml.YamlLimitError) as info:
        safe_yaml.compose(text, limits)
    assert info.value.limit == limit and f"YAML limit {limit}" in str(info.value)


def test_plain_yaml_still_loads() -> None:
    assert safe_yaml.load("a: [1, {b: c}]\nd: 'x'\n") == {"a": [1, {"b": "c"}], "d": "x"}
    with pytest.raises(yaml.YAMLError):
        safe_yaml.load("a: [")


async def test_run_bounded_refuses_work_past_its_budget() -> None:
    with pytest.raises(safe_yaml.YamlLimitError) as info:
        await safe_yaml.run_bounded(
            lambda: time.sleep(0.5), budget_seconds=0.05, what="parse", field="spec_yaml"
        )
    assert info.value.limit == "time_budget" and info.value.violations[0].field == "spec_yaml"


def _violation(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    next(d for d in status.details if d.Is(bad.DESCRIPTOR)).Unpack(bad)
    return " ".join(f"{v.field}: {v.description}" for v in bad.field_violations)


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        (laughs(), "YAML limit aliases"),
        ("- " * 3_000 + "x", "YAML limit max_depth"),
        # On a loaded machine the time budget may speak first; either way a named limit ends the parse.
        ("- a\n" * 12_000, "YAML limit max_nodes|YAML limit time_budget"),
        # PyYAML's int() of more than 4,300 digits raised ValueError: INTERNAL before the loader named it.
        ("rules: 1" + "0" * 5_000, "YAML limit int_digits"),
    ],
    ids=["alias bomb", "depth bomb", "node flood", "integer past the digit limit"],
)
async def test_validate_mapping_refuses_bombs_while_health_answers(
    served: Served, spec: str, named: str
) -> None:
    md = key_md("beta", "integration_admin")
    started = time.monotonic()

    async def validate() -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await served.admin.ValidateMapping(
                admin_pb2.ValidateMappingRequest(spec_yaml=spec), metadata=md, timeout=30
            )
        return info.value

    calls = [asyncio.ensure_future(validate()) for _ in range(4)]
    health = await served.health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    for error in await asyncio.gather(*calls):
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "spec_yaml" in _violation(error) and re.search(named, _violation(error))
    assert time.monotonic() - started < 20  # generous bound; the point is that it ends at all


async def test_validate_mapping_refuses_text_over_the_size_cap(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await served.admin.ValidateMapping(
            admin_pb2.ValidateMappingRequest(spec_yaml="#" * 300_000),
            metadata=key_md("beta", "integration_admin"),
            timeout=30,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec_yaml: at most 262144 bytes" in _violation(info.value)


async def test_validate_mapping_still_checks_a_good_spec(served: Served) -> None:
    text = (
        "override: netsuite/return_authorization\n"
        "tables:\n  locations: {entries: {DAL1: '17'}}\n"
        "rules:\n  remove: [header.memo]\n"
    )
    md = key_md("beta", "integration_admin")
    reply = await served.admin.ValidateMapping(
        admin_pb2.ValidateMappingRequest(spec_yaml=text), metadata=md, timeout=30
    )
    assert reply.valid, reply.problems
    broken = text.replace("header.memo", "header.no_such_rule")
    reply = await served.admin.ValidateMapping(
        admin_pb2.ValidateMappingRequest(spec_yaml=broken), metadata=md, timeout=30
    )
    assert not reply.valid and reply.problems


def _mapping_check(spec: Path) -> tuple[int, str]:
    """``returnbridge mapping check SPEC``: its exit code and what it wrote to stderr."""
    parser = argparse.ArgumentParser(prog="returnbridge")
    add_mapping_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mapping", "check", str(spec)])
    out, err = io.StringIO(), io.StringIO()
    return args.func(args, out=out, err=err), err.getvalue()


def test_mapping_check_cli_names_the_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs(), encoding="utf-8")
    code, err = _mapping_check(bomb)
    assert code != 0
    assert "aliases" in err and "bomb.yaml" in err


def test_override_file_with_aliases_is_refused_at_load(tmp_path: Path) -> None:
    override = tmp_path / "override.yaml"
    override.write_text("override: netsuite/return_authorization\n" + laughs(3, 3), encoding="utf-8")
    with pytest.raises(SpecError, match="aliases"):
        MappingRegistry.load(overrides=[override])


def test_mapping_check_cli_names_an_integer_past_the_digit_limit(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("mapping: netsuite/x\nversion: 1" + "0" * 5_000 + "\n", encoding="utf-8")
    code, err = _mapping_check(spec)
    assert code != 0
    assert "spec.yaml:2" in err and "too many digits" in err


def test_duplicate_keys_are_refused_with_their_line() -> None:
    with pytest.raises(yaml.YAMLError, match="duplicate key 'a'") as info:
        safe_yaml.load("a: 1\nb: 2\na: 3\n")
    mark = getattr(info.value, "problem_mark", None)
    assert mark is not None and mark.line + 1 == 3
