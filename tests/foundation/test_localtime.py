"""Local times of a company: DST gaps and folds are refused, everything else round-trips."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telegestion.localtime import LocalTimeError, parse_instant, zone

PARIS = ZoneInfo("Europe/Paris")


def test_winter_and_summer_offsets() -> None:
    """Paris is UTC+1 in winter and UTC+2 in summer."""
    assert parse_instant("2026-01-15T08:00", "Europe/Paris") == dt.datetime(
        2026, 1, 15, 7, tzinfo=dt.UTC
    )
    assert parse_instant("2026-07-15 08:00", "Europe/Paris") == dt.datetime(
        2026, 7, 15, 6, tzinfo=dt.UTC
    )


def test_spring_gap_is_refused() -> None:
    """02:30 on 29 March 2026 does not exist in Paris."""
    with pytest.raises(LocalTimeError, match="does not exist"):
        parse_instant("2026-03-29T02:30", "Europe/Paris")


def test_autumn_fold_is_refused() -> None:
    """02:30 on 25 October 2026 happens twice in Paris."""
    with pytest.raises(LocalTimeError, match="happens twice"):
        parse_instant("2026-10-25T02:30", "Europe/Paris")


@pytest.mark.parametrize(
    ("text", "expected_utc"),
    [
        ("2026-10-25T02:30+02:00", dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)),
        ("2026-10-25T02:30+01:00", dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)),
        ("2026-03-29T01:00Z", dt.datetime(2026, 3, 29, 1, 0, tzinfo=dt.UTC)),
    ],
)
def test_an_explicit_offset_settles_it(text: str, expected_utc: dt.datetime) -> None:
    """With an offset, a time in the fold names one instant."""
    assert parse_instant(text, "Europe/Paris") == expected_utc


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "2026-13-01T08:00", "2026-11-23", "23/11/2026 08:00"]
)
def test_not_a_date_time(text: str) -> None:
    """Text that is not an ISO 8601 date-time is refused."""
    with pytest.raises(LocalTimeError):
        parse_instant(text, "Europe/Paris")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "Europe/Paris "]
)
def test_unknown_time_zones(name: str) -> None:
    """Unknown or path-like time zone names are refused."""
    with pytest.raises(LocalTimeError):
        zone(name)


ZONES = st.sampled_from(
    ["Europe/Paris", "Indian/Reunion", "America/Guadeloupe", "America/New_York"]
)


@given(
    naive=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    tz_name=ZONES,
)
def test_local_time_round_trip(naive: dt.datetime, tz_name: str) -> None:
    """A local time is accepted iff it names exactly one instant, and it round-trips."""
    tz = ZoneInfo(tz_name)
    instants = {naive.replace(tzinfo=tz, fold=f).astimezone(dt.UTC) for f in (0, 1)}
    exists = any(i.astimezone(tz).replace(tzinfo=None) == naive for i in instants)
    unique = len(instants) == 1 and exists
    text = naive.isoformat(timespec="minutes")
    if unique:
        got = parse_instant(text, tz_name)
        assert got.tzinfo == dt.UTC
        assert got.astimezone(tz).replace(tzinfo=None) == naive
    else:
        with pytest.raises(LocalTimeError):
            parse_instant(text, tz_name)


@given(
    instant=st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2035, 12, 31),
        timezones=st.just(dt.UTC),
    ).map(lambda d: d.replace(second=0, microsecond=0)),
)
def test_offset_form_of_any_instant_is_that_instant(instant: dt.datetime) -> None:
    """Any instant written with its Paris offset parses back to itself, folds included."""
    text = instant.astimezone(PARIS).isoformat(timespec="minutes")
    assert parse_instant(text, "Europe/Paris") == instant
