"""Local wall-clock times of a company, turned into instants.

Planning files and paper timesheets are written in local time. Twice a year a local time does
not exist (the spring gap) or happens twice (the autumn fold); guessing would shift a carer's
pay by an hour, so such a time without an explicit offset is refused with a clear reason.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class LocalTimeError(ValueError):
    """A time that cannot be placed on the time line; the message says why."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name, or LocalTimeError."""
    if not name or name != name.strip() or "\\" in name or name.startswith("/"):
        raise LocalTimeError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LocalTimeError(f"unknown time zone {name!r}") from None


def localize(naive: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Attach ``tz`` to a wall-clock time, refusing times in a DST gap or fold."""
    early = naive.replace(tzinfo=tz, fold=0)
    late = naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    stamp = naive.isoformat(sep=" ", timespec="minutes")
    round_trip = early.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        raise LocalTimeError(
            f"{stamp} does not exist in {tz.key} (clocks go forward); give an explicit offset"
        )
    raise LocalTimeError(
        f"{stamp} happens twice in {tz.key} (clocks go back); give an explicit offset"
    )


def parse_instant(text: str, tz_name: str) -> dt.datetime:
    """An ISO 8601 date-time, local to ``tz_name`` unless it carries an offset, as aware UTC."""
    raw = text.strip()
    if not raw:
        raise LocalTimeError("empty date-time")
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise LocalTimeError(f"{raw!r} is not an ISO 8601 date-time") from None
    if len(raw) <= 10:
        raise LocalTimeError(f"{raw!r} has no time of day")
    if parsed.tzinfo is None:
        parsed = localize(parsed, zone(tz_name))
    return parsed.astimezone(dt.UTC)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise LocalTimeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
