"""Console pages for operators: dead letters (filter, inspect, replay, discard, bulk replay), KPIs, sandbox."""

from __future__ import annotations

import json
from typing import Final

import grpc
from aiohttp import web
from google.protobuf import json_format

from returnbridge.api.v1 import admin_pb2, common_pb2, returns_pb2, translation_pb2
from returnbridge.console.kpis import read_kpis, sparkline
from returnbridge.console.samples import SAMPLES, sample_json
from returnbridge.console.sessions import SESSION, Session
from returnbridge.console.templating import STATE, PageDenied, read_form, render, require

__all__ = ["add_routes"]

_ACTIONS: Final = ("replay", "discard")
_MAX_BULK: Final = 500
# Dead letter ids are the API's uint64; a larger number cannot be put in a request at all.
_MAX_ID: Final = 2**64 - 1


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dead-letters", dead_letters)
    app.router.add_get("/dead-letters/{id:[0-9]+}", dead_letter)
    app.router.add_post("/dead-letters/{id:[0-9]+}/{action:replay|discard}", act_on_one)
    app.router.add_post("/dead-letters/bulk-replay", bulk_replay)
    app.router.add_get("/kpis", kpis)
    app.router.add_get("/kpis/live", kpis_live)
    app.router.add_get("/sandbox", sandbox)
    app.router.add_post("/sandbox", sandbox)
    app.router.add_post("/sandbox/validate", validate_override)


def _letter_id(value: str) -> int:
    """A dead letter id from a path segment or form field, or 400 (never a request the API cannot hold)."""
    try:
        letter_id = int(value)
    except ValueError:
        letter_id = -1
    if not 0 <= letter_id <= _MAX_ID:
        raise web.HTTPBadRequest(text=f"dead letter ids are whole numbers from 0 to {_MAX_ID}")
    return letter_id


def _erp_filter(value: str) -> int:
    if not value:
        return 0
    try:
        return int(common_pb2.ErpSystem.Value("ERP_SYSTEM_" + value.upper()))
    except ValueError:
        raise web.HTTPBadRequest(text=f"unknown ERP {value!r}") from None


