"""What the connector conformance suite needs from each ERP: a running simulator, connectors, probes.

A harness module ``tests/connectors/harnesses/<erp>.py`` exposes ``HARNESSES``: a list of zero-argument
factories (usually the harness classes themselves) returning a ``ConnectorHarness``. The suite calls
``await harness.start()`` before and ``await harness.stop()`` after each test, so every test gets a fresh
simulator. Test ids come from the factory's ``name`` attribute (or its ``__name__``).

Everything the suite checks goes through the public ``Connector`` interface; the harness only sets the
scene (requests, faults, ERP-side stock changes) and inspects the simulator's own state, never the
connector's internals.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from returnbridge.connectors.base import Connector, DocumentRequest

# Capabilities a harness may lack (e.g. an RFC stand-in has no HTTP status to carry Retry-After).
# The suite skips a check whose capability is not in ``ConnectorHarness.capabilities``.
CAP_RETRY_AFTER = "retry_after"  # throttling surfaces as TransientErpError with retry_after
CAP_HANG = "hang"  # the ERP can stop answering; the connector's timeout must fire
CAP_COMMIT_THEN_DROP = "commit_then_drop"  # the ERP applies a write and the answer is lost
CAP_AUTH = "auth"  # a connector with wrong credentials can be built
CAP_INVENTORY = "inventory"  # read_inventory is implemented
CAP_STATUS_CHANGES = "status_changes"  # read_status_changes is implemented
CAP_HTTP = "http"  # the connector talks HTTP, so its requests are counted (connectors.tally)
ALL_CAPABILITIES = frozenset(
    {CAP_RETRY_AFTER, CAP_HANG, CAP_COMMIT_THEN_DROP, CAP_AUTH, CAP_INVENTORY, CAP_STATUS_CHANGES, CAP_HTTP}
)
#: The simulators' duplicate policies: "refuse" a second document with our reference, or "accept" it.
DUPLICATE_POLICIES = ("refuse", "accept")


@runtime_checkable
class ConnectorHarness(Protocol):
    """One connector configuration against its simulator (e.g. "netsuite-tba", "sap_odata")."""

    #: Test id, unique over all harnesses.
    name: str
    #: Document type the suite creates (the first document of the ERP's return flow).
    document_type: str
    #: Subset of ALL_CAPABILITIES.
    capabilities: frozenset[str]
    #: Regex (FaultPlan.path_pattern) matching only the request that writes the document, so the suite
    #: can drop that answer and not a lookup made before it.
    write_path_pattern: str
    #: The simulator's duplicate policy for this run ("refuse" or "accept").
    duplicates: str
    #: True when the connector's create is an idempotent upsert by our reference (NetSuite PUT eid:), so
    #: even a blind second create cannot make a duplicate.
    upsert: bool

    async def start(self) -> None:
        """Start a fresh simulator (loopback, port 0) with its seed data."""
        ...

    async def stop(self) -> None:
        """Stop the simulator and close every connector this harness built."""
        ...

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> Connector:
        """A new connector against the running simulator.

        Args:
            timeout: the connector's request timeout in seconds (None = the harness default).
            bad_credentials: build it with credentials the simulator refuses.
        """
        ...

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        """A valid create request for ``document_type`` with one line of ``quantity`` x ``unit_price``."""
        ...

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        """A request the ERP refuses with a validation error (e.g. unknown item or missing customer)."""
        ...

    async def set_faults(self, plan: dict[str, Any]) -> None:
        """Install a fault plan; keys are ``returnbridge.simulators.faults.FaultPlan`` fields."""
        ...

    async def clear_faults(self) -> None: ...

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        """How many documents of that type the ERP holds for our external reference."""
        ...

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        """The stored document's lines as (quantity, unit price), exactly as the ERP holds them."""
        ...

    def unknown_document_id(self) -> str:
        """A well-formed document id the ERP does not have."""
        ...

    #: A (sku, site) that has seeded stock.
    stock_sku: str
    stock_site: str

    async def change_stock(self, sku: str, site: str, delta: Decimal) -> None:
        """Change on-hand stock inside the ERP (as another ERP process would)."""
        ...

    def inventory_entry(self, record: dict[str, Any]) -> tuple[str, str, Decimal]:
        """(sku, site, on-hand quantity) of one ``read_inventory`` record."""
        ...

    def status_entry(self, record: dict[str, Any]) -> tuple[str, str]:
        """(document id, ERP status) of one ``read_status_changes`` record."""
        ...


HarnessFactory = Callable[[], ConnectorHarness]


def with_duplicate_policies(cls: Any) -> list[HarnessFactory]:
    """One factory per duplicate policy: ``cls(duplicates=policy)``, named ``<name>-dup_<policy>``."""

    def factory(policy: str) -> HarnessFactory:
        def build() -> ConnectorHarness:
            harness: ConnectorHarness = cls(duplicates=policy)
            return harness

        build.name = f"{cls.name}-dup_{policy}"  # type: ignore[attr-defined]
        return build

    return [factory(policy) for policy in DUPLICATE_POLICIES]


def harness_id(factory: HarnessFactory) -> str:
    name = getattr(factory, "name", None)
    return name if isinstance(name, str) and name else getattr(factory, "__name__", repr(factory))
