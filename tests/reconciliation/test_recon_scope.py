"""Local days, load windows, anomaly keys and the loading contract of one carer-day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from recon_factory import PARIS, RULES, MemoryStore, at, plan, punch, run

from reconciliation.engine import carer_day_range, day_bounds, day_of, gather, reconcile
from reconciliation.model import (
    AnomalyCode,
    CarerDay,
    CompanyRules,
    ResolutionIn,
    anomaly_key,
    parse_anomaly_key,
)
from reconciliation.scope import refresh_after_planned, refresh_after_punch


def test_day_of_uses_the_company_zone() -> None:
    """22:30 UTC on May 4 is 00:30 on May 5 in Paris (UTC+2)."""
    assert day_of(datetime(2026, 5, 4, 22, 30, tzinfo=UTC), PARIS) == date(2026, 5, 5)
    assert day_of(datetime(2026, 5, 4, 21, 59, tzinfo=UTC), "Europe/Paris") == date(2026, 5, 4)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 5, 4), 24)],
)
def test_day_bounds_follow_daylight_saving(day: date, hours: int) -> None:
    """The last Sundays of March and October 2026 last 23 h and 25 h in Paris."""
    start, end = day_bounds(day, PARIS)
    assert end - start == timedelta(hours=hours)
    assert start == at(f"{day.isoformat()} 00:00")


def test_carer_day_range_covers_the_neighbouring_days_and_reaches() -> None:
    """The load window of May 4 spans the days around it plus the two reaches."""
    # May 4 with 12 h visits: pairing reach A = 12 h 10, overlap reach B = 24 h 20. Planned: May
    # 3 00:00 to May 6 00:00. Own and client punches: the earlier of May 3 00:00 - A (May 2
    # 11:50) and May 4 00:00 - B (May 2 23:40), to the later of May 6 00:00 + A (May 6 12:10)
    # and May 5 00:00 + B (May 6 00:20). Other carers: May 2 23:40 to May 6 00:20.
    window = carer_day_range(CarerDay(1, 7, date(2026, 5, 4)), CompanyRules())
    assert (window.planned_from, window.planned_to) == (
        at("2026-05-03 00:00"),
        at("2026-05-06 00:00"),
    )
    assert (window.punches_from, window.punches_to) == (
        at("2026-05-02 11:50"),
        at("2026-05-06 12:10"),
    )
    assert (window.other_carers_from, window.other_carers_to) == (
        at("2026-05-02 23:40"),
        at("2026-05-06 00:20"),
    )


def test_anomaly_keys_round_trip() -> None:
    """A key names its planned id, visit and punch, and parses back to them."""
    key = anomaly_key(AnomalyCode.LATE_ARRIVAL, planned_id=50, visit_key="v12")
    assert key == "LATE_ARRIVAL:i50:v12"
    subjects = parse_anomaly_key(key)
    assert (subjects.code, subjects.planned_id, subjects.visit_first_punch_id) == (
        "LATE_ARRIVAL",
        50,
        12,
    )
    assert parse_anomaly_key("CALLER_ID_WITHHELD:p3").punch_ids == (3,)


def test_foreign_anomaly_key_is_refused() -> None:
    """A key this module did not make (CODE_BRUTE_FORCE from the IVR) is not parsed silently."""
    with pytest.raises(ValueError, match="not a reconciliation anomaly key"):
        parse_anomaly_key("CODE_BRUTE_FORCE:+33123456789")


def test_gather_loads_other_carers_at_the_clients_visited() -> None:
    """gather loads other carers met at the clients visited, and nobody else."""
    # Carer 8's plan at client 100 is loaded for carer 7's day because carer 7 punched there,
    # and so are carer 8's punches elsewhere; a stranger at client 300 is not loaded.
    store = MemoryStore(
        punches=[
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 8, 200, "arrival", "2026-05-04 09:00"),
            punch(3, 8, 100, "arrival", "2026-05-04 14:00"),
            punch(4, 9, 300, "arrival", "2026-05-04 09:00"),
        ],
        planned=[plan(50, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    inputs = gather([CarerDay(1, 7, date(2026, 5, 4))], RULES, store)
    assert sorted(p.id for p in inputs.punches) == [1, 2, 3]
    assert [p.id for p in inputs.planned] == [50]


def test_gather_follows_links_to_the_far_side() -> None:
    """A visit of carer 9 on May 10 linked to carer 7's plan of May 4 is loaded with May 4."""
    store = MemoryStore(
        punches=[punch(1, 9, 300, "arrival", "2026-05-10 09:00")],
        planned=[plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
        resolutions=[
            ResolutionIn("UNPLANNED_VISIT:v1", "link_to_intervention", {"planned_id": 50}, 1)
        ],
    )
    inputs = gather([CarerDay(1, 7, date(2026, 5, 4))], RULES, store)
    assert [p.id for p in inputs.punches] == [1]
    assert [r.anomaly_key for r in inputs.resolutions] == ["UNPLANNED_VISIT:v1"]


def test_refresh_after_punch_includes_carers_planned_at_that_client() -> None:
    """A daytime arrival refreshes its carer's day and that of the carer planned there."""
    # A daytime arrival at client 100 changes one visit of May 4: carer 7's May 4 and that of
    # carer 8, planned there that day, are refreshed, and nothing else.
    store = MemoryStore(
        punches=[punch(1, 7, 100, "arrival", "2026-05-04 09:00")],
        planned=[plan(50, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    targets = refresh_after_punch(store.punches[1], RULES, store)
    assert targets == {CarerDay(1, 7, date(2026, 5, 4)), CarerDay(1, 8, date(2026, 5, 4))}


def test_refresh_after_punch_follows_a_night_visit_into_the_next_day() -> None:
    """Closing a night visit refreshes the next day of both carers at that client."""
    # A departure at 07:00 closing a 21:00 arrival changes a visit of May 4 that runs past
    # midnight: May 5 of carer 7 (a carry-over) and of carer 8 (planned there after midnight).
    store = MemoryStore(
        punches=[
            punch(1, 7, 100, "arrival", "2026-05-04 21:00"),
            punch(2, 7, 100, "departure", "2026-05-05 07:00"),
        ],
        planned=[
            plan(50, 7, 100, "2026-05-04 21:00", "2026-05-05 00:00"),
            plan(51, 8, 100, "2026-05-05 00:00", "2026-05-05 07:00"),
        ],
    )
    targets = refresh_after_punch(store.punches[2], RULES, store)
    assert {CarerDay(1, 7, date(2026, 5, 5)), CarerDay(1, 8, date(2026, 5, 5))} <= targets
    assert CarerDay(1, 7, date(2026, 5, 4)) in targets


def test_refresh_after_punch_works_for_a_removed_punch() -> None:
    """Called with a punch no longer stored, it still finds the visit it used to make."""
    store = MemoryStore(planned=[plan(50, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    removed = punch(1, 7, 100, "arrival", "2026-05-04 09:00")
    targets = refresh_after_punch(removed, RULES, store)
    assert CarerDay(1, 8, date(2026, 5, 4)) in targets


def test_refresh_after_punch_reaches_substitutes_at_the_carers_other_clients() -> None:
    """A new overlap at another client refreshes the carer planned at that client."""
    # A departure at client 100 makes carer 7's visit there overlap the 8:30-9:30 one at client
    # 200; carer 9, planned at 200 (that visit may be a substitute's), is refreshed too.
    store = MemoryStore(
        punches=[
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 200, "arrival", "2026-05-04 08:30"),
            punch(3, 7, 200, "departure", "2026-05-04 09:30"),
            punch(4, 7, 100, "departure", "2026-05-04 10:00"),
        ],
        planned=[plan(50, 9, 200, "2026-05-04 08:30", "2026-05-04 10:00")],
    )
    targets = refresh_after_punch(store.punches[4], RULES, store)
    assert CarerDay(1, 9, date(2026, 5, 4)) in targets


def test_refresh_after_planned_includes_carers_who_punched_there() -> None:
    """A new plan at client 100 refreshes the carer who punched there around that day."""
    store = MemoryStore(
        punches=[punch(1, 9, 100, "arrival", "2026-05-04 09:00")],
        planned=[plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    targets = refresh_after_planned(store.planned[50], RULES, store)
    assert CarerDay(1, 9, date(2026, 5, 4)) in targets
    assert CarerDay(1, 7, date(2026, 5, 3)) in targets


def test_carer_day_alone_sees_the_substitutes_other_visits() -> None:
    """A carer-day alone sees the overlap of its substitute's visit, as the batch does."""
    # Carer 8 substitutes at client 100 while also punched in at client 200: the overlap on
    # carer 8's visit blocks carer 7's intervention, in carer 7's day reconciled alone too.
    punches = [
        punch(1, 8, 100, "arrival", "2026-05-04 09:00"),
        punch(2, 8, 100, "departure", "2026-05-04 10:00"),
        punch(3, 8, 200, "arrival", "2026-05-04 09:30"),
        punch(4, 8, 200, "departure", "2026-05-04 10:30"),
    ]
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")]
    resolutions = [ResolutionIn("SUBSTITUTE_CARER:i50:v1", "dismiss", {}, 1)]
    target = CarerDay(1, 7, date(2026, 5, 4))
    store = MemoryStore(punches, planned, resolutions)
    inputs = gather([target], RULES, store)
    alone = reconcile(
        RULES, inputs.punches, inputs.planned, inputs.resolutions, at("2026-06-01 00:00")
    )
    assert alone.realised[50].status == "planned"
    assert alone.for_owners({target}) == run(punches, planned, resolutions).for_owners({target})


def test_refresh_after_punch_reaches_the_open_arrival_it_supersedes() -> None:
    """A new arrival refreshes the day of the open arrival it supersedes."""
    # A new arrival at 06:00 on May 5 supersedes the open 20:00 arrival of May 4 (12 h visits):
    # that visit's MISSING_DEPARTURE appears at once, so carer 7's May 4 is refreshed.
    store = MemoryStore(
        punches=[
            punch(1, 7, 100, "arrival", "2026-05-04 20:00"),
            punch(2, 7, 100, "arrival", "2026-05-05 06:00"),
        ]
    )
    targets = refresh_after_punch(store.punches[2], RULES, store)
    assert CarerDay(1, 7, date(2026, 5, 4)) in targets
