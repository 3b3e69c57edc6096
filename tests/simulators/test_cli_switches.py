"""`worker` and `sync` never start simulators; `simulate` builds every simulator switch from the command line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from returnbridge.cli import app_settings, build_parser, main, simulator_configs
from returnbridge.config import SimulatorSettings
from returnbridge.simulators.oracle import API_ROOT
from returnbridge.simulators.runner import start_simulators


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETURNBRIDGE_CONFIG", raising=False)


@pytest.mark.parametrize(
    ("argv", "process"),
    [
        (["worker", "--target", "sap"], {"gateway": False, "sync": False, "workers": ["sap"]}),
        (["sync"], {"gateway": False, "sync": True, "workers": []}),
    ],
)
def test_worker_and_sync_never_start_simulators(argv: list[str], process: dict[str, object]) -> None:
    args = build_parser().parse_args(argv)
    assert app_settings(args, process).simulators.enabled is False
    assert app_settings(build_parser().parse_args(["serve"])).simulators.enabled is True


@pytest.mark.parametrize("argv", [["worker", "--target", "sap"], ["sync"]])
def test_worker_without_connectors_is_a_clear_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no connectors configured" in err and "returnbridge simulate" in err


def test_simulate_switches_set_each_simulator() -> None:
    args = build_parser().parse_args(
        [
            "simulate",
            "--duplicates",
            "accept",
            "--duplicates",
            "sap=refuse",
            "--oracle-framework-versions",
            "1,2",
            "--oracle-default-framework-version",
            "2",
            "--oracle-error-format",
            "json",
            "--netsuite-property-name-validation",
            "Warning",
        ]
    )
    configs = simulator_configs(args)
    assert (configs.netsuite.duplicates, configs.sap.duplicates, configs.oracle.duplicates) == (
        "accept",
        "refuse",
        "accept",
    )
    assert configs.oracle.framework_versions == (1, 2) and configs.oracle.default_framework_version == 2
    assert configs.oracle.error_format == "json"
    assert configs.netsuite.property_name_validation == "Warning"


def test_simulate_defaults_are_each_erps_own() -> None:
    configs = simulator_configs(build_parser().parse_args(["simulate"]))
    assert (configs.netsuite.duplicates, configs.sap.duplicates, configs.oracle.duplicates) == (
        "refuse",
        "accept",
        "refuse",
    )
    assert configs.netsuite.property_name_validation == "Error"


@pytest.mark.parametrize(
    "argv",
    [
        ["--duplicates", "maybe"],
        ["--duplicates", "sage=accept"],
        ["--oracle-framework-versions", "1,5"],
        ["--oracle-framework-versions", "3,4", "--oracle-default-framework-version", "1"],
    ],
)
def test_simulate_refuses_bad_switches(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *argv]) == 2
    assert "returnbridge: --" in capsys.readouterr().err


async def test_started_simulators_follow_the_switches() -> None:
    args = build_parser().parse_args(["simulate", "--oracle-framework-versions", "1,2,3"])
    sims = await start_simulators(
        SimulatorSettings(netsuite_port=0, sap_port=0, oracle_port=0), simulator_configs(args)
    )
    try:
        url = sims.urls["oracle"] + API_ROOT + "/salesOrdersForOrderHub"
        async with httpx.AsyncClient(auth=("integration.user", "Welcome1!")) as client:
            refused = await client.get(url, headers={"REST-Framework-Version": "4"})
            allowed = await client.get(url, headers={"REST-Framework-Version": "3"})
        assert refused.status_code == 400 and allowed.status_code == 200
        # The embedded connector config speaks the newest version the pod allows.
        assert sims.connector_configs()["oracle_fusion"]["rest_framework_version"] == "3"
    finally:
        await sims.stop()
