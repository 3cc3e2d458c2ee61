"""The `telegestion` command as a user runs it: help everywhere, one-line errors, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(
    args: list[str], cwd: Path, db_url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    if db_url is not None:
        environ["TELEGESTION_DATABASE_URL"] = db_url
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "telegestion.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0]


@pytest.mark.parametrize("args", [[], ["db"], ["db", "upgrade"], ["db", "current"], ["import"]])
def test_help_on_every_command(tmp_path: Path, args: list[str]) -> None:
    """`--help` works on the program and each command, and exits 0."""
    result = run([*args, "--help"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: telegestion")


def test_default_database_is_a_file_in_the_current_directory(tmp_path: Path) -> None:
    """`db upgrade` with nothing configured creates ./telegestion.db."""
    result = run(["db", "upgrade"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "telegestion.db").is_file()
    assert "upgraded from nothing" in result.stdout
    again = run(["db", "upgrade"], tmp_path)
    assert "already at revision" in again.stdout


def test_import_examples_and_a_bad_file(tmp_path: Path, db_url: str) -> None:
    """Imports print a summary; a bad file prints each bad line then one summary line, exit 2."""
    assert run(["db", "upgrade"], tmp_path, db_url).returncode == 0
    for kind in ("companies", "numbers", "clients", "carers", "planning", "punches"):
        result = run(["import", kind, str(EXAMPLES / f"{kind}.csv")], tmp_path, db_url)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"{kind}: ")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "code,name,timezone,region,language\n1,A,Europe/Paris,FR,fr\n002,B,Nowhere/City,FR,fr\n"
    )
    result = run(["import", "companies", str(bad)], tmp_path, db_url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].endswith("line 2: code must be exactly 3 digits, not '1'")
    assert "line 3: unknown time zone 'Nowhere/City'" in lines[1]
    assert "2 bad row(s), nothing imported" in lines[2]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["import", "pets", "x.csv"], "invalid choice: 'pets'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["import", "companies"], "the following arguments are required: file"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    """A command line that makes no sense gets one line and exit 2."""
    assert_one_line_error(run(args, tmp_path), fragment)


def test_import_before_upgrade_says_what_to_do(tmp_path: Path) -> None:
    """Importing into a database without schema tells the user to run `db upgrade`."""
    result = run(["import", "companies", str(EXAMPLES / "companies.csv")], tmp_path)
    assert_one_line_error(result, "run: telegestion db upgrade")


def test_missing_file(tmp_path: Path) -> None:
    """A missing import file is one clear line."""
    assert run(["db", "upgrade"], tmp_path).returncode == 0
    assert_one_line_error(
        run(["import", "clients", "nope.csv"], tmp_path), "nope.csv: no such file"
    )


def test_dead_database_is_one_line(tmp_path: Path) -> None:
    """A PostgreSQL that does not answer gives one line naming the problem, not a traceback."""
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/test"
    result = run(["db", "upgrade"], tmp_path, url)
    assert_one_line_error(result, "database unreachable")


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    """A malformed setting names the variable."""
    result = run(["db", "upgrade"], tmp_path, TELEGESTION_STATEMENT_TIMEOUT_MS="soon")
    assert_one_line_error(result, "TELEGESTION_STATEMENT_TIMEOUT_MS")
