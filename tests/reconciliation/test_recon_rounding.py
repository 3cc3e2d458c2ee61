"""Realised times: the keep-planned rule, rounding steps and directions, whole minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recon_factory import PARIS, at

from reconciliation.model import CompanyRules
from reconciliation.rounding import realised_span, round_instant, whole_minutes

PLANNED = (at("2026-05-04 09:00"), at("2026-05-04 10:00"))


def span(rules: CompanyRules, arrival: str, departure: str) -> tuple[datetime, datetime]:
    return realised_span(*PLANNED, at(arrival), at(departure), rules)


def test_keep_planned_within_tolerance_uses_planned_times() -> None:
    """Punches 8 min early and 11 min late (tolerance 15) give the planned 9:00-10:00."""
    start, end = span(CompanyRules(), "2026-05-04 08:52", "2026-05-04 10:11")
    assert (start, end) == PLANNED
    assert whole_minutes(start, end) == 60


def test_keep_planned_outside_tolerance_uses_punched_times() -> None:
    """Punches 20 min early and 20 min late are kept as punched: 8:40-10:20 is 100 minutes."""
    start, end = span(CompanyRules(), "2026-05-04 08:40", "2026-05-04 10:20")
    assert (start, end) == (at("2026-05-04 08:40"), at("2026-05-04 10:20"))
    assert whole_minutes(start, end) == 100


def test_tolerance_bound_is_inclusive() -> None:
    """A punch exactly 15 min off (tolerance 15) still counts as within tolerance."""
    start, end = span(CompanyRules(), "2026-05-04 09:15", "2026-05-04 09:45")
    assert (start, end) == PLANNED


def test_each_side_is_judged_on_its_own_tolerance() -> None:
    """Arrival tolerance 5 and departure tolerance 30: 9:07 stays, 10:25 becomes 10:00."""
    rules = CompanyRules(arrival_tolerance_min=5, departure_tolerance_min=30)
    start, end = span(rules, "2026-05-04 09:07", "2026-05-04 10:25")
    assert (start, end) == (at("2026-05-04 09:07"), at("2026-05-04 10:00"))
    assert whole_minutes(start, end) == 53


def test_punched_rule_keeps_punches_even_within_tolerance() -> None:
    """With the 'punched' rule 8:52-10:11 stays 8:52-10:11, i.e. 79 minutes."""
    start, end = span(CompanyRules(rounding_rule="punched"), "2026-05-04 08:52", "2026-05-04 10:11")
    assert whole_minutes(start, end) == 79


@pytest.mark.parametrize(
    ("direction", "expected_start", "expected_end", "minutes"),
    [
        # 8:52 is 7 after 8:45, 8 before 9:00 -> 8:45; 10:08 is 8 after 10:00, 7 before 10:15.
        ("nearest", "08:45", "10:15", 90),
        # In the company's favour the start moves later (9:00) and the end earlier (10:00).
        ("company", "09:00", "10:00", 60),
        # In the carer's favour the start moves earlier (8:45) and the end later (10:15).
        ("carer", "08:45", "10:15", 90),
    ],
)
def test_rounding_directions_on_a_15_minute_step(
    direction: str, expected_start: str, expected_end: str, minutes: int
) -> None:
    """Punched 8:52-10:08 rounded to 15 minutes in each direction."""
    rules = CompanyRules(
        rounding_rule="punched",
        rounding_step_min=15,
        rounding_direction=direction,  # type: ignore[arg-type]
    )
    start, end = span(rules, "2026-05-04 08:52", "2026-05-04 10:08")
    assert start == at(f"2026-05-04 {expected_start}")
    assert end == at(f"2026-05-04 {expected_end}")
    assert whole_minutes(start, end) == minutes


@pytest.mark.parametrize(
    ("step", "local", "expected"),
    [
        (5, "09:02:29", "09:00"),  # 2.5 min is half of 5: 2:29 is below half -> down
        (5, "09:02:30", "09:05"),  # exactly half rounds up (later)
        (10, "09:14", "09:10"),
        (10, "09:15", "09:20"),
        (15, "09:07:30", "09:15"),
        (30, "09:44", "09:30"),
        (30, "09:45", "10:00"),
        (30, "10:00", "10:00"),  # already on the grid: unchanged
    ],
)
def test_nearest_rounding_on_each_step(step: int, local: str, expected: str) -> None:
    """Nearest rounding on the 5/10/15/30 grids, halves going up."""
    rounded = round_instant(at(f"2026-05-04 {local}"), step, "nearest", PARIS)
    assert rounded == at(f"2026-05-04 {expected}")


def test_step_zero_means_no_rounding() -> None:
    """rounding_step_min 0 leaves seconds as punched."""
    instant = at("2026-05-04 09:07:13")
    assert round_instant(instant, 0, "up", PARIS) == instant


def test_rounding_follows_the_local_grid_in_a_quarter_hour_zone() -> None:
    """Nepal is UTC+05:45: local 09:10 rounds to local 09:00 (03:15 UTC), not to 03:30 UTC."""
    nepal = ZoneInfo("Asia/Kathmandu")
    instant = datetime(2026, 5, 4, 3, 25, tzinfo=UTC)  # 09:10 local
    assert round_instant(instant, 30, "nearest", nepal) == datetime(2026, 5, 4, 3, 15, tzinfo=UTC)


def test_rounding_on_the_spring_forward_day() -> None:
    """2026-03-29 03:07 (+02:00, just after the jump) rounds down to 03:00 local, 01:00 UTC."""
    instant = at("2026-03-29 03:07")
    assert round_instant(instant, 15, "nearest", PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_company_rounding_never_makes_a_negative_duration() -> None:
    """9:05-9:20 rounded to 30 in the company's favour gives 9:30-9:00, clamped to 0 minutes."""
    rules = CompanyRules(
        rounding_rule="punched", rounding_step_min=30, rounding_direction="company"
    )
    start, end = span(rules, "2026-05-04 09:05", "2026-05-04 09:20")
    assert start == end == at("2026-05-04 09:30")
    assert whole_minutes(start, end) == 0


