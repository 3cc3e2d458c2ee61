"""Pairing punches into visits: duplicates, missing punches, short and overlapping visits."""

from __future__ import annotations

from datetime import date, timedelta

from recon_factory import anomaly, at, keys, punch, run

from reconciliation.model import CompanyRules


def test_arrival_and_next_departure_make_one_visit() -> None:
    """An arrival at 9:00 and a departure at 10:00 at the same client form visit v1."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 10:00"),
        ]
    )
    (visit,) = result.visits
    assert (visit.key, visit.arrival_punch_id, visit.departure_punch_id) == ("v1", 1, 2)
    assert (visit.start, visit.end) == (at("2026-05-04 09:00"), at("2026-05-04 10:00"))
    assert keys(result) == {"UNPLANNED_VISIT:v1"}


def test_same_kind_twice_within_ten_minutes_is_a_duplicate() -> None:
    """A second arrival 6 min after the first is ignored and raises DUPLICATE_PUNCH (W)."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "arrival", "2026-05-04 09:06"),
            punch(3, 7, 100, "departure", "2026-05-04 10:00"),
        ]
    )
    dup = anomaly(result, "DUPLICATE_PUNCH:p2")
    assert dup.severity == "W"
    assert dup.detail["repeats_punch"] == 1
    (visit,) = result.visits
    assert (visit.arrival_punch_id, visit.departure_punch_id) == (1, 3)


def test_duplicate_window_is_ten_minutes_inclusive() -> None:
    """Departures at 10:00 and 10:10 are duplicates; 10:00 and 10:10:01 are not."""
    base = [
        punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
        punch(2, 7, 100, "departure", "2026-05-04 10:00"),
    ]
    inside = run([*base, punch(3, 7, 100, "departure", "2026-05-04 10:10")])
    outside = run([*base, punch(3, 7, 100, "departure", "2026-05-04 10:10:01")])
    assert "DUPLICATE_PUNCH:p3" in keys(inside)
    assert "DUPLICATE_PUNCH:p3" not in keys(outside)
    # Not a duplicate, so the 10:10:01 departure has no open arrival before it.
    assert "MISSING_ARRIVAL:v3" in keys(outside)


def test_duplicate_is_judged_against_the_punch_just_before() -> None:
    """Arrivals at 9:00, 9:08, 9:16: each repeats the one 8 min before, so both later ones go."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "arrival", "2026-05-04 09:08"),
            punch(3, 7, 100, "arrival", "2026-05-04 09:16"),
            punch(4, 7, 100, "departure", "2026-05-04 10:00"),
        ]
    )
    assert {"DUPLICATE_PUNCH:p2", "DUPLICATE_PUNCH:p3"} <= keys(result)
    assert [(v.arrival_punch_id, v.departure_punch_id) for v in result.visits] == [(1, 4)]


def test_departure_without_open_arrival_is_missing_arrival() -> None:
    """A lone departure is a point visit with MISSING_ARRIVAL (B)."""
    result = run([punch(5, 7, 100, "departure", "2026-05-04 10:00")])
    found = anomaly(result, "MISSING_ARRIVAL:v5")
    assert found.severity == "B"
    (visit,) = result.visits
    assert visit.arrival_punch_id is None
    assert visit.start == visit.end == at("2026-05-04 10:00")


def test_missing_departure_waits_for_max_visit_hours() -> None:
    """An arrival at 9:00 is open until 21:00 (12 h); MISSING_DEPARTURE appears only after."""
    punches = [punch(1, 7, 100, "arrival", "2026-05-04 09:00")]
    assert "MISSING_DEPARTURE:v1" not in keys(run(punches, now="2026-05-04 21:00"))
    assert "MISSING_DEPARTURE:v1" in keys(run(punches, now="2026-05-04 21:01"))
    (visit,) = run(punches, now="2026-05-04 12:00").visits
    assert visit.end is None


def test_departure_after_max_visit_hours_does_not_close_the_arrival() -> None:
    """A departure 12 h 1 min after the arrival leaves both alone: both punches are missing one."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 08:00"),
            punch(2, 7, 100, "departure", "2026-05-04 20:01"),
        ]
    )
    assert {"MISSING_DEPARTURE:v1", "MISSING_ARRIVAL:v2"} <= keys(result)


def test_max_visit_hours_is_a_company_setting() -> None:
    """With max_visit_hours 14 the same 12 h 1 min visit pairs normally."""
    rules = {1: CompanyRules(max_visit_hours=14)}
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 08:00"),
            punch(2, 7, 100, "departure", "2026-05-04 20:01"),
        ],
        rules=rules,
    )
    assert [(v.arrival_punch_id, v.departure_punch_id) for v in result.visits] == [(1, 2)]


