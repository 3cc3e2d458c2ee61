"""The flow's waits come from the settings, the same for FastAGI and the AGI script."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.flow import FlowSettings
from ivr.flow_tuning import flow_settings
from telegestion.settings import Settings, SettingsError, load_settings

WAITS = {
    "flow_code_timeout_s": "code_timeout_s",
    "flow_arrival_readback_wait_s": "arrival_readback_wait_s",
    "flow_departure_readback_wait_s": "departure_readback_wait_s",
    "flow_task_codes_timeout_s": "task_codes_timeout_s",
}


def test_default_settings_give_the_flows_own_defaults() -> None:
    """An operator who sets nothing gets exactly the timings the flow was designed with."""
    assert flow_settings(Settings()) == FlowSettings()


@pytest.mark.parametrize(("setting", "field"), WAITS.items())
def test_each_wait_reaches_the_flow_from_the_environment(setting: str, field: str) -> None:
    """TELEGESTION_FLOW_* changes that wait and nothing else."""
    settings = load_settings(environ={f"TELEGESTION_{setting.upper()}": "7.5"}, config_path=None)
    tuned = flow_settings(settings)
    assert getattr(tuned, field) == 7.5
    assert dataclasses.replace(tuned, **{field: getattr(FlowSettings(), field)}) == FlowSettings()


def test_waits_come_from_the_config_file_too(tmp_path: Path) -> None:
    """The TOML config file sets them like any other setting."""
    path = tmp_path / "telegestion.toml"
    path.write_text("[telegestion]\nflow_code_timeout_s = 9\n")
    assert flow_settings(load_settings(environ={}, config_path=path)).code_timeout_s == 9.0


@pytest.mark.parametrize("value", ["0", "-1", "61", "soon"])
def test_a_wait_out_of_range_is_refused_by_name(value: str) -> None:
    """Zero, negative, over a minute or not a number: a settings error naming the setting."""
    with pytest.raises(SettingsError, match=r"(?i)flow_code_timeout_s"):
        load_settings(environ={"TELEGESTION_FLOW_CODE_TIMEOUT_S": value}, config_path=None)
