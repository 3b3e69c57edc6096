"""The README's examples stay true: connector YAML parses, the two quick-start commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from returnbridge.connectors.registry import parse_connector_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, flags=re.S)


def test_every_connector_example_is_a_valid_connector_config() -> None:
    blocks = [yaml.safe_load(b) for b in _yaml_blocks()]
    connectors = next(b["connectors"] for b in blocks if isinstance(b, dict) and "connectors" in b)
    kinds = {cfg["kind"] for cfg in connectors.values()}
    assert kinds == {"netsuite", "sap_odata", "sap_rfc", "oracle_fusion", "oracle_ebs"}
    for name, cfg in connectors.items():
        model = parse_connector_config(cfg, source=f"README connectors.{name}")
        assert model.model_dump()["kind"] == cfg["kind"]


def test_quick_start_is_two_make_targets_that_exist() -> None:
    quick = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_the_returns_policy_example_is_a_valid_section() -> None:
    from returnbridge.domain.policy import ReturnPolicyConfig

    blocks = [yaml.safe_load(b) for b in _yaml_blocks()]
    returns = next(b["returns"] for b in blocks if isinstance(b, dict) and "returns" in b)
    policy = ReturnPolicyConfig.model_validate(returns)
    assert policy.for_tenant("demo").lifecycle.refund_before_receipt_tiers == {"gold"}
    assert policy.for_tenant("other") == ReturnPolicyConfig().for_tenant("other")