async def dead_letters(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    erp = request.query.get("erp", "")
    return_id = request.query.get("return_id", "").strip()
    resolved = request.query.get("resolved") == "1"
    letters = await session.client.dead_letters(
        erp=_erp_filter(erp), return_id=return_id, include_resolved=resolved
    )
    return render(
        request,
        "dead_letters.html",
        {
            "letters": letters,
            "erp": erp,
            "return_id": return_id,
            "resolved": resolved,
            "erps": [n.removeprefix("ERP_SYSTEM_").lower() for n in common_pb2.ErpSystem.keys()[1:]],
            "pending": admin_pb2.DEAD_LETTER_STATE_PENDING,
        },
    )


def _payload_view(payload: bytes) -> str:
    """The dead-lettered message as readable JSON (it is a canonical ReturnOrder); hex when it is not."""
    try:
        order = returns_pb2.ReturnOrder.FromString(payload)
        return str(json_format.MessageToJson(order, preserving_proto_field_name=True, indent=2))
    except Exception:  # noqa: BLE001 - not a ReturnOrder: show the bytes instead of failing the page
        return payload.hex(" ", 16)


async def dead_letter(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    letter: admin_pb2.DeadLetter = await session.client.admin.GetDeadLetter(
        admin_pb2.GetDeadLetterRequest(id=_letter_id(request.match_info["id"]))
    )
    return render(
        request,
        "dead_letter.html",
        {
            "letter": letter,
            "payload": _payload_view(letter.payload),
            "pending": letter.state == admin_pb2.DEAD_LETTER_STATE_PENDING,
            "state": admin_pb2.DeadLetterState.Name(letter.state).removeprefix("DEAD_LETTER_STATE_"),
        },
    )


async def act_on_one(request: web.Request) -> web.StreamResponse:
    """Replay or discard one dead letter: the first POST asks for confirmation, the confirmed one acts."""
    session: Session = request[SESSION]
    form = await read_form(request)
    letter_id = _letter_id(request.match_info["id"])
    action = request.match_info["action"]
    comment = str(form.get("comment", "")).strip()
    if form.get("confirm") != "yes":
        return render(
            request,
            "confirm.html",
            {"action": action, "ids": [letter_id], "comment": comment, "post_to": request.path},
        )
    if action == "replay":
        await session.client.admin.ReplayDeadLetter(
            admin_pb2.ReplayDeadLetterRequest(id=letter_id, comment=comment)
        )
    else:
        await session.client.admin.DiscardDeadLetter(
            admin_pb2.DiscardDeadLetterRequest(id=letter_id, comment=comment)
        )
    raise web.HTTPSeeOther(f"/dead-letters/{letter_id}?done={action}")


async def bulk_replay(request: web.Request) -> web.StreamResponse:
    """Replay many (after a mapping fix); each replay is its own audited call, failures are listed."""
    session: Session = request[SESSION]
    form = await read_form(request)
    ids = sorted({_letter_id(str(v)) for v in form.getall("id", [])})
    if not ids:
        raise web.HTTPBadRequest(text="select at least one dead letter")
    if len(ids) > _MAX_BULK:
        raise web.HTTPBadRequest(text=f"at most {_MAX_BULK} dead letters per bulk replay")
    comment = str(form.get("comment", "")).strip()
    if form.get("confirm") != "yes":
        return render(
            request,
            "confirm.html",
            {"action": "replay", "ids": ids, "comment": comment, "post_to": request.path},
        )
    results: list[tuple[int, str]] = []
    for letter_id in ids:
        try:
            await session.client.admin.ReplayDeadLetter(
                admin_pb2.ReplayDeadLetterRequest(id=letter_id, comment=comment)
            )
            results.append((letter_id, "replayed"))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            results.append((letter_id, f"{exc.code().name}: {exc.details()}"))
    return render(request, "bulk_result.html", {"results": results})


def _may_see_kpis(request: web.Request) -> None:
    session: Session = request[SESSION]
    roles = set(request.app[STATE].settings.kpi_roles)
    if not session.principal.roles & roles:
        raise PageDenied(f"KPIs are service-wide (all tenants); they need one of the roles {sorted(roles)}")


def _kpi_context(request: web.Request) -> dict[str, object]:
    history = request.app[STATE].kpi_history
    return {
        "k": read_kpis(),
        "charts": {name: sparkline(points) for name, points in history.series.items()},
    }


async def kpis(request: web.Request) -> web.StreamResponse:
    _may_see_kpis(request)
    return render(request, "kpis.html", _kpi_context(request))


async def kpis_live(request: web.Request) -> web.StreamResponse:
    """The KPI panels alone; the page's script swaps them in every few seconds."""
    _may_see_kpis(request)
    return render(request, "kpis_panels.html", _kpi_context(request))


async def sandbox(request: web.Request) -> web.StreamResponse:
    require(request, "translation.use")
    session: Session = request[SESSION]
    state = request.app[STATE]
    form = await read_form(request) if request.method == "POST" else request.query
    mapping_id = str(form.get("mapping_id", "")) or (state.mapping_ids[0] if state.mapping_ids else "")
    sample = str(form.get("sample", ""))
    if sample and sample not in SAMPLES:
        raise web.HTTPBadRequest(text=f"unknown sample {sample!r}; expected one of {sorted(SAMPLES)}")
    document = str(form.get("document", "")) or sample_json(sample or next(iter(SAMPLES)))
    kind = str(form.get("kind", "return_order"))
    context: dict[str, object] = {
        "mapping_ids": state.mapping_ids,
        "mapping_id": mapping_id,
        "samples": list(SAMPLES),
        "sample": sample,
        "document": document,
        "kind": kind,
        "output": "",
        "explain": [],
        "problem": "",
        "override": "",
        "override_result": None,
        "can_validate": session.may("mapping.validate"),
    }
    if request.method == "POST" and form.get("run"):
        request_pb = translation_pb2.TranslateRequest(mapping_id=mapping_id, explain=True)
        try:
            if kind == "erp_payload":
                request_pb.erp_payload = document.encode()
            else:
                json_format.Parse(document, request_pb.return_order)
        except json_format.ParseError as exc:
            context["problem"] = f"the document is not a valid ReturnOrder in JSON: {exc}"
            return render(request, "sandbox.html", context, status=400)
        try:
            response: translation_pb2.TranslateResponse = await session.client.translation.Translate(
                request_pb
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                context["problem"] = f"{exc.code().name}: {exc.details()}"
                return render(request, "sandbox.html", context, status=400)
            raise
        context["output"] = _pretty(response.output)
        context["explain"] = list(response.explain)
    return render(request, "sandbox.html", context)


async def validate_override(request: web.Request) -> web.StreamResponse:
    session: Session = request[SESSION]
    state = request.app[STATE]
    form = await read_form(request)
    override = str(form.get("override", ""))
    upload = form.get("override_file")
    if isinstance(upload, web.FileField):
        override = upload.file.read().decode("utf-8", errors="replace")
    if not override.strip():
        raise web.HTTPBadRequest(text="paste an override file or choose one to upload")
    result: admin_pb2.ValidateMappingResponse = await session.client.admin.ValidateMapping(
        admin_pb2.ValidateMappingRequest(
            spec_yaml=override,
            file_name=str(form.get("file_name", "")) or "override.yaml",
            base_mapping_id=str(form.get("base_mapping_id", "")),
        )
    )
    mapping_id = state.mapping_ids[0] if state.mapping_ids else ""
    first_sample = next(iter(SAMPLES))
    return render(
        request,
        "sandbox.html",
        {
            "mapping_ids": state.mapping_ids,
            "mapping_id": str(form.get("base_mapping_id", "")) or mapping_id,
            "samples": list(SAMPLES),
            "sample": first_sample,
            "document": sample_json(first_sample),
            "kind": "return_order",
            "output": "",
            "explain": [],
            "problem": "",
            "override": override,
            "override_result": result,
            "can_validate": session.may("mapping.validate"),
        },
    )


def _pretty(output: bytes) -> str:
    try:
        return json.dumps(json.loads(output), indent=2, ensure_ascii=False)
    except ValueError:
        return output.decode("utf-8", errors="replace")
