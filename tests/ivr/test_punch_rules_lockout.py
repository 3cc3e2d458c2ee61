"""The lock-out rule (SPEC.md section 3, "Lock-out") in ivr.punch_rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ivr.punch_rules import (
    CodeFailure,
    failure_starts_lockout,
    is_locked_out,
    locked_until,
)

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=UTC)
CALLER = "0145678912"


def failures(*minutes: float, reason: str = "unknown_carer_code") -> list[CodeFailure]:
    return [CodeFailure(T0 + timedelta(minutes=m), reason) for m in minutes]


def test_five_failures_in_an_hour_do_not_lock() -> None:
    """ "More than 5": the fifth failure is still allowed."""
    assert not is_locked_out(CALLER, failures(0, 1, 2, 3, 4), T0 + timedelta(minutes=5))


def test_sixth_failure_within_the_hour_locks() -> None:
    """The sixth failure within an hour locks the number."""
    assert is_locked_out(CALLER, failures(0, 10, 20, 30, 40, 50), T0 + timedelta(minutes=50))


def test_failures_spread_over_more_than_an_hour_do_not_lock() -> None:
    """Six failures are not enough when the first left the hour before the sixth came."""
    assert not is_locked_out(CALLER, failures(0, 15, 30, 45, 55, 60), T0 + timedelta(minutes=60))


def test_lock_lasts_an_hour_from_the_failure_that_triggered_it() -> None:
    """Locked until one hour after the sixth failure, free after."""
    six = failures(0, 1, 2, 3, 4, 5)
    assert locked_until(six, T0 + timedelta(minutes=30)) == T0 + timedelta(minutes=65)
    assert is_locked_out(CALLER, six, T0 + timedelta(minutes=64, seconds=59))
    assert not is_locked_out(CALLER, six, T0 + timedelta(minutes=65))


def test_timeouts_do_not_count_toward_a_lockout() -> None:
    """A carer who keys nothing is not guessing codes: silence never locks a client's line."""
    silent = failures(0, 1, 2, 3, 4, 5, 6, 7, reason="timeout")
    assert not is_locked_out(CALLER, silent, T0 + timedelta(minutes=8))


def test_withheld_number_is_never_locked_out() -> None:
    """Every caller without a number shares the same "number": it is never locked by number."""
    many = failures(0, 1, 2, 3, 4, 5, 6)
    assert not is_locked_out("anonymous", many, T0 + timedelta(minutes=7))
    assert not is_locked_out("", many, T0 + timedelta(minutes=7))


def test_failures_recorded_after_now_are_ignored() -> None:
    """The answer at a given time never depends on rows written later."""
    assert not is_locked_out(CALLER, failures(0, 1, 2, 3, 4, 30), T0 + timedelta(minutes=10))


def test_only_the_crossing_failure_starts_a_lockout() -> None:
    """CODE_BRUTE_FORCE is raised once: by the sixth failure, not by a seventh."""
    earlier = failures(0, 1, 2, 3, 4)
    sixth = CodeFailure(T0 + timedelta(minutes=5), "wrong_length")
    seventh = CodeFailure(T0 + timedelta(minutes=6), "wrong_length")
    assert failure_starts_lockout(CALLER, earlier, sixth)
    assert not failure_starts_lockout(CALLER, [*earlier, sixth], seventh)
    assert not failure_starts_lockout(CALLER, earlier[:4], sixth)
