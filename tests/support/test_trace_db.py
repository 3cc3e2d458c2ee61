"""Tracing real calls: placed through the FastAGI worker, found back in the journal.

Every call here runs the real call program on the test database (SQLite and PostgreSQL), so
the journal the trace reads is the one production writes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support_world import (
    DEDICATED_117,
    DUBOIS,
    FATOU_MOBILE,
    FOURNIER,
    MARTIN,
    SHARED,
    Place,
    paris,
)

from telegestion.model import Company
from telegestion.support.trace import call_trace, calls_around, search_calls

pytestmark = pytest.mark.db

HOUR = dt.timedelta(hours=1)


def company_id(session: Session, code: str) -> int:
    return session.scalars(select(Company.id).where(Company.code == code)).one()


def test_caller_in_any_written_form(place: Place, examples: sessionmaker[Session]) -> None:
    """The caller number as support writes it finds the call, whatever form the trunk sent."""
    assert place(7, 58, "0145678912", "042 12345") == "punch_recorded"
    with examples() as session:
        for written in ("01 45 67 89 12", "+33 1 45 67 89 12", "0033145678912", "33145678912"):
            (trace,) = calls_around(session, caller=written, at=paris(8, 0))
            assert trace.caller_raw == "0145678912"
        assert calls_around(session, caller="01 45 67 89 13", at=paris(8, 0)) == []


def test_window_and_called_filter(place: Place, examples: sessionmaker[Session]) -> None:
    """Only calls within the window of --at, and to --called when given."""
    place(7, 58, DUBOIS, "042 12345")
    place(9, 3, DUBOIS, "042 12345")
    with examples() as session:
        near = calls_around(session, caller=DUBOIS, at=paris(8, 10))
        assert [t.started_at for t in near] == [paris(7, 58)]
        both = calls_around(session, caller=DUBOIS, at=paris(8, 30), window=HOUR)
        assert len(both) == 2 and both[0].started_at < both[1].started_at
        assert calls_around(session, caller=DUBOIS, called=SHARED, at=paris(8, 0))
        assert calls_around(session, caller=DUBOIS, called=DEDICATED_117, at=paris(8, 0)) == []


def test_full_trace_of_a_punch(place: Place, examples: sessionmaker[Session]) -> None:
    """Journal, punch, anomaly and diagnosis of a late arrival, and of its departure."""
    place(9, 51, MARTIN, "042 12345")
    place(10, 31, MARTIN, "042 12345")
    with examples() as session:
        (trace,) = calls_around(session, caller=MARTIN, at=paris(9, 50), window=HOUR / 2)
        (departure,) = calls_around(session, caller=MARTIN, at=paris(10, 31), window=HOUR / 4)
    assert trace.outcome == "punch_recorded"
    assert (trace.company_code, trace.carer_ref, trace.client_ref) == ("042", "I-01", "C-0002")
    kinds = [e.kind for e in trace.events]
    assert kinds[0] == "lookup" and "prompt" in kinds and "punch" in kinds
    assert [e.seq for e in trace.events] == list(range(1, len(trace.events) + 1))
    (punch,) = trace.punches
    assert (punch.kind, punch.local_time, punch.client_ref) == ("arrival", "09:51", "C-0002")
    assert [a.code for a in punch.anomalies] == ["LATE_ARRIVAL"]
    assert trace.diagnosis[0].startswith(
        "Punch recorded: arrival at 09:51 (Europe/Paris) for Fatou Diallo (I-01)"
    )
    assert trace.diagnosis[-1].startswith("Reconciliation flagged it: LATE_ARRIVAL (open")
    assert departure.punches[0].kind == "departure"
    assert [(a.code, a.about) for a in departure.punches[0].anomalies] == [
        ("LATE_ARRIVAL", "visit")
    ]
    assert departure.diagnosis[-1].startswith("Reconciliation flagged its visit: LATE_ARRIVAL")


def test_correction_and_absence(place: Place, examples: sessionmaker[Session]) -> None:
    """Key 2 and key 9 at the readback show in the punch and the diagnosis."""
    place(7, 58, DUBOIS, "042 12345 2")
    place(8, 40, MARTIN, "042 12345 9")
    with examples() as session:
        (corrected,) = calls_around(session, caller=DUBOIS, at=paris(7, 58))
        (absent,) = calls_around(session, caller=MARTIN, at=paris(8, 40))
    assert corrected.punches[0].original_kind == "arrival"
    assert "The carer pressed 2 to correct it" in " ".join(corrected.diagnosis)
    assert absent.punches[0].status == "client_absent"
    assert "CLIENT_ABSENT" in [a.code for a in absent.punches[0].anomalies]
    assert any(s.startswith("The carer pressed 9") for s in absent.diagnosis)


def test_carer_code_failed_explains_each_code(
    place: Place, examples: sessionmaker[Session]
) -> None:
    """An inactive carer's code and another company's code, each explained."""
    assert place(8, 0, DUBOIS, "042 45678 45678 54321") == "carer_code_failed"
    with examples() as session:
        (trace,) = calls_around(session, caller=DUBOIS, at=paris(8, 0))
        (restricted,) = calls_around(
            session, caller=DUBOIS, at=paris(8, 0), company_ids={company_id(session, "042")}
        )
    assert trace.diagnosis[0].startswith(
        "Carer code 45678 is not an active carer of company 042 (2 attempts): it is Sophie Caron"
    )
    assert trace.diagnosis[1].startswith(
        "Carer code 54321 is not a carer of company 042 (1 attempt): it is the code of a carer "
        "of company 117 (J-A)."
    )
    assert "of another company." in restricted.diagnosis[1]
    assert "117" not in " ".join(restricted.diagnosis)


def test_lockout_trace(place: Place, examples: sessionmaker[Session]) -> None:
    """Six wrong codes lock the number out; the next call's trace says since and until (in UTC:
    a lock-out on a shared number comes before any company, so before any time zone)."""
    assert place(8, 0, DUBOIS, "042 11111 22222 33333") == "carer_code_failed"
    assert place(8, 2, DUBOIS, "042 44444 55555 66666") == "locked_out"
    assert place(8, 10, DUBOIS, "") == "locked_out"
    with examples() as session:
        during, after = calls_around(session, caller=DUBOIS, at=paris(8, 5), window=HOUR)[1:]
    assert during.diagnosis[0].startswith(
        "The caller number 01 45 67 89 12 was locked out during this call"
    )
    assert after.diagnosis[0].startswith(
        "The caller number 01 45 67 89 12 is locked out: 6 failed code entries within an hour; "
        "locked from 07:02 until 08:02 (UTC)."
    )


def test_withheld_and_unknown_numbers(place: Place, examples: sessionmaker[Session]) -> None:
    """A withheld caller is found with 'anonymous'; an unknown number 'may have changed';
    a carer's own mobile is named as such."""
    place(11, 4, None, "042 12345")
    place(11, 30, "01 45 00 00 01", "042 12345")
    place(12, 30, FATOU_MOBILE, "042 12345")
    with examples() as session:
        (withheld,) = calls_around(session, caller="anonymous", called=SHARED, at=paris(11, 0))
        (unknown,) = calls_around(session, caller="0145000001", at=paris(11, 30))
        (own_mobile,) = calls_around(session, caller="+33612345678", at=paris(12, 30))
    assert withheld.caller_e164 is None
    assert "CALLER_ID_WITHHELD" in [a.code for a in withheld.punches[0].anomalies]
    assert any("withheld" in s for s in withheld.diagnosis)
    assert "it may have changed" in unknown.diagnosis[1]
    assert "but the registered mobile of carer I-01 Fatou Diallo" in own_mobile.diagnosis[1]


