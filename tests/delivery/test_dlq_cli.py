"""``returnbridge dlq`` against a real grpc.aio server: list, show, replay, discard, tenant scoping."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from delivery.pipeline_harness import Pipeline, harness_key, make_order
from helpers.eventually import assert_eventually
from returnbridge.api.v1 import returns_pb2
from returnbridge.delivery.dlq_cli import add_dlq_commands
from returnbridge.domain.context import Principal, set_principal
from returnbridge.domain.tenant_ids import default_ids
from returnbridge.errors import ConfigError, NotFoundError
from returnbridge.services.admin import DEAD_LETTER_ID, AdminServicer


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_dlq_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


async def test_cli_lists_shows_replays_and_discards(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_principal(Principal(name="rms", tenant_id="acme"))
    pipeline.mappers.broken.update({"C1", "C2"})
    erp = await pipeline.start_worker("netsuite")
    for rid in ("C1", "C2"):
        await pipeline.intake.submit(returns_pb2.SubmitReturnRequest(return_order=make_order(rid)))

    async def two() -> list[int]:
        letters, _ = await pipeline.dead_letters.list("acme")
        assert len(letters) == 2
        # The API shows dead-letter ids as per-tenant opaque ids (issue 12).
        return [default_ids().encode("acme", DEAD_LETTER_ID, letter.id) for letter in letters]

    ids = await assert_eventually(two)
    await pipeline.start_grpc(AdminServicer(pipeline.dead_letters, pipeline.status))
    base = ["dlq", "--server", pipeline.address]

    monkeypatch.delenv("RETURNBRIDGE_TOKEN", raising=False)
    with pytest.raises(ConfigError):
        await asyncio.to_thread(run, [*base, "list"])
    monkeypatch.setenv("RETURNBRIDGE_TOKEN", harness_key("acme"))
    assert await asyncio.to_thread(run, [*base, "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["dead_letters"]
    assert [d["return_id"] for d in listed] == ["C1", "C2"] and "translation failed" in listed[0]["reason"]
    assert await asyncio.to_thread(run, [*base, "list"]) == 0
    table = capsys.readouterr().out
    assert "C1" in table and "C2" in table and "PENDING" in table
    await asyncio.to_thread(run, [*base, "show", str(ids[0])])
    shown = json.loads(capsys.readouterr().out)
    assert shown["return_id"] == "C1" and "payload" not in shown
    pipeline.mappers.broken.clear()
    replayed = [*base, "replay", str(ids[0]), "--comment", "mapping fixed", "--format", "json"]
    assert await asyncio.to_thread(run, replayed) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [ids[0]]
    # Replaying it again fails (no longer pending): reported, and the exit status says so.
    assert await asyncio.to_thread(run, [*base, "replay", str(ids[0])]) == 1
    assert "replayed 0 of 1 dead letters" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="--pending"):
        await asyncio.to_thread(run, [*base, "replay"])
    await asyncio.to_thread(run, [*base, "discard", str(ids[1])])
    monkeypatch.setenv("RETURNBRIDGE_TOKEN", harness_key("globex"))
    with pytest.raises(NotFoundError):
        await asyncio.to_thread(run, [*base, "show", str(ids[0])])

    async def delivered() -> None:
        assert sum(erp.creates.values()) == 1

    await assert_eventually(delivered)