def test_arrival_followed_by_another_arrival_is_missing_departure_at_once() -> None:
    """A second arrival 2 h later means the first can never be closed: raised before 12 h pass."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "arrival", "2026-05-04 11:00"),
        ],
        now="2026-05-04 11:05",
    )
    assert "MISSING_DEPARTURE:v1" in keys(result)
    assert anomaly(result, "MISSING_DEPARTURE:v1").detail["superseded"] is True
    assert "MISSING_DEPARTURE:v2" not in keys(result)


def test_too_short_below_min_visit_minutes() -> None:
    """2 min 59 s is under min_visit_min 3 (TOO_SHORT, W); exactly 3 min is not."""
    short = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 09:02:59"),
        ]
    )
    enough = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 09:03"),
        ]
    )
    assert anomaly(short, "TOO_SHORT:v1").severity == "W"
    assert anomaly(short, "TOO_SHORT:v1").detail["seconds"] == 179
    assert "TOO_SHORT:v1" not in keys(enough)


def test_overlapping_visits_at_two_clients_flag_both() -> None:
    """9:00-11:00 at client 100 and 10:00-12:00 at client 200: both visits OVERLAPPING (B)."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 11:00"),
            punch(3, 7, 200, "arrival", "2026-05-04 10:00"),
            punch(4, 7, 200, "departure", "2026-05-04 12:00"),
        ]
    )
    assert anomaly(result, "OVERLAPPING_VISITS:v1").detail["with_visits"] == ["v3"]
    assert anomaly(result, "OVERLAPPING_VISITS:v3").detail["with_visits"] == ["v1"]
    assert anomaly(result, "OVERLAPPING_VISITS:v1").severity == "B"


def test_touching_visits_do_not_overlap() -> None:
    """9:00-10:00 at 100 then 10:00-11:00 at 200 only touch: no OVERLAPPING_VISITS."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 10:00"),
            punch(3, 7, 200, "arrival", "2026-05-04 10:00"),
            punch(4, 7, 200, "departure", "2026-05-04 11:00"),
        ]
    )
    assert not any(k.startswith("OVERLAPPING_VISITS") for k in keys(result))


def test_two_carers_at_the_same_time_do_not_overlap() -> None:
    """Two carers at two clients at the same time is normal: no OVERLAPPING_VISITS."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 7, 100, "departure", "2026-05-04 11:00"),
            punch(3, 8, 200, "arrival", "2026-05-04 10:00"),
            punch(4, 8, 200, "departure", "2026-05-04 12:00"),
        ]
    )
    assert not any(k.startswith("OVERLAPPING_VISITS") for k in keys(result))


def test_night_visit_belongs_to_the_day_it_starts() -> None:
    """22:00 on May 4 to 07:00 on May 5 is one 9-hour visit of May 4."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 22:00"),
            punch(2, 7, 100, "departure", "2026-05-05 07:00"),
        ]
    )
    (visit,) = result.visits
    assert visit.day == date(2026, 5, 4)
    assert visit.end is not None and visit.end - visit.start == timedelta(hours=9)


def test_spring_forward_night_is_one_hour_shorter() -> None:
    """22:00 on 2026-03-28 to 07:00 on 2026-03-29 in Paris lasts 8 real hours, not 9."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-03-28 22:00"),
            punch(2, 7, 100, "departure", "2026-03-29 07:00"),
        ]
    )
    (visit,) = result.visits
    assert visit.day == date(2026, 3, 28)
    assert visit.end is not None and visit.end - visit.start == timedelta(hours=8)


def test_fall_back_night_is_one_hour_longer() -> None:
    """22:00 on 2026-10-24 to 07:00 on 2026-10-25 lasts 10 real hours."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-10-24 22:00"),
            punch(2, 7, 100, "departure", "2026-10-25 07:00"),
        ]
    )
    (visit,) = result.visits
    assert visit.end is not None and visit.end - visit.start == timedelta(hours=10)


def test_visit_day_is_the_local_day_not_the_utc_day() -> None:
    """00:30 Paris on May 5 is 22:30 UTC on May 4; the visit belongs to May 5."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-05 00:30"),
            punch(2, 7, 100, "departure", "2026-05-05 01:30"),
        ]
    )
    assert result.visits[0].day == date(2026, 5, 5)


def test_absence_report_stands_alone() -> None:
    """A client-absent report is a point visit; an arrival 5 min later is no duplicate of it."""
    result = run(
        [
            punch(1, 7, 100, "arrival", "2026-05-04 09:00", status="client_absent"),
            punch(2, 7, 100, "arrival", "2026-05-04 09:05"),
            punch(3, 7, 100, "departure", "2026-05-04 10:00"),
        ]
    )
    report, visit = result.visits
    assert report.absence_report and report.start == report.end
    assert (visit.arrival_punch_id, visit.departure_punch_id) == (2, 3)
    assert "DUPLICATE_PUNCH:p2" not in keys(result)
    assert "MISSING_DEPARTURE:v1" not in keys(result)


def test_punches_with_unknown_client_pair_among_themselves() -> None:
    """Two withheld calls pair into one visit with an unknown client."""
    result = run(
        [
            punch(1, 7, None, "arrival", "2026-05-04 09:00", caller_withheld=True),
            punch(2, 7, None, "departure", "2026-05-04 10:00", caller_withheld=True),
        ]
    )
    (visit,) = result.visits
    assert visit.client_id is None and visit.closed


def test_one_carer_in_two_companies_has_separate_streams() -> None:
    """Carer id 7 punching in company 1 then 2 with unknown clients makes two unpaired visits."""
    rules = {1: CompanyRules(), 2: CompanyRules()}
    result = run(
        [
            punch(1, 7, None, "arrival", "2026-05-04 09:00", caller_withheld=True),
            punch(2, 7, None, "departure", "2026-05-04 10:00", company=2, caller_withheld=True),
        ],
        rules=rules,
    )
    assert {"MISSING_ARRIVAL:v2"} <= keys(result)
    assert anomaly(result, "MISSING_ARRIVAL:v2").owner.company_id == 2
