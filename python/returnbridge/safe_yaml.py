"""Bounded YAML for text we do not trust: no anchors or aliases, a size cap, a node and depth budget, a deadline.

A key given twice in one mapping is an error, never the last one silently winning.

PyYAML's safe loader still expands aliases lazily: a few hundred bytes of nested anchors turn into 10^9 nodes as
soon as anything walks the tree, which froze the event loop (issue 12). Refusing anchors outright costs nothing for
mapping specs (the shipped packs use none) and makes the work linear in the input size; the budgets below then
bound that linear work. The deadline is checked while composing, so a parse in a worker thread stops by itself.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import yaml

from returnbridge.errors import FieldViolation, ValidationError

__all__ = [
    "DEFAULT_LIMITS",
    "FILE_LIMITS",
    "YamlLimitError",
    "YamlLimits",
    "compose",
    "load",
    "load_with_node",
    "run_bounded",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Budgets for one document.

    The defaults hold the largest shipped pack (7.5 KB, 802 nodes) over ten times. Pure-Python PyYAML composes
    only ~5,000-50,000 nodes/s on a loaded 2-core machine, so the node budget is what keeps the worst document
    to a few seconds of one core; the time budget is the backstop, generous enough that a shipped pack loaded
    at startup on a busy machine never meets it (2 s did).
    """

    max_bytes: int = 262_144
    max_nodes: int = 10_000
    max_depth: int = 64
    time_budget_seconds: float = 10.0


DEFAULT_LIMITS: Final = YamlLimits()
#: For files an operator writes (service configuration, routing files): larger than any sane one, still bounded.
FILE_LIMITS: Final = YamlLimits(max_bytes=1_048_576, max_nodes=100_000, time_budget_seconds=30.0)


class YamlLimitError(ValidationError):
    """The YAML text broke one of the limits; ``limit`` names it (``max_bytes``, ``aliases``, ...)."""

    def __init__(self, limit: str, message: str, *, field: str = "yaml", line: int = 0) -> None:
        if not message.startswith("YAML limit "):
            message = f"YAML limit {limit}: {message}"
        super().__init__(message, [FieldViolation(field, message)])
        self.limit = limit
        self.line = line

    def for_field(self, field: str) -> YamlLimitError:
        """The same refusal reported against a request field (e.g. ``spec_yaml``)."""
        return YamlLimitError(self.limit, str(self), field=field, line=self.line)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases and counts nodes, depth and time while composing."""

    def __init__(self, stream: str, limits: YamlLimits, deadline: float) -> None:
        super().__init__(stream)
        self._limits = limits
        self._deadline = deadline
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlLimitError(
                "aliases", f"line {line}: YAML anchors and aliases (&name, *name) are not allowed", line=line
            )
        self._nodes += 1
        if self._nodes > self._limits.max_nodes:
            raise YamlLimitError(
                "max_nodes", f"line {line}: more than {self._limits.max_nodes} YAML nodes", line=line
            )
        if self._depth >= self._limits.max_depth:
            raise YamlLimitError(
                "max_depth", f"line {line}: nesting deeper than {self._limits.max_depth} levels", line=line
            )
        if time.monotonic() > self._deadline:
            raise YamlLimitError(
                "time_budget",
                f"line {line}: parsing took longer than {self._limits.time_budget_seconds:g} s",
                line=line,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[return-value]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of two equal keys; a file saying one thing twice is a mistake to name, not guess.
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            # Python refuses int() of more than sys.get_int_max_str_digits() digits (4,300 by default).
            line = node.start_mark.line + 1
            raise YamlLimitError(
                "int_digits", f"line {line}: integer with too many digits", line=line
            ) from None


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def _check_size(text: str, limits: YamlLimits) -> None:
    # Cheap upper bound first: a str of n code points is at most 4n UTF-8 bytes.
    if len(text) * 4 > limits.max_bytes and len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise YamlLimitError("max_bytes", f"YAML text is larger than {limits.max_bytes} bytes")


def compose(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> yaml.Node | None:
    """The node tree of one YAML document (None when empty), within ``limits``.

    Raises:
        YamlLimitError: a limit was broken (INVALID_ARGUMENT; ``limit`` names it).
        yaml.YAMLError: the text is not valid YAML.
    """
    _check_size(text, limits)
    loader = _BoundedLoader(text, limits, time.monotonic() + limits.time_budget_seconds)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


def load(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> Any:
    """Plain Python values (YAML 1.1 safe types) of one document, within ``limits``.

    Raises:
        YamlLimitError: a limit was broken.
        yaml.YAMLError: the text is not valid YAML.
    """
    _check_size(text, limits)
    loader = _BoundedLoader(text, limits, time.monotonic() + limits.time_budget_seconds)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_with_node(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> tuple[Any, yaml.Node | None]:
    """Like ``load``, plus the node tree the values came from (its marks give each key's line).

    Raises:
        YamlLimitError: a limit was broken.
        yaml.YAMLError: the text is not valid YAML (duplicate keys included).
    """
    _check_size(text, limits)
    loader = _BoundedLoader(text, limits, time.monotonic() + limits.time_budget_seconds)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


# Untrusted parses share two threads, so a burst of them cannot take every executor thread or core.
_SLOTS: Final = 2
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def run_bounded(work: Callable[[], T], *, budget_seconds: float, what: str, field: str = "yaml") -> T:
    """Run CPU-bound ``work`` on untrusted input off the event loop, refusing it after ``budget_seconds``.

    A slot is held until the thread really ends, even after a refusal, so refused work cannot pile up threads;
    ``work`` should check its own deadline (``compose``/``load`` do) so such a thread ends soon after.

    Raises:
        YamlLimitError: limit ``time_budget`` when the budget (including the wait for a slot) ran out.
    """
    loop = asyncio.get_running_loop()
    semaphore = _semaphores.setdefault(loop, asyncio.Semaphore(_SLOTS))
    deadline = time.monotonic() + budget_seconds

    def refused() -> YamlLimitError:
        message = f"{what} took longer than its {budget_seconds:g} s budget"
        return YamlLimitError("time_budget", message, field=field)

    try:
        await asyncio.wait_for(semaphore.acquire(), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise refused() from None

    def finished(future: asyncio.Future[T]) -> None:
        semaphore.release()
        if not future.cancelled():
            future.exception()  # retrieved here when nobody waits for it any more

    running = loop.run_in_executor(None, work)
    running.add_done_callback(finished)
    try:
        return await asyncio.wait_for(asyncio.shield(running), timeout=max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise refused() from None
