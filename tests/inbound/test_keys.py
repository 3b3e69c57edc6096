"""Signing keys are resolved at startup: a bad one stops the service with a message naming it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from returnbridge.errors import ConfigError
from returnbridge.inbound import InboundKey, InboundSettings, resolve_keys

POLLED = {"sap": ("sap_s4hana", "acme"), "ebs": ("oracle_ebs", "acme")}
SECRET = SecretStr("0123456789abcdef0123")


def test_a_key_resolves_to_its_tenant_target_and_erp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_SAP_HOOK", "from-the-environment-0001")
    keys = resolve_keys(
        [InboundKey(key_id="k1", tenant="acme", target="sap", secret_env="RB_SAP_HOOK")], POLLED
    )
    assert keys["k1"].secret == b"from-the-environment-0001"
    assert (keys["k1"].tenant, keys["k1"].target, keys["k1"].erp) == ("acme", "sap", "sap_s4hana")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (InboundKey(key_id="k1", tenant="acme", target="nowhere", secret=SECRET), "'nowhere' is not polled"),
        (InboundKey(key_id="k1", tenant="beta", target="sap", secret=SECRET), "another tenant"),
        (
            InboundKey(key_id="k1", tenant="acme", target="sap", secret=SecretStr("short")),
            "at least 16 bytes",
        ),
        (InboundKey(key_id="k1", tenant="acme", target="ebs", secret=SECRET), "does not push"),
        (InboundKey(key_id="k1", tenant="acme", target="sap", secret_env="RB_UNSET_9"), "RB_UNSET_9"),
        (InboundKey(key_id="k1", tenant="acme", target="sap"), "secret"),
    ],
)
def test_a_bad_key_is_refused_by_name(key: InboundKey, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve_keys([key], POLLED)
    assert "inbound key 'k1'" in str(info.value)


def test_key_ids_are_unique_and_the_window_bounded() -> None:
    key = {"key_id": "k1", "tenant": "acme", "target": "sap", "secret": "0123456789abcdef"}
    with pytest.raises(ValidationError, match="repeated: k1"):
        InboundSettings.model_validate({"keys": [key, key]})
    with pytest.raises(ValidationError, match="replay_window_seconds"):
        InboundSettings.model_validate({"replay_window_seconds": 3600})
