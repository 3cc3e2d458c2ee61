"""The outage settings: where the spool lives and how long a call waits for the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from telegestion.settings import SettingsError, load_settings, spool_path


def test_the_spool_defaults_to_a_folder_per_node() -> None:
    """No spool_dir: ./spool/<node>, so two workers on one host never share a spool."""
    settings = load_settings(environ={"TELEGESTION_NODE": "pbx-2"}, config_path=None)
    assert spool_path(settings) == Path("spool") / "pbx-2"
    assert settings.db_wait_s == 2.0


def test_spool_dir_and_db_wait_come_from_the_environment() -> None:
    """TELEGESTION_SPOOL_DIR and TELEGESTION_DB_WAIT_S are read like every setting."""
    settings = load_settings(
        environ={"TELEGESTION_SPOOL_DIR": "/var/spool/tg", "TELEGESTION_DB_WAIT_S": "0.5"},
        config_path=None,
    )
    assert spool_path(settings) == Path("/var/spool/tg")
    assert settings.db_wait_s == 0.5


@pytest.mark.parametrize("bad", ["0", "-1", "61", "soon"])
def test_a_database_wait_out_of_range_is_refused(bad: str) -> None:
    """A wait of zero (never wait) or over a minute (a carer on hold) is a clear error."""
    with pytest.raises(SettingsError, match="db_wait_s"):
        load_settings(environ={"TELEGESTION_DB_WAIT_S": bad}, config_path=None)
