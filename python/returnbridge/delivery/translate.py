"""Translating the works of a batch: one Rust crossing per mapping id, ERP references filled, round trip verified."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from returnbridge.api.v1 import returns_pb2
from returnbridge.delivery.work import Work
from returnbridge.errors import NotFoundError, TranslationError
from returnbridge.mapping.ports import MapperSource
from returnbridge.mapping.roundtrip import round_trip_mismatches
from returnbridge.observability.metrics import count_processing

__all__ = ["Translator", "dry_run", "set_references"]


def set_references(work: Work, record: dict[str, Any] | None) -> bool:
    """Fill ``erp_references`` from the documents delivered so far; True when they changed since translating."""
    refs: list[tuple[str, str, str, int]] = []
    if record is not None:
        for doc in record["documents"].values():
            if doc["state"] == "DELIVERED" and doc["version"] < work.order.version:
                refs.append((doc["document_type"], doc["erp_document_id"], doc["step"], doc["erp"]))
    refs.sort()
    used = tuple((r[0], r[1]) for r in refs)
    if used == work.refs_used:
        return False
    del work.order.erp_references[:]
    for document_type, document_id, _step, erp in refs:
        work.order.erp_references.add(erp=erp, document_type=document_type, document_id=document_id)
    work.refs_used = used
    return True


def dry_run(
    mappers: MapperSource,
    mapping_id: str,
    order: returns_pb2.ReturnOrder,
    *,
    verify_round_trip: bool,
    payload: bytes | None = None,
) -> TranslationError | None:
    """What the worker's translation of ``order`` through ``mapping_id`` would fail with, if anything.

    Submit runs this so that a return the mapping (a lookup table, a required input, a format, a lost field)
    would refuse is refused before it is accepted, instead of dead-lettering after the RMS was told ACCEPTED.
    Outbound specs read only the order itself, so the result at submit is the result at delivery. ``payload``:
    the order already serialized (deterministic), to save serializing it once per mapping.
    """
    try:
        output = mappers.get(mapping_id).translate(payload or order.SerializeToString(deterministic=True))
    except TranslationError as exc:
        return exc
    if not verify_round_trip:
        return None
    problems = round_trip_mismatches(mappers, mapping_id, order, output)
    if not problems:
        return None
    return TranslationError(
        f"round trip through {mapping_id}_in: " + "; ".join(problems[:10]), rule="roundtrip"
    )


class Translator:
    """Fills ``Work.translations`` (payload bytes, or the error that makes the step a dead letter)."""

    def __init__(self, mappers: MapperSource, *, verify_round_trip: bool) -> None:
        self.mappers = mappers
        self._verify = verify_round_trip

    def translate(self, works: list[Work]) -> None:
        by_mapping: dict[str, list[Work]] = defaultdict(list)
        for work in works:
            for step in work.steps:
                by_mapping[step.mapping].append(work)
        for mapping_id, group in by_mapping.items():
            try:
                mapper = self.mappers.get(mapping_id)
            except NotFoundError as exc:
                for work in group:
                    work.translations[mapping_id] = exc
                continue
            documents = [work.order.SerializeToString(deterministic=True) for work in group]
            for work, output in zip(group, mapper.translate_batch(documents), strict=True):
                work.translations[mapping_id] = self._verified(mapping_id, work.order, output)

    def retranslate(self, work: Work, mapping_id: str) -> None:
        try:
            output = self.mappers.get(mapping_id).translate(work.order.SerializeToString(deterministic=True))
        except (TranslationError, NotFoundError) as exc:
            work.translations[mapping_id] = exc
            return
        work.translations[mapping_id] = self._verified(mapping_id, work.order, output)

    def _verified(
        self, mapping_id: str, order: returns_pb2.ReturnOrder, output: bytes | TranslationError
    ) -> bytes | TranslationError:
        """The payload, or a TranslationError when it would not carry what the RMS sent (processing accuracy)."""
        if isinstance(output, TranslationError) or not self._verify:
            return output
        problems = round_trip_mismatches(self.mappers, mapping_id, order, output)
        if not problems:
            return output
        count_processing("roundtrip_mismatch")
        return TranslationError(
            f"round trip through {mapping_id}_in: " + "; ".join(problems[:10]), rule="roundtrip"
        )
