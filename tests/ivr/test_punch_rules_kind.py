"""The punch-kind rule (SPEC.md section 3, step 6) and its scope (ivr.punch_rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivr.punch_rules import (
    LatestPunch,
    flipped_kind,
    punch_kind,
    punch_scope,
)
from telegestion.phones import is_withheld

NOW = datetime(2025, 3, 30, 7, 0, tzinfo=UTC)


def test_first_punch_is_an_arrival() -> None:
    """With no earlier punch in scope the carer is arriving."""
    assert punch_kind(None, NOW) == "arrival"


def test_open_arrival_is_closed_by_a_departure() -> None:
    """An arrival two hours ago, still the latest punch, makes this call a departure."""
    assert punch_kind(LatestPunch("arrival", NOW - timedelta(hours=2)), NOW) == "departure"


def test_arrival_exactly_14_hours_old_is_still_open() -> None:
    """ "In the last 14 hours" includes the fourteenth hour itself."""
    assert punch_kind(LatestPunch("arrival", NOW - timedelta(hours=14)), NOW) == "departure"


def test_arrival_older_than_14_hours_is_forgotten() -> None:
    """A forgotten departure does not turn the next day's arrival into a departure."""
    old = LatestPunch("arrival", NOW - timedelta(hours=14, seconds=1))
    assert punch_kind(old, NOW) == "arrival"


def test_after_a_departure_comes_an_arrival() -> None:
    """A closed visit is followed by a new arrival."""
    assert punch_kind(LatestPunch("departure", NOW - timedelta(minutes=5)), NOW) == "arrival"


def test_absence_report_opens_no_visit() -> None:
    """An arrival reported as client absent was never a visit: the next punch is an arrival."""
    absent = LatestPunch("arrival", NOW - timedelta(minutes=20), client_absent=True)
    assert punch_kind(absent, NOW) == "arrival"


def test_arrival_from_a_clock_slightly_ahead_is_open() -> None:
    """Another worker's clock a few seconds ahead must not hide an open arrival."""
    assert punch_kind(LatestPunch("arrival", NOW + timedelta(seconds=3)), NOW) == "departure"


def test_rule_holds_across_a_daylight_saving_change() -> None:
    """Times compared in UTC: the night the clocks go forward is 13 real hours, still open."""
    evening = datetime(2025, 3, 29, 19, 0, tzinfo=UTC)  # 20:00 in Paris, before the change
    morning = datetime(2025, 3, 30, 8, 0, tzinfo=UTC)  # 10:00 in Paris, after it
    assert punch_kind(LatestPunch("arrival", evening), morning) == "departure"


def test_correction_flips_the_kind() -> None:
    """Key 2 turns an arrival into a departure and back."""
    assert flipped_kind("arrival") == "departure"
    assert flipped_kind("departure") == "arrival"


def test_scope_with_known_client_ignores_the_phone() -> None:
    """A client's two landlines are one place: punches from either pair up."""
    scope = punch_scope(11, 101, "+33145678912")
    assert scope.matches(11, 101, "+33298765432")
    assert not scope.matches(11, 102, "+33145678912")
    assert not scope.matches(12, 101, "+33145678912")


def test_scope_with_unknown_client_is_the_caller_number() -> None:
    """Without a client, an arrival and a departure pair up only from the same phone."""
    scope = punch_scope(11, None, "+33387654321")
    assert scope.matches(11, None, "+33387654321")
    assert not scope.matches(11, None, "+33311111111")
    assert not scope.matches(11, 101, "+33387654321")


def test_scope_of_a_withheld_number_pairs_with_other_withheld_punches() -> None:
    """Every withheld placeholder is the same "no number", and never a real number."""
    scope = punch_scope(11, None, "anonymous")
    assert scope.matches(11, None, "")
    assert scope.matches(11, None, None)
    assert not scope.matches(11, None, "+33387654321")


@pytest.mark.parametrize(
    "raw", ["", "  ", "anonymous", "Anonymous", "UNKNOWN", "restricted", "Private", "unavailable"]
)
def test_placeholders_are_withheld(raw: str) -> None:
    """Empty numbers and the placeholders trunks send, in any case, are withheld."""
    assert is_withheld(raw)


def test_a_real_number_is_not_withheld() -> None:
    """A number present with a restricted presentation still identifies the line."""
    assert not is_withheld("0145678912")
