"""Tamper detection (forged copies in a second stream, edited exports), export formats and the CLI."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient

from returnbridge.audit.cli import add_audit_commands
from returnbridge.audit.entry import AuditEntry
from returnbridge.audit.export import export_audit
from returnbridge.audit.log import AuditLog
from returnbridge.audit.verify import verify_entries, verify_jsonl, verify_stream
from returnbridge.bus.embedded import EmbeddedNatsServer
from returnbridge.errors import ValidationError


async def _filled_log(nats_client: NatsClient, count: int = 5) -> AuditLog:
    log = await AuditLog.open(nats_client.jetstream())
    for i in range(count):
        await log.record(
            action="return.submitted",
            object_type="return_order",
            object_id=f"RMA-{i}",
            tenant_id="acme" if i % 2 else "beta",
            after=f"order {i}".encode(),
            details={"rma_number": f"RMA-{i}"},
        )
    return log


async def _entries(log: AuditLog) -> list[bytes]:
    return [s.data async for s in log.raw_entries()]


def _forge(data: bytes, *, rehash: bool, **changes: object) -> bytes:
    entry = replace(AuditEntry.from_json(data), **changes)  # type: ignore[arg-type]
    return (entry.sealed() if rehash else entry).to_json()


async def _copy_into_second_stream(nats_client: NatsClient, entries: list[bytes]) -> AuditLog:
    copy = await AuditLog.open(
        nats_client.jetstream(), stream="RB_AUDIT_FORGED", subject_prefix="forged.audit"
    )
    js = nats_client.jetstream()
    for data in entries:
        await js.publish("forged.audit.acme", data, stream="RB_AUDIT_FORGED")
    return copy


async def test_faithful_copy_verifies(nats_client: NatsClient) -> None:
    log = await _filled_log(nats_client)
    copy = await _copy_into_second_stream(nats_client, await _entries(log))
    assert (await verify_stream(copy)).ok


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        # Edited in place, hash left alone: the entry no longer matches its own hash.
        (lambda e: [*e[:2], _forge(e[2], rehash=False, object_id="RMA-999"), *e[3:]], [(3, "altered")]),
        # Edited and re-hashed: the successor's link exposes it.
        (lambda e: [*e[:2], _forge(e[2], rehash=True, actor="someone-else"), *e[3:]], [(4, "broken_link")]),
        # An entry dropped from the copy: every later entry sits one position early and the link breaks.
        (
            lambda e: [*e[:2], *e[3:]],
            [(3, "reordered"), (4, "broken_link"), (4, "reordered")],
        ),
        # Two entries swapped.
        (
            lambda e: [e[0], e[2], e[1], *e[3:]],
            [(2, "reordered"), (3, "broken_link"), (3, "reordered"), (2, "broken_link"), (4, "broken_link")],
        ),
        # A forged entry appended with a guessed predecessor.
        (lambda e: [*e, _forge(e[4], rehash=True, seq=6, prev_hash="f" * 64)], [(6, "broken_link")]),
        # Something that is not an entry at all.
        (lambda e: [*e[:1], b'{"hello": "world"}', *e[2:]], [(2, "malformed")]),
    ],
    ids=["altered", "altered-rehashed", "missing", "reordered", "appended-forgery", "foreign"],
)
async def test_tampered_copy_in_second_stream_is_detected(
    nats_client: NatsClient, tamper: object, expected: list[tuple[int, str]]
) -> None:
    log = await _filled_log(nats_client)
    forged = tamper(await _entries(log))  # type: ignore[operator]
    copy = await _copy_into_second_stream(nats_client, forged)
    report = await verify_stream(copy)
    assert [(p.seq, p.kind) for p in report.problems] == expected


async def test_edited_export_is_detected(nats_client: NatsClient) -> None:
    log = await _filled_log(nats_client, count=6)
    buffer = io.StringIO()
    assert await export_audit(log, buffer) == 6
    lines = buffer.getvalue().splitlines()
    assert verify_jsonl(lines).ok

    dropped = lines[:3] + lines[4:]
    assert [(p.seq, p.kind) for p in verify_jsonl(dropped).problems] == [(4, "missing"), (5, "broken_link")]

    edited = json.loads(lines[1])
    edited["details"]["rma_number"] = "RMA-X"
    changed = [lines[0], json.dumps(edited), *lines[2:]]
    assert [(p.seq, p.kind) for p in verify_jsonl(changed).problems] == [(2, "altered")]

    swapped = [lines[0], lines[2], lines[1], *lines[3:]]
    kinds = {p.kind for p in verify_jsonl(swapped).problems}
    assert kinds == {"missing", "reordered", "broken_link"}


def test_verify_entries_empty_and_from_the_middle() -> None:
    assert verify_entries([]).ok
    entry = AuditEntry(
        seq=10, ts="2026-11-27T10:00:00.000000+00:00", tenant_id="acme", actor="a", auth_method="api_key",
        request_id="", action="return.submitted", object_type="return_order", object_id="R",
        before_sha256="", after_sha256="", prev_hash="a" * 64,
    ).sealed()  # fmt: skip
    assert verify_entries([(10, entry.to_json())], first_seq=10, prev_hash=None).ok
    assert not verify_entries([(10, entry.to_json())], first_seq=10).ok


async def test_export_range_tenant_and_csv(nats_client: NatsClient) -> None:
    log = await _filled_log(nats_client, count=4)
    entries = [AuditEntry.from_json(d) for d in await _entries(log)]
    out = io.StringIO()
    count = await export_audit(log, out, fmt="csv", tenant_id="acme", since=entries[1].timestamp)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert count == 2 and [r["object_id"] for r in rows] == ["RMA-1", "RMA-3"]
    assert json.loads(rows[0]["details"]) == {"rma_number": "RMA-1"}
    until = io.StringIO()
    assert await export_audit(log, until, until=entries[2].timestamp) == 2
    with pytest.raises(ValidationError):
        await export_audit(log, io.StringIO(), fmt="xml")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="returnbridge")
    add_audit_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_cli_verify_and_export(
    nats_server: EmbeddedNatsServer,
    nats_client: NatsClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _filled_log(nats_client, count=3)
    out_file = tmp_path / "audit.jsonl"
    args = _parse(
        [
            "audit",
            "export",
            "--nats-url",
            nats_server.url,
            "--since",
            "2000-01-01T00:00:00Z",
            "-o",
            str(out_file),
        ]
    )
    # The CLI runs its own event loop; keep it off ours.
    assert await asyncio.to_thread(args.func, args) == 0
    assert len(out_file.read_text().splitlines()) == 3

    args = _parse(["audit", "verify", "--nats-url", nats_server.url])
    assert await asyncio.to_thread(args.func, args) == 0
    assert "audit chain OK: 3 entries checked" in capsys.readouterr().out

    lines = out_file.read_text().splitlines()
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([lines[0], lines[2]]) + "\n")
    args = _parse(["audit", "verify", "--file", str(tampered)])
    assert args.func(args) == 1
    assert "missing" in capsys.readouterr().out

    bad = _parse(["audit", "export", "--since", "yesterday"])
    with pytest.raises(ValidationError, match="since"):
        bad.func(bad)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_cli_verify_names_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    from returnbridge.cli import main

    path = tmp_path / "export.jsonl"
    if kind == "directory":
        path.mkdir()
    assert main(["audit", "verify", "--file", str(path)]) == 3
    err = capsys.readouterr().err
    assert f"cannot read audit export {path}" in err and "Traceback" not in err


def test_verify_reports_deeply_nested_line_as_malformed() -> None:
    report = verify_jsonl([b'{"a":' * 20_000 + b"1" + b"}" * 20_000])
    assert [p.kind for p in report.problems] == ["malformed"]
    assert "nested too deeply" in report.problems[0].message
