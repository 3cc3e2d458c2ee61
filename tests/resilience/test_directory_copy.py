"""The local directory copy (ivr.directory_copy): saved whole or not at all, and the recent
punches the punch-kind rule needs offline."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from resilience_harness import MME_DUBOIS, SHARED, load_examples
from sqlalchemy.orm import Session, sessionmaker

from ivr import effects as fx
from ivr import punch_rules
from ivr.call_record import CallRecord
from ivr.call_store import CallStore
from ivr.directory_copy import (
    CompanyEntry,
    DirectoryCopy,
    RecentPunch,
    RecentPunches,
    encode,
    load_copy,
    save_copy,
)
from telegestion.db import make_engine, make_session_factory

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def a_copy(fetched_at: dt.datetime = NOW) -> DirectoryCopy:
    return DirectoryCopy(
        companies=(CompanyEntry(1, "042", "fr", "Europe/Paris", True, "FR"),),
        numbers={"+33800123456": ("shared", None), "+33800117117": ("dedicated", 1)},
        carers={(1, "12345"): 7},
        landlines={(1, "+33145678912"): 3},
        fetched_at=fetched_at,
    )


def a_punch(key: str, kind: str, at: dt.datetime, **kw: object) -> RecentPunch:
    fields: dict[str, object] = {"carer_id": 7, "client_id": 3, "caller_number": None}
    fields.update(kw)
    return RecentPunch("node1", key, kind=kind, at=at, **fields)  # type: ignore[arg-type]


def test_a_saved_copy_loads_back_the_same(tmp_path: Path) -> None:
    """Directory and recent punches survive the file, tuple keys and datetimes included."""
    path = tmp_path / "directory.json"
    punches = [a_punch("k1", "arrival", NOW - dt.timedelta(hours=1), client_absent=True)]
    save_copy(path, encode(a_copy(), punches))
    loaded = load_copy(path)
    assert loaded is not None
    copy, back = loaded
    assert copy == a_copy()
    assert back == punches
    assert copy.age_s(NOW + dt.timedelta(seconds=90)) == 90


def test_a_torn_temporary_file_is_ignored(tmp_path: Path) -> None:
    """A crash while writing leaves a half temporary file: the previous copy is what loads."""
    path = tmp_path / "directory.json"
    save_copy(path, encode(a_copy(), []))
    torn = encode(a_copy(NOW + dt.timedelta(hours=1)), [])
    (tmp_path / "directory.json.tmp-1-2").write_bytes(torn[: len(torn) // 2])
    loaded = load_copy(path)
    assert loaded is not None and loaded[0].fetched_at == NOW


def test_a_missing_or_damaged_copy_loads_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No file: nothing to load; a damaged one is logged and ignored, never a crash."""
    path = tmp_path / "directory.json"
    assert load_copy(path) is None
    path.write_bytes(b'{"version": 1, "companies": [')
    with caplog.at_level(logging.ERROR, logger="ivr.directory_copy"):
        assert load_copy(path) is None
    assert "damaged" in caplog.text


def test_recent_punches_give_the_latest_in_scope() -> None:
    """The latest punch per scope, as the database query would find it; older than the
    window, none."""
    recent = RecentPunches()
    recent.replace_from_db(
        [
            a_punch("a", "arrival", NOW - dt.timedelta(hours=3)),
            a_punch("b", "departure", NOW - dt.timedelta(hours=2)),
            a_punch("c", "arrival", NOW - dt.timedelta(hours=1), client_id=4),
            a_punch("d", "arrival", NOW - dt.timedelta(hours=20), client_id=5),
        ],
        NOW,
    )
    at_client_3 = punch_rules.punch_scope(7, 3, None)
    latest = recent.latest(at_client_3, NOW)
    assert latest is not None and latest.kind == "departure"
    assert recent.latest(punch_rules.punch_scope(7, 4, None), NOW) is not None
    assert recent.latest(punch_rules.punch_scope(7, 5, None), NOW) is None
    assert recent.latest(punch_rules.punch_scope(8, 3, None), NOW) is None


def test_local_punches_win_over_the_database_reload() -> None:
    """A punch this worker spooled stays the latest after a reload that does not hold it yet,
    and its correction or absence shows at once."""
    recent = RecentPunches()
    scope = punch_rules.punch_scope(7, None, "+33612000000")
    mine = a_punch("mine", "arrival", NOW, client_id=None, caller_number="+33612000000")
    recent.add_local(mine)
    recent.replace_from_db([], NOW)
    assert recent.latest(scope, NOW) == punch_rules.LatestPunch("arrival", NOW, False)
    recent.update_local(mine.key, kind="departure")
    assert recent.latest(scope, NOW) == punch_rules.LatestPunch("departure", NOW, False)
    recent.update_local(mine.key, kind="arrival", client_absent=True)
    assert punch_rules.punch_kind(recent.latest(scope, NOW), NOW) == "arrival"


@pytest.mark.db
def test_a_store_started_from_a_copy_answers_lookups(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The directory a live store read, saved, and installed in a store whose database is
    unreachable: numbers, companies, carers and landlines answer; unknown ones are unknown."""
    load_examples(sessions)
    live = CallStore(sessions)
    live._refresh_directory(force=True)
    copy = live.directory_copy()
    assert copy is not None
    save_copy(tmp_path / "d.json", encode(copy, []))
    loaded = load_copy(tmp_path / "d.json")
    assert loaded is not None
    dead = CallStore(
        make_session_factory(make_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none"))
    )
    dead.install_directory(loaded[0])
    call = CallRecord("node1", "k", "fastagi", SHARED, MME_DUBOIS, None, NOW)
    number = dead.answer_from_memory(fx.LookupCalledNumber(SHARED), call, stale_ok=True)
    assert isinstance(number, fx.CalledNumber) and number.kind == "shared"
    company = dead.answer_from_memory(fx.LookupCompany("042"), call, stale_ok=True)
    assert isinstance(company, fx.CompanyInfo)
    cid = company.company_id
    assert isinstance(
        dead.answer_from_memory(fx.LookupCarer(cid, "12345"), call, stale_ok=True), fx.CarerInfo
    )
    assert dead.answer_from_memory(fx.LookupCarer(cid, "45678"), call, stale_ok=True) is None
    assert isinstance(
        dead.answer_from_memory(fx.LookupClient(cid, MME_DUBOIS), call, stale_ok=True),
        fx.ClientInfo,
    )
    assert dead.answer_from_memory(fx.LookupCompany("999"), call, stale_ok=True) is None
