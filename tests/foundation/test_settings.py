"""Settings: environment over config file over defaults; bad values are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from telegestion.settings import SettingsError, load_settings


def test_defaults_use_a_sqlite_file_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing configured the database is ./telegestion.db."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.database_url == "sqlite:///telegestion.db"
    assert settings.config_file is None


def test_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    """A TELEGESTION_* variable overrides the same key in the TOML file."""
    cfg = tmp_path / "tg.toml"
    cfg.write_text('[telegestion]\ndatabase_url = "sqlite:///file.db"\nagi_port = 4600\n')
    settings = load_settings(
        environ={"TELEGESTION_CONFIG": str(cfg), "TELEGESTION_AGI_PORT": "4700"}
    )
    assert settings.database_url == "sqlite:///file.db"
    assert settings.agi_port == 4700


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("agi_port = 'x'\n", "must be a number"),
        ("nope = 1\n", "unknown setting"),
        ("= =\n", "cannot be read"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, message: str) -> None:
    """A bad config file is refused with the file and the setting named."""
    cfg = tmp_path / "tg.toml"
    cfg.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings(environ={}, config_path=cfg)


def test_bad_environment_value() -> None:
    """A non-numeric port in the environment names the variable."""
    with pytest.raises(SettingsError, match="TELEGESTION_HTTP_PORT"):
        load_settings(environ={"TELEGESTION_HTTP_PORT": "eighty"})


def test_missing_config_file() -> None:
    """A config file that was asked for but does not exist is an error, not a silent default."""
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(environ={"TELEGESTION_CONFIG": "/nonexistent/tg.toml"})
