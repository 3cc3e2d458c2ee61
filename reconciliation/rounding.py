"""How punched times become the realised times that are paid and billed (SPEC.md section 5).

Two steps, in this order: the company's rule (``keep_planned_within_tolerance`` replaces a punch
that is close enough to the plan by the planned time, so a carer who arrives at 8:58 for 9:00 is
not paid two extra minutes and a client is not billed them; ``punched`` keeps the punch), then
rounding to the company's step in the company's direction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from reconciliation.model import CompanyRules, RoundingDirection

RoundMode = Literal["nearest", "up", "down"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)
_MINUTES_A_DAY = 24 * 60


def round_instant(at: datetime, step_min: int, mode: RoundMode, tz: tzinfo) -> datetime:
    """Round on the local wall-clock grid (9:00, 9:15, ...), the grid people read.

    The grid is taken in local time because in a zone whose offset is not a multiple of the step
    (Nepal, +05:45, with a 10- or 30-minute step) a UTC grid would give times that fall between
    the marks of any clock on site. ``nearest`` rounds an exact half up (later), so that
    the result is deterministic. A step of 0 means no rounding.
    """
    if step_min <= 0:
        return at
    local = at.astimezone(tz)
    step_us = step_min * 60_000_000
    if _MINUTES_A_DAY % step_min == 0:
        # The company steps divide a day: the grid counted from local midnight is the grid
        # counted from the local epoch, and the local time of day is enough.
        rest = (
            ((local.hour * 60 + local.minute) % step_min) * 60 + local.second
        ) * 1_000_000 + local.microsecond
    else:
        offset = local.utcoffset() or timedelta(0)
        rest = ((at - _EPOCH + offset) // _MICRO) % step_us
    if rest == 0 or mode == "down":
        moved = -rest
    elif mode == "up" or 2 * rest >= step_us:
        moved = step_us - rest
    else:
        moved = -rest
    rounded = at + timedelta(microseconds=moved) if moved else at
    return rounded if rounded.tzinfo is UTC else rounded.astimezone(UTC)


def rounding_modes(direction: RoundingDirection) -> tuple[RoundMode, RoundMode]:
    """(start mode, end mode). In the company's favour a start moves later and an end earlier."""
    if direction == "company":
        return "up", "down"
    if direction == "carer":
        return "down", "up"
    return "nearest", "nearest"


def realised_span(
    planned_start: datetime,
    planned_end: datetime,
    punched_start: datetime | None,
    punched_end: datetime | None,
    rules: CompanyRules,
    *,
    keep_planned: bool | None = None,
) -> tuple[datetime, datetime]:
    """Realised start and end of one planned intervention from the punched part of its visit.

    A side with no punch (a visit with a missing arrival or departure that a coordinator let
    through) takes the planned time: the coordinator vouched for the visit, not for a time.
    ``keep_planned`` overrides the company rule (``accept_punched`` forces the punched times).
    An end that rounding pushes before the start is clamped to the start (zero minutes).
    """
    if keep_planned is None:
        keep_planned = rules.rounding_rule == "keep_planned_within_tolerance"
    start = planned_start if punched_start is None else punched_start
    end = planned_end if punched_end is None else punched_end
    if keep_planned:
        if punched_start is not None and abs(punched_start - planned_start) <= (
            rules.arrival_tolerance
        ):
            start = planned_start
        if punched_end is not None and abs(punched_end - planned_end) <= rules.departure_tolerance:
            end = planned_end
    if rules.rounding_step_min:
        start_mode, end_mode = rounding_modes(rules.rounding_direction)
        start = round_instant(start, rules.rounding_step_min, start_mode, rules.tz)
        end = round_instant(end, rules.rounding_step_min, end_mode, rules.tz)
    return start, max(start, end)


def whole_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes elapsed on the real timeline: a DST night is one hour shorter or longer."""
    return max(0, (end - start) // _MINUTE)