def test_unknown_called_number(place: Place, examples: sessionmaker[Session]) -> None:
    """A number that is not ours: the call is journaled with no company, and diagnosed."""
    assert place(8, 0, DUBOIS, "042 12345", called="0800 999 999") == "unknown_called_number"
    with examples() as session:
        (trace,) = calls_around(session, caller=DUBOIS, at=paris(8, 0))
    assert trace.company_id is None
    assert trace.diagnosis[0].startswith(
        "The number called, 0 800 99 99 99, is not a number of the service"
    )


def test_visibility_rule(place: Place, examples: sessionmaker[Session]) -> None:
    """Own calls, and calls with no company from own clients' lines or carers' mobiles."""
    place(8, 0, DUBOIS, "042 12345")  # 042's call
    place(8, 5, DUBOIS, "024 024 024")  # no company, from a 042 client's landline
    place(8, 10, FATOU_MOBILE, "999 999 999")  # no company, from a 042 carer's mobile
    place(8, 15, FOURNIER, "54321", called=DEDICATED_117)  # 117's call
    place(8, 20, "01 45 00 00 02", "999 999 999")  # no company, nobody's number
    with examples() as session:
        c042, c117 = company_id(session, "042"), company_id(session, "117")
        every = search_calls(session, company_ids=None, newest_first=False)
        assert len(every) == 5
        by_minute = {t.started_at.astimezone(paris(0, 0).tzinfo).minute: t for t in every}
        seen_042 = {t.call_id for t in search_calls(session, company_ids={c042})}
        seen_117 = {t.call_id for t in search_calls(session, company_ids={c117})}
        assert seen_042 == {by_minute[m].call_id for m in (0, 5, 10)}
        assert seen_117 == {by_minute[15].call_id}
        assert search_calls(session, company_ids=set()) == []
        assert call_trace(session, by_minute[5].call_id, {c117}) is None
        assert call_trace(session, by_minute[20].call_id, {c042, c117}) is None
        full = call_trace(session, by_minute[5].call_id, {c042})
        assert full is not None and full.outcome == "company_code_failed"
        assert full.diagnosis[-1] == (
            "The caller number is the landline of client C-0001 of company 042."
        )
        hidden = call_trace(session, by_minute[20].call_id, None)
        assert hidden is not None and hidden.events_loaded


def test_search_calls_pages_newest_first(place: Place, examples: sessionmaker[Session]) -> None:
    """Rows newest first without their journal; limit, offset and the time range apply."""
    for minute in (0, 10, 20):
        place(8, minute, DUBOIS, "042 12345")
    with examples() as session:
        rows = search_calls(session, caller=DUBOIS, company_ids=None, limit=2)
        assert [r.started_at for r in rows] == [paris(8, 20), paris(8, 10)]
        assert all(not r.events_loaded and r.events == () and r.diagnosis == () for r in rows)
        assert len(search_calls(session, caller=" ", called="", company_ids=None)) == 3
        (last,) = search_calls(session, caller=DUBOIS, company_ids=None, limit=2, offset=2)
        assert last.started_at == paris(8, 0)
        ranged = search_calls(
            session, company_ids=None, start=paris(8, 5), end=paris(8, 20), called=SHARED
        )
        assert [r.started_at for r in ranged] == [paris(8, 10)]
        with pytest.raises(ValueError, match="timezone-aware"):
            search_calls(session, company_ids=None, start=dt.datetime(2026, 11, 24, 8))
