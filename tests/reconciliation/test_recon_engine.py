"""reconcile(): resolutions, export status, determinism and input checks."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from recon_factory import RULES, anomaly, at, keys, plan, punch, run

from reconciliation.engine import reconcile
from reconciliation.model import CompanyRules, PlannedIn, PunchIn, ResolutionIn


def visit(pid: int, carer: int, client: int | None, start: str, end: str, **extra: object) -> list:
    return [
        punch(pid, carer, client, "arrival", start, **extra),
        punch(pid + 1, carer, client, "departure", end, **extra),
    ]


PLAN = plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")


def resolve(key: str, action: str, seq: int = 1, **params: object) -> ResolutionIn:
    return ResolutionIn(key, action, params, seq)  # type: ignore[arg-type]


def test_dismissed_substitute_is_realised_for_the_substitute() -> None:
    """Dismissing SUBSTITUTE_CARER releases the export; payroll goes to carer 8 who came."""
    punches = visit(1, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00")
    result = run(punches, [PLAN], [resolve("SUBSTITUTE_CARER:i50:v1", "dismiss")])
    assert anomaly(result, "SUBSTITUTE_CARER:i50:v1").resolution == "dismiss"
    realised = result.realised[50]
    assert (realised.status, realised.done_by_carer_id, realised.realised_minutes) == (
        "realised",
        8,
        60,
    )


def test_resolved_anomaly_stays_in_the_result_and_stays_resolved() -> None:
    """Re-running with the same resolution returns the same key, still resolved."""
    punches = visit(1, 8, 100, "2026-05-04 09:00", "2026-05-04 10:00")
    resolutions = [resolve("SUBSTITUTE_CARER:i50:v1", "dismiss")]
    first = run(punches, [PLAN], resolutions)
    second = run(punches, [PLAN], resolutions)
    assert first == second
    assert not first.open_anomalies()


def test_accept_punched_keeps_times_the_rule_would_snap() -> None:
    """accept_punched realises the punched 8:50-10:05 (75 min) where the rule would give 60."""
    # Withheld visit 8:50-10:05 on the carer's plan: accepting the punched times on one caller
    # anomaly and dismissing the other realises 8:50-10:05 (75 min) instead of 9:00-10:00.
    punches = visit(1, 7, None, "2026-05-04 08:50", "2026-05-04 10:05", caller_withheld=True)
    resolutions = [
        resolve("CALLER_ID_WITHHELD:p1", "accept_punched"),
        resolve("CALLER_ID_WITHHELD:p2", "dismiss", seq=2),
    ]
    result = run(punches, [PLAN], resolutions)
    assert result.realised[50].realised_minutes == 75
    dismissed_only = run(
        punches,
        [PLAN],
        [
            resolve("CALLER_ID_WITHHELD:p1", "dismiss"),
            resolve("CALLER_ID_WITHHELD:p2", "dismiss", seq=2),
        ],
    )
    assert dismissed_only.realised[50].realised_minutes == 60


def test_use_planned_on_no_punch_realises_the_planned_times() -> None:
    """'Carer forgot to call': use_planned on NO_PUNCH realises 9:00-10:00 for carer 7."""
    result = run([], [PLAN], [resolve("NO_PUNCH:i50", "use_planned")])
    realised = result.realised[50]
    assert (realised.status, realised.realised_start, realised.realised_minutes) == (
        "realised",
        at("2026-05-04 09:00"),
        60,
    )
    assert realised.done_by_carer_id == 7


def test_dismissed_no_punch_is_not_done() -> None:
    """A NO_PUNCH closed without times means the visit was missed: status not_done."""
    result = run([], [PLAN], [resolve("NO_PUNCH:i50", "dismiss")])
    assert result.realised[50].status == "not_done"
    assert result.realised[50].realised_minutes is None


def test_open_no_punch_leaves_the_intervention_planned() -> None:
    """Without a resolution the missed intervention stays 'planned'."""
    assert run([], [PLAN]).realised[50].status == "planned"


def test_mark_not_done_wins_over_a_visit() -> None:
    """mark_not_done on a LATE_ARRIVAL makes the intervention not_done although it was visited."""
    punches = visit(1, 7, 100, "2026-05-04 09:30", "2026-05-04 10:00")
    result = run(punches, [PLAN], [resolve("LATE_ARRIVAL:i50:v1", "mark_not_done")])
    assert result.realised[50].status == "not_done"


def test_set_times_on_missing_departure() -> None:
    """Arrival 9:02 never closed; set_times 9:02-9:58 realises 56 minutes."""
    result = run(
        [punch(1, 7, 100, "arrival", "2026-05-04 09:02")],
        [PLAN],
        [
            resolve(
                "MISSING_DEPARTURE:v1",
                "set_times",
                start=at("2026-05-04 09:02"),
                end=at("2026-05-04 09:58"),
            )
        ],
        now="2026-05-05 12:00",
    )
    realised = result.realised[50]
    assert (realised.status, realised.realised_minutes) == ("realised", 56)


def test_set_times_on_a_split_visit_is_cut_at_the_planned_boundary() -> None:
    """set_times on a visit over two back-to-back plans is cut at their boundary."""
    # Overlapping visit over back-to-back 9-10 and 10-11: set_times 9:10-10:40 on the visit's
    # OVERLAPPING anomaly gives 9:10-10:00 (50) and 10:00-10:40 (40).
    punches = [
        *visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 11:00"),
        *visit(3, 7, 200, "2026-05-04 10:30", "2026-05-04 10:45"),
    ]
    planned = [PLAN, plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00")]
    resolutions = [
        resolve(
            "OVERLAPPING_VISITS:v1",
            "set_times",
            start=at("2026-05-04 09:10"),
            end=at("2026-05-04 10:40"),
        )
    ]
    result = run(punches, planned, resolutions)
    assert [result.realised[p].realised_minutes for p in (50, 51)] == [50, 40]
    assert result.realised[51].realised_start == at("2026-05-04 10:00")


def test_blocking_anomaly_holds_back_every_part_of_a_split_visit() -> None:
    """The open OVERLAPPING_VISITS of a visit over two plans blocks both of them."""
    punches = [
        *visit(1, 7, 100, "2026-05-04 09:00", "2026-05-04 11:00"),
        *visit(3, 7, 200, "2026-05-04 10:30", "2026-05-04 10:45"),
    ]
    planned = [PLAN, plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00")]
    result = run(punches, planned)
    assert anomaly(result, "OVERLAPPING_VISITS:v1").about_planned_ids == (50, 51)
    assert [result.realised[p].status for p in (50, 51)] == ["planned", "planned"]


def test_link_matches_an_unplanned_visit_to_the_chosen_intervention() -> None:
    """A linked visit matches the chosen plan and its UNPLANNED_VISIT is kept, resolved."""
    # A visit at client 200 linked to the plan at client 100: matched 'linked', realised, and
    # the UNPLANNED_VISIT it answered is kept, resolved.
    punches = visit(1, 7, 200, "2026-05-04 09:00", "2026-05-04 10:00")
    result = run(
        punches, [PLAN], [resolve("UNPLANNED_VISIT:v1", "link_to_intervention", planned_id=50)]
    )
    assert [(m.visit_key, m.planned_id, m.how) for m in result.matches] == [("v1", 50, "linked")]
    assert anomaly(result, "UNPLANNED_VISIT:v1").resolution == "link_to_intervention"
    assert "NO_PUNCH:i50" not in keys(result)
    assert result.realised[50].status == "realised"


def test_create_intervention_behaves_like_a_link() -> None:
    """create_intervention with the new row's id matches the visit to it."""
    punches = visit(1, 7, 200, "2026-05-04 14:00", "2026-05-04 15:00")
    created = plan(77, 7, 200, "2026-05-04 14:00", "2026-05-04 15:00")
    result = run(
        punches, [created], [resolve("UNPLANNED_VISIT:v1", "create_intervention", planned_id=77)]
    )
    assert [(m.planned_id, m.how) for m in result.matches] == [(77, "linked")]
    assert result.realised[77].status == "realised"


