"""Errors are mapped once: servicers raise, the interceptor (or a stream's item) turns them into statuses."""

from __future__ import annotations

import ast
from pathlib import Path

from google.rpc import code_pb2

from returnbridge.errors import PermanentErpError, ValidationError
from returnbridge.services.errors import item_error, item_result, status_for_error

SERVICES = Path(__file__).parents[2] / "python" / "returnbridge" / "services"


def _caught_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            for part in node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]:
                if isinstance(part, ast.Name):
                    names.add(part.id)
    return names


def test_no_servicer_catches_return_bridge_error() -> None:
    offenders = []
    for path in sorted(SERVICES.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Servicer")):
            if "ReturnBridgeError" in _caught_names(cls):
                offenders.append(f"{path.name}:{cls.name}")
    assert offenders == []


def test_status_and_item_error_redact_erp_text_alike() -> None:
    exc = PermanentErpError("customer jane.doe@example.com rejected", erp="netsuite", code="X")
    status = status_for_error(exc)
    item = item_error(exc)
    assert "jane.doe@example.com" not in status.details and "jane.doe@example.com" not in item.message
    assert item.message == status.details
    assert status.code == exc.grpc_status


def test_item_error_carries_field_violations() -> None:
    from returnbridge.errors import FieldViolation

    item = item_error(ValidationError("bad", [FieldViolation("return_order.version", "must be > 0")]))
    assert item.code == code_pb2.INVALID_ARGUMENT
    assert [(v.field, v.description) for v in item.field_violations] == [
        ("return_order.version", "must be > 0")
    ]


async def test_item_result_turns_an_unexpected_error_into_internal() -> None:
    async def boom() -> str:
        raise RuntimeError("bug")

    async def fine() -> str:
        return "ok"

    outcome = await item_result(boom())
    assert not isinstance(outcome, str) and outcome.code == code_pb2.INTERNAL
    assert await item_result(fine()) == "ok"
