"""Which visits the call-back menu offers, and in what order (SPEC.md section 4, step 3).

A carer punching from a mobile has no client landline to name the client, so the call-back
offers a short menu instead: the visits the carer must close first (an arrival still open:
pressing its key records the departure), then the planned interventions around now. The menu
must stay short to be heard to the end, so it keeps one line per client and at most nine
lines (keys 1 to 9; ``0`` is "not listed").

Pure: the database layer fetches the carer's planned interventions and latest punch per client
and calls :func:`visit_choices` in its transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ivr.effects import ClientLabel, VisitChoice
from ivr.punch_rules import OPEN_ARRIVAL_WINDOW, LatestPunch, punch_kind

#: A planned intervention is "around now" when it overlaps now plus or minus this: a carer
#: arrives early or late, and calls for the departure after the planned end. The same two
#: hours as reconciliation's default match window, so what the menu offers is what a visit
#: would match.
AROUND_NOW = dt.timedelta(hours=2)
#: Keys 1 to 9: a menu longer than that is not listened to anyway.
MAX_CHOICES = 9
#: How far back the database layer must look for punches: an arrival older than the open
#: window is not open, and a departure older than this cannot have closed a visit around now.
PUNCH_LOOKBACK = max(OPEN_ARRIVAL_WINDOW, AROUND_NOW * 2)


@dataclass(frozen=True)
class PlannedVisit:
    """A planned intervention of the carer (UTC instants) and the label of its client."""

    client_id: int
    start: dt.datetime
    end: dt.datetime
    client: ClientLabel


@dataclass(frozen=True)
class LatestAtClient:
    """The carer's latest punch at one client, and the label of that client."""

    client_id: int
    latest: LatestPunch
    client: ClientLabel


def is_around(visit: PlannedVisit, now: dt.datetime) -> bool:
    """Whether a planned intervention belongs in a menu heard at ``now``."""
    return visit.start <= now + AROUND_NOW and visit.end >= now - AROUND_NOW


def visit_choices(
    planned: Iterable[PlannedVisit],
    latest: Iterable[LatestAtClient],
    now: dt.datetime,
    timezone: str,
) -> tuple[VisitChoice, ...]:
    """The menu: open visits by arrival time, then planned interventions around now by start.

    An open visit is one the punch-kind rule would close (``ivr.punch_rules.punch_kind``), so
    pressing its key gives a departure. A planned intervention is left out when its client is
    already listed, or when the carer's latest punch there is a departure that can only have
    closed that visit (at most two hours before its start, or later).
    """
    tz = ZoneInfo(timezone)
    by_client = {entry.client_id: entry for entry in latest}
    choices: list[VisitChoice] = []
    listed: set[int] = set()
    open_visits = sorted(
        (e for e in by_client.values() if punch_kind(e.latest, now) == "departure"),
        key=lambda e: (e.latest.at, e.client_id),
    )
    for entry in open_visits:
        choices.append(_choice(entry.client_id, "open", entry.latest.at, entry.client, tz))
        listed.add(entry.client_id)
    for visit in sorted(planned, key=lambda v: (v.start, v.client_id)):
        if visit.client_id in listed or not is_around(visit, now):
            continue
        last = by_client.get(visit.client_id)
        if (
            last is not None
            and last.latest.kind == "departure"
            and last.latest.at >= visit.start - AROUND_NOW
        ):
            continue
        choices.append(_choice(visit.client_id, "planned", visit.start, visit.client, tz))
        listed.add(visit.client_id)
    return tuple(choices[:MAX_CHOICES])


def _choice(
    client_id: int, kind: str, at: dt.datetime, client: ClientLabel, tz: ZoneInfo
) -> VisitChoice:
    local = at.astimezone(tz)
    return VisitChoice(
        client_id,
        "open" if kind == "open" else "planned",
        local.hour,
        local.minute,
        client,
    )