def test_later_link_to_the_same_intervention_wins() -> None:
    """Two visits linked to plan 50: the one with the higher seq gets it, the other is free."""
    punches = [
        *visit(1, 7, 200, "2026-05-04 09:00", "2026-05-04 10:00"),
        *visit(3, 7, 300, "2026-05-04 11:00", "2026-05-04 12:00"),
    ]
    resolutions = [
        resolve("UNPLANNED_VISIT:v1", "link_to_intervention", seq=1, planned_id=50),
        resolve("UNPLANNED_VISIT:v3", "link_to_intervention", seq=2, planned_id=50),
    ]
    result = run(punches, [PLAN], resolutions)
    assert [(m.visit_key, m.planned_id) for m in result.matches] == [("v3", 50)]


def test_latest_resolution_of_an_anomaly_is_the_current_one() -> None:
    """mark_not_done (seq 1) then use_planned (seq 2) on NO_PUNCH: the intervention is realised."""
    resolutions = [
        resolve("NO_PUNCH:i50", "mark_not_done", seq=1),
        resolve("NO_PUNCH:i50", "use_planned", seq=2),
    ]
    result = run([], [PLAN], resolutions)
    assert result.realised[50].status == "realised"
    assert anomaly(result, "NO_PUNCH:i50").resolution == "use_planned"


