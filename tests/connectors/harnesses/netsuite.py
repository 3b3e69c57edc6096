"""NetSuite harnesses for the conformance suite: TBA and OAuth 2.0 connectors against the simulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from connectors.harness import ALL_CAPABILITIES, with_duplicate_policies
from returnbridge import exactjson
from returnbridge.connectors.base import Connector, DocumentRequest
from returnbridge.connectors.netsuite import (
    NetSuiteConfig,
    NetSuiteConnector,
    OAuth2AuthConfig,
    TbaAuthConfig,
)
from returnbridge.simulators.faults import FaultPlan
from returnbridge.simulators.kit import RunningSimulator
from returnbridge.simulators.netsuite import NetSuiteSimulator
from returnbridge.simulators.netsuite_config import NetSuiteSimulatorConfig, OAuth2ClientConfig

CONSUMER_KEY, CONSUMER_SECRET = "rb-sim-consumer", "rb-sim-consumer-secret"
TOKEN_ID, TOKEN_SECRET = "rb-sim-token", "rb-sim-token-secret"


def ec_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh P-256 key, as an integration's certificate would hold."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def ra_payload(
    *, item: str = "501", quantity: Decimal = Decimal("2"), rate: Decimal = Decimal("19.99"), **extra: Any
) -> dict[str, Any]:
    return {
        "entity": {"id": "101"},
        "memo": "conformance",
        "item": {
            "items": [{"item": {"id": item}, "quantity": quantity, "rate": rate, "location": {"id": "1"}}]
        },
        **extra,
    }


class NetSuiteTbaHarness:
    """The NetSuite connector with Token-Based Authentication."""

    name = "netsuite-tba"
    document_type = "returnAuthorization"
    capabilities = ALL_CAPABILITIES
    write_path_pattern = r"/record/v1/returnAuthorization/eid:"
    # The return authorization is created by PUT eid:<reference>, an upsert.
    upsert = True
    stock_sku = "SKU-1001"
    stock_site = "DAL1"

    def __init__(
        self, sim_config: NetSuiteSimulatorConfig | None = None, *, duplicates: str = "refuse"
    ) -> None:
        self.duplicates = duplicates
        self.sim_config = (sim_config or NetSuiteSimulatorConfig()).model_copy(
            update={"duplicates": duplicates}
        )
        self.simulator: NetSuiteSimulator | None = None
        self.running: RunningSimulator | None = None
        self._connectors: list[Connector] = []

    @property
    def sim(self) -> NetSuiteSimulator:
        assert self.simulator is not None, "harness not started"
        return self.simulator

    @property
    def url(self) -> str:
        assert self.running is not None, "harness not started"
        return self.running.url

    async def start(self) -> None:
        self.simulator = NetSuiteSimulator(self.sim_config)
        self.running = await RunningSimulator(self.simulator.app).start()

    async def stop(self) -> None:
        for connector in self._connectors:
            await connector.aclose()
        if self.running is not None:
            await self.running.stop()

    def auth(self, *, bad_credentials: bool) -> TbaAuthConfig | OAuth2AuthConfig:
        return TbaAuthConfig(
            consumer_key=CONSUMER_KEY,
            consumer_secret=SecretStr(CONSUMER_SECRET),
            token_id=TOKEN_ID,
            token_secret=SecretStr("wrong-secret" if bad_credentials else TOKEN_SECRET),
        )

    def config(
        self, *, timeout: float | None = None, bad_credentials: bool = False, **extra: Any
    ) -> NetSuiteConfig:
        return NetSuiteConfig(
            account_id=self.sim_config.account_id,
            base_url=self.url,
            auth=self.auth(bad_credentials=bad_credentials),
            timeout=timeout or 10.0,
            **extra,
        )

    def connector(self, *, timeout: float | None = None, bad_credentials: bool = False) -> NetSuiteConnector:
        connector = NetSuiteConnector(self.config(timeout=timeout, bad_credentials=bad_credentials))
        self._connectors.append(connector)
        return connector

    def request(
        self,
        external_reference: str,
        *,
        quantity: Decimal = Decimal("2"),
        unit_price: Decimal = Decimal("19.99"),
        timeout: float | None = None,
    ) -> DocumentRequest:
        return DocumentRequest(
            document_type="returnAuthorization",
            external_reference=external_reference,
            payload=exactjson.dumps_bytes(ra_payload(quantity=quantity, rate=unit_price)),
            timeout=timeout,
        )

    def invalid_request(self, external_reference: str) -> DocumentRequest:
        return DocumentRequest(
            document_type="returnAuthorization",
            external_reference=external_reference,
            payload=exactjson.dumps_bytes(ra_payload(item="999999")),
        )

    async def set_faults(self, plan: dict[str, Any]) -> None:
        self.sim.kit.faults.set(FaultPlan.from_json(plan))

    async def clear_faults(self) -> None:
        self.sim.kit.faults.reset()

    async def count_documents(self, document_type: str, external_reference: str) -> int:
        docs = self.sim.documents(document_type).values()
        return sum(1 for d in docs if d.get("externalId") == external_reference)

    async def stored_lines(self, document_type: str, document_id: str) -> list[tuple[Decimal, Decimal]]:
        record = self.sim.documents(document_type)[document_id]
        return [(line["quantity"], line["rate"]) for line in record["item"]]

    def unknown_document_id(self) -> str:
        return "999999"

    async def change_stock(self, sku: str, site: str, delta: Decimal) -> None:
        self.sim.adjust_stock(sku, site, delta)

    def inventory_entry(self, record: dict[str, Any]) -> tuple[str, str, Decimal]:
        return record["itemid"], record["locationname"], Decimal(record["quantityonhand"])

    def status_entry(self, record: dict[str, Any]) -> tuple[str, str]:
        return record["id"], record["statusname"]


class NetSuiteOAuth2Harness(NetSuiteTbaHarness):
    """The NetSuite connector with OAuth 2.0 client credentials (ES256 certificate)."""

    name = "netsuite-oauth2"

    def __init__(self, *, duplicates: str = "refuse") -> None:
        self.private_pem, public_pem = ec_key_pair()
        super().__init__(
            NetSuiteSimulatorConfig(
                oauth2_clients=[
                    OAuth2ClientConfig(
                        client_id="rb-client", certificate_id="rb-cert", public_key_pem=public_pem
                    )
                ]
            ),
            duplicates=duplicates,
        )

    def auth(self, *, bad_credentials: bool) -> TbaAuthConfig | OAuth2AuthConfig:
        key = ec_key_pair()[0] if bad_credentials else self.private_pem
        return OAuth2AuthConfig(
            client_id="rb-client", certificate_id="rb-cert", private_key=SecretStr(key), algorithm="ES256"
        )


HARNESSES = [*with_duplicate_policies(NetSuiteTbaHarness), NetSuiteOAuth2Harness]
