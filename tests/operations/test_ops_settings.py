"""The operations settings: the shutdown grace and the log format, read and checked."""

from __future__ import annotations

import pytest

from telegestion.settings import SettingsError, load_settings


def test_defaults_and_environment() -> None:
    """30 s of grace and JSON logs by default; the environment changes both."""
    assert (load_settings({}).shutdown_grace_s, load_settings({}).log_format) == (30.0, "json")
    env = {"TELEGESTION_SHUTDOWN_GRACE_S": "2.5", "TELEGESTION_LOG_FORMAT": "text"}
    settings = load_settings(env)
    assert (settings.shutdown_grace_s, settings.log_format) == (2.5, "text")


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("SHUTDOWN_GRACE_S", "-1", "shutdown_grace_s must be between 0 and 3600"),
        ("SHUTDOWN_GRACE_S", "soon", "must be a number"),
        ("LOG_FORMAT", "xml", "log_format must be json or text"),
    ],
)
def test_bad_values_are_refused_with_their_name(name: str, raw: str, message: str) -> None:
    """A bad value stops start-up with a message naming the setting."""
    with pytest.raises(SettingsError, match=message):
        load_settings({f"TELEGESTION_{name}": raw})