def test_resolving_an_absence_report_makes_the_intervention_not_done() -> None:
    """CLIENT_ABSENT dismissed: no care was given, the intervention is not_done."""
    result = run(
        [punch(1, 7, 100, "arrival", "2026-05-04 09:05", status="client_absent")],
        [PLAN],
        [resolve("CLIENT_ABSENT:p1", "dismiss")],
    )
    assert result.realised[50].status == "not_done"


def test_warning_does_not_block_the_export() -> None:
    """A LATE_ARRIVAL (W) left open does not keep the intervention from being realised."""
    result = run(visit(1, 7, 100, "2026-05-04 09:20", "2026-05-04 10:00"), [PLAN])
    assert anomaly(result, "LATE_ARRIVAL:i50:v1").is_open
    assert result.realised[50].status == "realised"


def test_result_does_not_depend_on_input_order() -> None:
    """Shuffling punches, plans and resolutions gives an equal result."""
    punches = [
        *visit(1, 7, 100, "2026-05-04 08:55", "2026-05-04 11:05"),
        *visit(3, 8, 100, "2026-05-04 14:00", "2026-05-04 15:00"),
        *visit(5, 7, None, "2026-05-04 16:00", "2026-05-04 17:00", caller_withheld=True),
        punch(7, 7, 100, "departure", "2026-05-04 11:07"),
    ]
    planned = [
        PLAN,
        plan(51, 7, 100, "2026-05-04 10:00", "2026-05-04 11:00"),
        plan(52, 9, 100, "2026-05-04 14:00", "2026-05-04 15:00"),
        plan(53, 7, 300, "2026-05-04 16:00", "2026-05-04 17:00"),
    ]
    resolutions = [resolve("SUBSTITUTE_CARER:i52:v3", "dismiss")]
    expected = run(punches, planned, resolutions)
    shuffler = random.Random(4)
    for _ in range(5):
        shuffler.shuffle(punches)
        shuffler.shuffle(planned)
        assert run(punches, planned, resolutions) == expected


def test_missing_company_rules_are_refused() -> None:
    """A punch of a company without rules raises a ValueError naming the company."""
    with pytest.raises(ValueError, match=r"\[2\]"):
        run([punch(1, 7, 100, "arrival", "2026-05-04 09:00", company=2)])


def test_naive_datetimes_are_refused() -> None:
    """Times must be aware: a naive punch time is refused at construction."""
    with pytest.raises(ValueError, match="timezone-aware"):
        PunchIn(1, 1, 7, 100, "arrival", datetime(2026, 5, 4, 9, 0))


def test_two_different_records_with_one_id_are_refused() -> None:
    """Two different punches sharing id 1 are a loading bug, reported as such."""
    with pytest.raises(ValueError, match="share id 1"):
        reconcile(
            RULES,
            [
                punch(1, 7, 100, "arrival", "2026-05-04 09:00"),
                punch(1, 7, 100, "arrival", "2026-05-04 09:01"),
            ],
            [],
            [],
            at("2026-05-05 00:00"),
        )


def test_set_times_needs_its_times() -> None:
    """A set_times resolution without start and end is refused."""
    with pytest.raises(ValueError, match="set_times"):
        ResolutionIn("NO_PUNCH:i50", "set_times", {})


def test_planned_ending_before_it_starts_is_refused() -> None:
    """A planned intervention that ends before it starts is refused at construction."""
    with pytest.raises(ValueError, match="ends before"):
        PlannedIn(1, 1, 100, 7, at("2026-05-04 10:00"), at("2026-05-04 09:00"))


def test_rules_refuse_an_unknown_time_zone() -> None:
    """An unknown time zone name is refused with the name in the message."""
    with pytest.raises(ValueError, match="Mars/Olympus"):
        CompanyRules(timezone="Mars/Olympus")


def test_visit_in_progress_is_not_realised() -> None:
    """An arrival at 9:00 with no departure yet (now 9:30) matches but is not exported."""
    result = run([punch(1, 7, 100, "arrival", "2026-05-04 09:00")], [PLAN], now="2026-05-04 09:30")
    assert [m.planned_id for m in result.matches] == [50]
    assert result.realised[50].status == "planned"


def test_dismissed_missing_departure_takes_the_planned_end() -> None:
    """MISSING_DEPARTURE dismissed: the missing end is the planned 10:00, so 9:00-10:00 (60)."""
    result = run(
        [punch(1, 7, 100, "arrival", "2026-05-04 09:00")],
        [PLAN],
        [resolve("MISSING_DEPARTURE:v1", "dismiss")],
        now="2026-05-05 09:00",
    )
    assert (result.realised[50].status, result.realised[50].realised_minutes) == ("realised", 60)


def test_link_resolution_on_a_foreign_key_is_ignored() -> None:
    """A link resolution on a key reconciliation does not make changes nothing."""
    odd = resolve("CODE_BRUTE_FORCE:+33100000000", "link_to_intervention", planned_id=50)
    assert run([], [PLAN], [odd]) == run([], [PLAN])
