"""One delivery message in hand: the decoded return, its planned steps, headers and translations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nats.aio.msg import Msg

from returnbridge.api.v1 import common_pb2, returns_pb2
from returnbridge.delivery.headers import H_STEPS
from returnbridge.domain.steps import PlannedStep, decode_steps
from returnbridge.errors import ErpError, MappingError, ReturnBridgeError, TranslationError, ValidationError

__all__ = ["ReturnKey", "Work", "error_proto", "read_messages"]

#: (tenant id, return id): the unit of ordering.
ReturnKey = tuple[str, str]

_CLASSES = {
    "transient": common_pb2.ERROR_CLASS_TRANSIENT,
    "permanent": common_pb2.ERROR_CLASS_PERMANENT,
    "auth": common_pb2.ERROR_CLASS_AUTH,
}


@dataclass(slots=True)
class Work:
    msg: Msg
    order: returns_pb2.ReturnOrder
    steps: list[PlannedStep]
    headers: dict[str, str]
    translations: dict[str, bytes | ReturnBridgeError] = field(default_factory=dict)
    # (document type, id) of the ERP references the translations were made with.
    refs_used: tuple[tuple[str, str], ...] = ()
    # True once the connection it was fetched on dropped (delivery/sessions.py); by default never.
    stale: Callable[[], bool] = lambda: False

    @property
    def key(self) -> ReturnKey:
        return (self.order.tenant_id, self.order.return_id)

    async def nak(self, delay: float | None = None) -> None:
        """Hand the message back for redelivery after ``delay``, unless it was fetched before a reconnect.

        A nak names its message by stream sequence, so a stale copy's nak acts on the delivery the server made
        since, which another worker may be working on: the server hands the message out once more, and two
        copies that look the document up at once both miss it and both create it (``make chaos``
        nats_restart, issue 13). A stale copy is dropped instead; the server redelivers after the ack wait
        if it still needs to.
        """
        if not self.stale():
            await self.msg.nak(delay=delay)


def read_messages(msgs: list[Msg]) -> tuple[list[Work], list[tuple[Msg, Exception]]]:
    """Decode a fetched batch; messages that cannot be decoded are returned with the reason."""
    works: list[Work] = []
    malformed: list[tuple[Msg, Exception]] = []
    for msg in msgs:
        try:
            headers = dict(msg.headers or {})
            works.append(
                Work(
                    msg, returns_pb2.ReturnOrder.FromString(msg.data), decode_steps(headers[H_STEPS]), headers
                )
            )
        except (KeyError, ValueError) as exc:
            malformed.append((msg, exc))
    return works, malformed


def _code_of(exc: Exception) -> str:
    if isinstance(exc, TranslationError):
        return "TRANSLATION_FAILED"
    if isinstance(exc, MappingError):
        return "MAPPING_INVALID"
    if isinstance(exc, ValidationError):
        return "INVALID_DOCUMENT"
    return "PIPELINE_ERROR"


def error_proto(exc: Exception, erp: int, error_class: str) -> common_pb2.ErpError:
    """The ErpError stored with a document: the ERP's own code and message, or the translation failure."""
    if isinstance(exc, ErpError):
        return common_pb2.ErpError(
            erp=erp,  # type: ignore[arg-type]
            code=exc.code,
            message=exc.erp_message[:2000],
            http_status=exc.http_status,
            error_class=_CLASSES[error_class],
        )
    rule = getattr(exc, "rule", "")
    path = getattr(exc, "path", "")
    return common_pb2.ErpError(
        erp=erp,  # type: ignore[arg-type]
        # A stable code, never a Python class name: this reaches tenants (status, dead letters).
        code=_code_of(exc) + (f":{rule}" if rule else ""),
        message=(f"{path}: " if path else "") + str(exc)[:2000],
        error_class=_CLASSES[error_class],
    )
