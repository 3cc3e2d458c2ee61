"""Matching visits to planned interventions and the anomalies it raises."""

from __future__ import annotations

from datetime import date

from recon_factory import anomaly, at, keys, plan, punch, run

from reconciliation.model import CompanyRules, Result


def matched(result: Result) -> dict[int, str]:
    return {m.planned_id: m.visit_key for m in result.matches}


def visit(pid: int, carer: int, client: int | None, start: str, end: str, **extra: object) -> list:
    return [
        punch(pid, carer, client, "arrival", start, **extra),
        punch(pid + 1, carer, client, "departure", end, **extra),
    ]


def test_punctual_visit_matches_and_is_realised() -> None:
    """Visit 8:58-10:03 for planned 9:00-10:00: matched, no anomaly, realised 9:00-10:00 (60)."""
    result = run(
        visit(1, 7, 100, "2026-05-04 08:58", "2026-05-04 10:03"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    assert matched(result) == {50: "v1"}
    assert keys(result) == set()
    realised = result.realised[50]
    assert realised.status == "realised"
    assert (realised.realised_start, realised.realised_end) == (
        at("2026-05-04 09:00"),
        at("2026-05-04 10:00"),
    )
    assert realised.realised_minutes == 60


def test_late_arrival_beyond_tolerance() -> None:
    """Arrival at 9:20 for 9:00 (tolerance 15) is LATE_ARRIVAL (W) by 20 min; 9:15 is not."""
    late = run(
        visit(1, 7, 100, "2026-05-04 09:20", "2026-05-04 10:00"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    on_time = run(
        visit(1, 7, 100, "2026-05-04 09:15", "2026-05-04 10:00"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    found = anomaly(late, "LATE_ARRIVAL:i50:v1")
    assert (found.severity, found.detail["minutes_late"]) == ("W", 20)
    assert "LATE_ARRIVAL:i50:v1" not in keys(on_time)
    # A warning does not block: realised 9:20 (outside tolerance, kept) to 10:00 = 40 min.
    assert late.realised[50].realised_minutes == 40


def test_early_departure_beyond_tolerance() -> None:
    """Departure at 9:40 for a 10:00 end is EARLY_DEPARTURE by 20 min; 9:45 is not."""
    early = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 09:40"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    fine = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 09:45"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    assert anomaly(early, "EARLY_DEPARTURE:i50:v1").detail["minutes_early"] == 20
    assert "EARLY_DEPARTURE:i50:v1" not in keys(fine)


def test_overtime_is_realised_over_planned_plus_tolerance() -> None:
    """9:00-10:16 realises 76 min (> 60 + 15): OVERTIME; 9:00-10:15 snaps to 60: none."""
    over = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:16"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    fine = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:15"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    found = anomaly(over, "OVERTIME:i50:v1")
    assert (found.severity, found.detail["realised_minutes"], found.detail["planned_minutes"]) == (
        "W",
        76,
        60,
    )
    assert "OVERTIME:i50:v1" not in keys(fine)


def test_visit_with_no_planned_intervention_is_unplanned() -> None:
    """A visit at a client with nothing planned raises UNPLANNED_VISIT (B)."""
    result = run(visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"))
    assert anomaly(result, "UNPLANNED_VISIT:v1").severity == "B"


def test_match_window_counts_from_the_planned_start() -> None:
    """Planned 9:00-9:30: a visit from 10:50 (110 min later) matches; one from 11:30 does not."""
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 09:30")]
    near = run(visit(1, 7, 100, "2026-05-04 10:50", "2026-05-04 11:20"), planned)
    far = run(visit(1, 7, 100, "2026-05-04 11:30", "2026-05-04 12:00"), planned)
    assert matched(near) == {50: "v1"}
    assert matched(far) == {}
    assert {"UNPLANNED_VISIT:v1", "NO_PUNCH:i50"} <= keys(far)


def test_visit_never_matches_another_clients_intervention() -> None:
    """Carer 7 at client 200 does not match carer 7's plan at client 100 at the same time."""
    result = run(
        visit(1, 7, 200, "2026-05-04 09:00", "2026-05-04 10:00"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    assert matched(result) == {}


def test_total_overlap_is_maximised_not_taken_greedily() -> None:
    """Greedy would give P2 to V1 (45 min) and P1 to V2 (0 min): 45. Optimal is 40 + 30 = 70."""
    planned = [
        plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
        plan(51, 7, 100, "2026-05-04 10:05", "2026-05-04 11:05"),
    ]
    # V1 9:20-10:50 overlaps P1 by 40 min and P2 by 45; V2 10:30-11:00 overlaps P2 by 30 and
    # starts 90 min after P1's start, so it could also match P1 (by the window, 0 overlap).
    punches = visit(1, 7, 100, "2026-05-04 09:20", "2026-05-04 10:50") + visit(
        3, 7, 100, "2026-05-04 10:30", "2026-05-04 11:00"
    )
    result = run(punches, planned)
    assert matched(result) == {50: "v1", 51: "v3"}


def test_ties_prefer_the_closest_start() -> None:
    """Two 30-min visits inside one 9:00-10:00 plan tie on overlap; 9:00 beats 9:30 (closer)."""
    punches = visit(1, 7, 100, "2026-05-04 09:30", "2026-05-04 10:00") + visit(
        3, 7, 100, "2026-05-04 09:00", "2026-05-04 09:30"
    )
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    assert matched(result) == {50: "v3"}
    assert "UNPLANNED_VISIT:v1" in keys(result)


def test_one_visit_covers_back_to_back_interventions_split_at_the_boundary() -> None:
    """8:55-11:05 over 9-10 and 10-11 (same client and carer) covers both, cut at 10:00."""
    result = run(
        visit(1, 7, 100, "2026-05-04 08:55", "2026-05-04 11:05"),
        [
            plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
            plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00"),
        ],
    )
    parts = {m.planned_id: (m.start, m.end) for m in result.matches}
    assert parts == {
        50: (at("2026-05-04 08:55"), at("2026-05-04 10:00")),
        51: (at("2026-05-04 10:00"), at("2026-05-04 11:05")),
    }
    # Each part is then judged on its own: 8:55 and 11:05 are within tolerance.
    assert [result.realised[p].realised_minutes for p in (50, 51)] == [60, 60]
    assert keys(result) == set()


def test_back_to_back_part_not_reached_stays_unmatched() -> None:
    """A visit 8:55-9:58 covers only 9-10; the 10-11 intervention gets NO_PUNCH."""
    result = run(
        visit(1, 7, 100, "2026-05-04 08:55", "2026-05-04 09:58"),
        [
            plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
            plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00"),
        ],
    )
    assert matched(result) == {50: "v1"}
    assert "NO_PUNCH:i51" in keys(result)


def test_two_visits_over_back_to_back_interventions_take_one_each() -> None:
    """Visits 9:00-10:00 and 10:00-11:00 over back-to-back plans match one plan each."""
    punches = visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00") + visit(
        3, 7, 100, "2026-05-04 10:02", "2026-05-04 11:00"
    )
    result = run(
        punches,
        [
            plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
            plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00"),
        ],
    )
    assert matched(result) == {50: "v1", 51: "v3"}


def test_night_split_at_midnight_is_carried_over() -> None:
    """20:55-07:03 over 21:00-24:00 (May 4) and 00:00-07:00 (May 5): one visit covers both."""
    result = run(
        visit(1, 7, 100, "2026-05-04 20:55", "2026-05-05 07:03"),
        [
            plan(50, 7, 100, "2026-05-04 21:00", "2026-05-05 00:00"),
            plan(51, 7, 100, "2026-05-05 00:00", "2026-05-05 07:00"),
        ],
    )
    how = {m.planned_id: m.how for m in result.matches}
    assert how == {50: "own", 51: "carried_over"}
    assert result.realised[51].owner.day == date(2026, 5, 5)
    # 21:00-00:00 is 180 minutes, 00:00-07:00 is 420 minutes.
    assert [result.realised[p].realised_minutes for p in (50, 51)] == [180, 420]


def test_night_split_on_the_spring_forward_night() -> None:
    """On 2026-03-29 the 00:00-08:00 part lasts 7 real hours (420 min): 02:00 becomes 03:00."""
    result = run(
        visit(1, 7, 100, "2026-03-28 19:58", "2026-03-29 08:01"),
        [
            plan(50, 7, 100, "2026-03-28 20:00", "2026-03-29 00:00"),
            plan(51, 7, 100, "2026-03-29 00:00", "2026-03-29 08:00"),
        ],
    )
    assert [result.realised[p].realised_minutes for p in (50, 51)] == [240, 420]


def test_night_split_on_the_fall_back_night() -> None:
    """On 2026-10-25 the 00:00-07:00 part lasts 8 real hours (480 min): 03:00 becomes 02:00."""
    result = run(
        visit(1, 7, 100, "2026-10-24 21:58", "2026-10-25 07:01"),
        [
            plan(50, 7, 100, "2026-10-24 22:00", "2026-10-25 00:00"),
            plan(51, 7, 100, "2026-10-25 00:00", "2026-10-25 07:00"),
        ],
    )
    assert [result.realised[p].realised_minutes for p in (50, 51)] == [120, 480]


def test_thirteen_hour_fall_back_night_exceeds_twelve_hours() -> None:
    """19:58-08:01 on the fall-back night is 13 h 3 min: over max_visit_hours 12."""
    # 19:58-08:01 on the fall-back night is 13 h 3 min of real time: over max_visit_hours 12,
    # the punches do not pair; with max_visit_hours 14 they do.
    punches = visit(1, 7, 100, "2026-10-24 19:58", "2026-10-25 08:01")
    assert {"MISSING_DEPARTURE:v1", "MISSING_ARRIVAL:v2"} <= keys(run(punches))
    longer = run(punches, rules={1: CompanyRules(max_visit_hours=14)})
    assert [v.key for v in longer.visits] == ["v1"]


def test_night_intervention_across_midnight_matches_one_visit() -> None:
    """A 21:00-07:00 intervention and a 20:55-07:05 visit: matched, 600 min, owned by May 4."""
    result = run(
        visit(1, 7, 100, "2026-05-04 20:55", "2026-05-05 07:05"),
        [plan(50, 7, 100, "2026-05-04 21:00", "2026-05-05 07:00")],
    )
    assert result.realised[50].realised_minutes == 600
    assert result.realised[50].owner.day == date(2026, 5, 4)


def test_substitute_carer_matches_with_a_blocking_anomaly() -> None:
    """Carer 8 does carer 7's 9-10 visit at client 100: matched with SUBSTITUTE_CARER (B)."""
    result = run(
        visit(1, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    found = anomaly(result, "SUBSTITUTE_CARER:i50:v1")
    assert (found.severity, found.carer_id, found.detail["planned_carer_id"]) == ("B", 8, 7)
    assert {m.how for m in result.matches} == {"substitute"}
    assert "NO_PUNCH:i50" not in keys(result)
    assert result.realised[50].status == "planned"


def test_planned_carer_comes_before_a_substitute() -> None:
    """When carers 7 (planned) and 8 both visit, 7's visit matches and 8's is unplanned."""
    punches = visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00") + visit(
        3, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00"
    )
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    assert matched(result) == {50: "v1"}
    assert "UNPLANNED_VISIT:v3" in keys(result)
    assert not any(k.startswith("SUBSTITUTE_CARER") for k in keys(result))


def test_no_punch_only_after_end_plus_tolerance() -> None:
    """Planned 9-10 with no visit: no NO_PUNCH at 10:15, NO_PUNCH (B) at 10:15:01."""
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")]
    assert "NO_PUNCH:i50" not in keys(run([], planned, now="2026-05-04 10:15"))
    assert anomaly(run([], planned, now="2026-05-04 10:15:01"), "NO_PUNCH:i50").severity == "B"


def test_late_start_alert_while_the_day_runs() -> None:
    """No arrival by 9:15 for a 9:00 start raises LATE_START_ALERT (W); at 9:14 it does not."""
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")]
    assert keys(run([], planned, now="2026-05-04 09:14")) == set()
    found = anomaly(run([], planned, now="2026-05-04 09:15"), "LATE_START_ALERT:i50")
    assert found.severity == "W"


def test_late_start_alert_is_closed_by_the_arrival() -> None:
    """Once the 9:16 arrival exists, the alert is no longer raised (LATE_ARRIVAL is)."""
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")]
    result = run([punch(1, 7, 100, "arrival", "2026-05-04 09:16")], planned, now="2026-05-04 09:17")
    assert "LATE_START_ALERT:i50" not in keys(result)
    assert "LATE_ARRIVAL:i50:v1" in keys(result)


def test_late_start_alert_gives_way_to_no_punch() -> None:
    """After the end plus tolerance the alert is replaced by NO_PUNCH."""
    planned = [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")]
    assert keys(run([], planned, now="2026-05-04 11:00")) == {"NO_PUNCH:i50"}


def test_unknown_caller_visit_matches_the_carers_own_plan_and_blocks() -> None:
    """An unknown-number visit matches the carer's own plan, which its anomalies block."""
    # A visit from an unknown number matches carer 7's plan by time; both punches raise
    # UNKNOWN_CALLER_NUMBER (B) about it, so it is not realised.
    punches = visit(1, 7, None, "2026-05-04 09:00", "2026-05-04 10:00", caller_unknown=True)
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    assert {m.how for m in result.matches} == {"unknown_client"}
    for key in ("UNKNOWN_CALLER_NUMBER:p1", "UNKNOWN_CALLER_NUMBER:p2"):
        found = anomaly(result, key)
        assert (found.severity, found.about_planned_ids) == ("B", (50,))
    assert result.realised[50].status == "planned"


def test_withheld_caller_raises_caller_id_withheld() -> None:
    """A punch with no caller number raises CALLER_ID_WITHHELD (B), not UNKNOWN_CALLER_NUMBER."""
    result = run(
        [punch(1, 7, None, "arrival", "2026-05-04 09:00", caller_withheld=True)],
        now="2026-05-04 09:30",
    )
    assert anomaly(result, "CALLER_ID_WITHHELD:p1").severity == "B"
    assert "UNKNOWN_CALLER_NUMBER:p1" not in keys(result)


def test_known_client_visit_wins_over_an_unknown_one() -> None:
    """A known-client visit takes the plan; the withheld visit at the same time stays unplanned."""
    punches = visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00") + visit(
        3, 7, None, "2026-05-04 09:00", "2026-05-04 10:00", caller_withheld=True
    )
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    assert matched(result) == {50: "v1"}
    assert "UNPLANNED_VISIT:v3" in keys(result)


def test_unknown_client_visit_never_matches_another_carers_plan() -> None:
    """A withheld visit by carer 8 does not match carer 7's plan."""
    punches = visit(1, 8, None, "2026-05-04 09:00", "2026-05-04 10:00", caller_withheld=True)
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")])
    assert matched(result) == {}


def test_callback_punch_at_a_client_with_a_landline_is_location_unverified() -> None:
    """A call-back punch for a client with a landline raises LOCATION_UNVERIFIED (W)."""
    extra = {"source": "callback", "location_verified": False}
    with_line = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00", client_has_landline=True, **extra)
    )
    without = run(
        visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00", client_has_landline=False, **extra)
    )
    assert anomaly(with_line, "LOCATION_UNVERIFIED:p1").severity == "W"
    assert not any(k.startswith("LOCATION_UNVERIFIED") for k in keys(without))


def test_client_absent_report_matches_and_blocks() -> None:
    """An absence report at 9:05 matches the 9-10 plan (no NO_PUNCH) and raises CLIENT_ABSENT."""
    result = run(
        [punch(1, 7, 100, "arrival", "2026-05-04 09:05", status="client_absent")],
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
    )
    assert anomaly(result, "CLIENT_ABSENT:p1").about_planned_ids == (50,)
    assert "NO_PUNCH:i50" not in keys(result)
    assert result.realised[50].status == "planned"


def test_carer_in_two_companies_is_matched_within_each_company() -> None:
    """A carer of two companies is matched and rounded by each company's own rules."""
    # Carer 7 works for companies 1 and 2; each visit matches only its company's plan, and
    # company 2's rounding (15 min, company direction) applies to company 2 only.
    rules = {
        1: CompanyRules(),
        2: CompanyRules(
            rounding_rule="punched", rounding_step_min=15, rounding_direction="company"
        ),
    }
    punches = [
        *visit(1, 7, 100, "2026-05-04 09:05", "2026-05-04 10:05"),
        punch(3, 7, 200, "arrival", "2026-05-04 11:05", company=2),
        punch(4, 7, 200, "departure", "2026-05-04 12:05", company=2),
    ]
    planned = [
        plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00"),
        plan(60, 7, 200, "2026-05-04 11:00", "2026-05-04 12:00", company=2),
    ]
    result = run(punches, planned, rules=rules)
    assert matched(result) == {50: "v1", 60: "v3"}
    # Company 1 keeps planned times within tolerance: 60 minutes.
    assert result.realised[50].realised_minutes == 60
    # Company 2: 11:05 rounded later to 11:15, 12:05 rounded earlier to 12:00: 45 minutes.
    assert result.realised[60].realised_minutes == 45
    assert result.realised[60].owner.company_id == 2


def test_unknown_client_visit_in_one_company_ignores_the_other_companys_plan() -> None:
    """A withheld visit in company 2 does not match carer 7's plan in company 1."""
    rules = {1: CompanyRules(), 2: CompanyRules()}
    punches = [
        punch(1, 7, None, "arrival", "2026-05-04 09:00", company=2, caller_withheld=True),
        punch(2, 7, None, "departure", "2026-05-04 10:00", company=2, caller_withheld=True),
    ]
    result = run(punches, [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")], rules=rules)
    assert matched(result) == {}