def test_missing_punch_side_takes_the_planned_time() -> None:
    """With no departure punch, the end is the planned end (10:00): 9:20-10:00 is 40 minutes."""
    start, end = realised_span(*PLANNED, at("2026-05-04 09:20"), None, CompanyRules())
    assert (start, end) == (at("2026-05-04 09:20"), PLANNED[1])


def test_accept_punched_overrides_the_keep_planned_rule() -> None:
    """keep_planned=False keeps 8:52-10:11 although the company rule would snap to planned."""
    start, end = realised_span(
        *PLANNED, at("2026-05-04 08:52"), at("2026-05-04 10:11"), CompanyRules(), keep_planned=False
    )
    assert whole_minutes(start, end) == 79


def test_whole_minutes_counts_started_minutes_down() -> None:
    """9:00:00 to 9:59:59 is 59 whole minutes, not 60."""
    start = at("2026-05-04 09:00")
    assert whole_minutes(start, start + timedelta(minutes=59, seconds=59)) == 59


def test_whole_minutes_over_the_autumn_night_counts_real_time() -> None:
    """22:00 on 2026-10-24 to 07:00 on 2026-10-25 in Paris is 10 real hours: 600 minutes."""
    assert whole_minutes(at("2026-10-24 22:00"), at("2026-10-25 07:00")) == 600


@pytest.mark.parametrize("bad", [{"rounding_step_min": 7}, {"rounding_direction": "up"}])
def test_company_rules_refuse_values_outside_the_spec(bad: dict[str, object]) -> None:
    """Steps other than 0/5/10/15/30 and unknown directions are refused with a message."""
    with pytest.raises(ValueError, match="rounding"):
        CompanyRules(**bad)  # type: ignore[arg-type]


def _epoch_grid(instant: datetime, step_min: int, mode: str, tz: ZoneInfo) -> datetime:
    """The rounding as first written: the local wall clock counted from the 1970 epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    micro = timedelta(microseconds=1)
    offset = (instant.astimezone(tz).utcoffset() or timedelta(0)) // micro
    local_us = (instant - epoch) // micro + offset
    step_us = step_min * 60_000_000
    down, rest = divmod(local_us, step_us)
    down *= step_us
    up = rest and (mode == "up" or (mode == "nearest" and 2 * rest >= step_us))
    return epoch + timedelta(microseconds=down + (step_us if up else 0) - offset)


@settings(max_examples=200, deadline=None)
@given(
    instant=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    step=st.sampled_from([5, 10, 15, 30, 7]),
    mode=st.sampled_from(["nearest", "up", "down"]),
    zone=st.sampled_from(["Europe/Paris", "Asia/Kathmandu", "Indian/Reunion", "America/St_Johns"]),
)
def test_rounding_on_the_time_of_day_equals_the_epoch_grid(
    instant: datetime, step: int, mode: str, zone: str
) -> None:
    """Rounding read from the local time of day lands where the epoch-counted grid does, in UTC."""
    rounded = round_instant(instant, step, mode, ZoneInfo(zone))  # type: ignore[arg-type]
    expected = _epoch_grid(instant, step, mode, ZoneInfo(zone))
    assert rounded == expected
    assert rounded.tzinfo is UTC
