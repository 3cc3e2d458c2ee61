"""``telegestion demo`` end to end: a fresh database, a morning of calls, anomalies, a login."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from reconciliation.anomaly_list import list_anomalies
from telegestion import migrate
from telegestion.cli import main
from telegestion.commands.demo import MORNING, demo_day
from telegestion.db import make_engine, make_session_factory
from telegestion.importing import import_file
from telegestion.model import Call, Punch, User
from telegestion.web.security import password_matches

pytestmark = [pytest.mark.db, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run(*args)`` -> (exit status, stdout, stderr), in an empty directory, no settings."""
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGESTION_DATABASE_URL", "TELEGESTION_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def password_of(out: str) -> str:
    line = next(line for line in out.splitlines() if "log in as demo / " in line)
    return line.rsplit(" / ", 1)[1].strip()


def demo_user_accepts(engine: Engine, password: str) -> bool:
    """The demo user is an active coordinator of both demo companies with that password."""
    with make_session_factory(engine)() as session:
        user = session.scalars(select(User).where(User.login == "demo")).one()
        companies = sorted(c.code for c in user.companies)
        assert (user.role, user.active, companies) == ("coordinator", True, ["042", "117"])
        return password_matches(user.password_hash, password)


def test_demo_builds_a_morning_and_says_where_to_look(run: Run, db_url: str) -> None:
    """Every demo call runs through the call program, anomalies exist, the login works."""
    code, out, err = run("demo", "--database", db_url)
    assert (code, err) == (0, "")
    engine = make_engine(db_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            outcomes = dict(
                conn.execute(select(Call.outcome, func.count()).group_by(Call.outcome)).all()
            )
            punches = conn.execute(select(func.count()).select_from(Punch)).scalar_one()
        assert sum(outcomes.values()) == len(MORNING)
        assert outcomes == {"punch_recorded": 18, "carer_code_failed": 1, "caller_hung_up": 1}
        assert punches == 18
        codes = {line.code for line in list_anomalies(engine, status="open")}
        assert {
            "MISSING_DEPARTURE",
            "NO_PUNCH",
            "LATE_ARRIVAL",
            "CLIENT_ABSENT",
            "CALLER_ID_WITHHELD",
            "UNKNOWN_CALLER_NUMBER",
        } <= codes
        assert demo_user_accepts(engine, password_of(out))
    finally:
        engine.dispose()
    day = demo_day(dt.datetime.now(dt.UTC))
    assert "Where to look next:" in out
    assert f'trace --caller "01 46 58 23 72" --at "{day} 08:26"' in out
    assert "then open http://localhost:8080/ and log in as demo / " in out


def test_second_run_changes_nothing_but_the_password(run: Run, db_url: str) -> None:
    """On the demo database the command adds no call and prints a new working password."""
    first = run("demo", "--database", db_url)
    second = run("demo", "--database", db_url)
    assert second[0] == 0
    assert "already holds the demo; nothing changed but the demo password." in second[1]
    assert password_of(second[1]) != password_of(first[1])
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Call)).scalar_one() == len(MORNING)
        assert demo_user_accepts(engine, password_of(second[1]))
        assert not demo_user_accepts(engine, password_of(first[1]))
    finally:
        engine.dispose()


def test_refuses_a_database_with_other_data(run: Run, db_url: str) -> None:
    """A database holding real data is never written: one line, exit 2, nothing added."""
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    import_file(make_session_factory(engine), "companies", EXAMPLES / "companies.csv")
    code, out, err = run("demo", "--database", db_url)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "already holds data that is not the demo's" in err
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Call)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(User)).scalar_one() == 0
    finally:
        engine.dispose()


def test_fresh_rebuilds_a_demo_sqlite_file(run: Run, tmp_path: Path) -> None:
    """--fresh on a demo SQLite file starts again from an empty database."""
    assert run("demo")[0] == 0  # default: ./telegestion.db in the current directory
    assert (tmp_path / "telegestion.db").exists()
    code, out, _ = run("demo", "--fresh")
    assert code == 0 and "Calls placed through the real call program" in out
    engine = make_engine(f"sqlite:///{tmp_path / 'telegestion.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Call)).scalar_one() == len(MORNING)
    finally:
        engine.dispose()
