"""Pairing punches into visits, per carer (SPEC.md section 5, "Visits").

A carer's punches at one client form a stream, read in time order, the way the IVR decides the
punch kind (SPEC.md section 3 step 6: the latest punch at this client decides). Each rule only
looks a bounded time back or forward (10 minutes for a duplicate, ``max_visit_hours`` for a
pairing), which is what lets one carer-day be reconciled alone with the same result as a batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from operator import attrgetter

from reconciliation.model import (
    DUPLICATE_WINDOW,
    AnomalyCode,
    AnomalyOut,
    CarerDay,
    CompanyRules,
    PunchIn,
    Visit,
    anomaly_key,
    punch_anomaly,
    severity_of,
    visit_key_for,
)
from reconciliation.scope import day_of

StreamKey = tuple[int, int, int | None]
_punch_order = attrgetter("at", "id")


def visit_finding(
    code: AnomalyCode, visit: Visit, at: datetime, detail: Mapping[str, object]
) -> AnomalyOut:
    """An anomaly about a visit; the engine adds the planned interventions once matching is done."""
    return AnomalyOut(
        key=anomaly_key(code, visit_key=visit.key),
        code=code,
        severity=severity_of(code),
        company_id=visit.company_id,
        carer_id=visit.carer_id,
        client_id=visit.client_id,
        planned_id=None,
        punch_id=visit.arrival_punch_id or visit.departure_punch_id,
        visit_key=visit.key,
        at=at,
        detail=detail,
        about_planned_ids=(),
        owner=visit.owner,
    )


def build_visits(
    punches: Iterable[PunchIn], rules_by_company: Mapping[int, CompanyRules], now: datetime
) -> tuple[list[Visit], list[AnomalyOut]]:
    """All visits of the given punches and the anomalies that need nothing but the punches.

    Raises DUPLICATE_PUNCH, MISSING_ARRIVAL, MISSING_DEPARTURE, TOO_SHORT and OVERLAPPING_VISITS.
    Client-absent reports do not enter the streams: a report is not an arrival to close, and a
    real arrival right after it (the client opened the door after all) must not be taken for a
    duplicate.
    """
    streams: dict[StreamKey, list[PunchIn]] = defaultdict(list)
    visits: list[Visit] = []
    findings: list[AnomalyOut] = []
    for punch in punches:
        if punch.status == "client_absent":
            rules = rules_by_company[punch.company_id]
            visits.append(_absence_report(punch, rules))
        else:
            streams[(punch.company_id, punch.carer_id, punch.client_id)].append(punch)
    for (company_id, _carer, _client), stream in streams.items():
        rules = rules_by_company[company_id]
        stream.sort(key=_punch_order)
        kept = _drop_duplicates(stream, rules, findings)
        _pair(kept, rules, now, visits, findings)
    by_carer: dict[tuple[int, int], list[Visit]] = defaultdict(list)
    for visit in visits:
        by_carer[(visit.company_id, visit.carer_id)].append(visit)
        if visit.closed and visit.end is not None:
            rules = rules_by_company[visit.company_id]
            length = visit.end - visit.start
            if length < rules.min_visit:
                findings.append(
                    visit_finding(
                        AnomalyCode.TOO_SHORT,
                        visit,
                        visit.start,
                        {
                            "seconds": int(length.total_seconds()),
                            "min_minutes": rules.min_visit_min,
                        },
                    )
                )
    for carer_visits in by_carer.values():
        findings.extend(_overlaps(carer_visits))
    return visits, findings


def _absence_report(punch: PunchIn, rules: CompanyRules) -> Visit:
    arrival = punch.id if punch.kind == "arrival" else None
    return Visit(
        key=visit_key_for(punch.id),
        company_id=punch.company_id,
        carer_id=punch.carer_id,
        client_id=punch.client_id,
        arrival_punch_id=arrival,
        departure_punch_id=None if arrival is not None else punch.id,
        start=punch.at,
        end=punch.at,
        day=day_of(punch.at, rules.tz),
        absence_report=True,
    )


def _drop_duplicates(
    stream: list[PunchIn], rules: CompanyRules, findings: list[AnomalyOut]
) -> list[PunchIn]:
    """Keep a punch unless the punch just before it is of the same kind and at most 10 min older.

    Comparing with the immediate predecessor (kept or not) rather than with the last kept punch
    keeps the rule local: whether a punch counts never depends on a chain of earlier decisions.
    """
    tz = rules.tz
    kept: list[PunchIn] = []
    previous: PunchIn | None = None
    for punch in stream:
        if (
            previous is not None
            and previous.kind == punch.kind
            and punch.at - previous.at <= DUPLICATE_WINDOW
        ):
            findings.append(
                punch_anomaly(
                    AnomalyCode.DUPLICATE_PUNCH,
                    punch,
                    owner=CarerDay(punch.company_id, punch.carer_id, day_of(punch.at, tz)),
                    detail={"repeats_punch": previous.id},
                )
            )
        else:
            kept.append(punch)
        previous = punch
    return kept


def _pair(
    kept: list[PunchIn],
    rules: CompanyRules,
    now: datetime,
    visits: list[Visit],
    findings: list[AnomalyOut],
) -> None:
    """An arrival pairs with the next kept punch when it is a departure within max_visit_hours.

    An arrival left unpaired gets MISSING_DEPARTURE once ``now`` is more than max_visit_hours
    past it, or at once when another arrival at the same client follows within that time: that
    one can never be closed any more.
    """
    tz = rules.tz
    limit = rules.max_visit
    i = 0
    while i < len(kept):
        punch = kept[i]
        following = kept[i + 1] if i + 1 < len(kept) else None
        if punch.kind == "arrival":
            if (
                following is not None
                and following.kind == "departure"
                and following.at - punch.at <= limit
            ):
                visits.append(_visit(punch, following, punch.at, following.at, tz))
                i += 2
                continue
            visit = _visit(punch, None, punch.at, None, tz)
            visits.append(visit)
            superseded = following is not None and following.at - punch.at <= limit
            if superseded or now - punch.at > limit:
                findings.append(
                    visit_finding(
                        AnomalyCode.MISSING_DEPARTURE,
                        visit,
                        punch.at,
                        {"max_visit_hours": rules.max_visit_hours, "superseded": superseded},
                    )
                )
        else:
            visit = _visit(None, punch, punch.at, punch.at, tz)
            visits.append(visit)
            findings.append(visit_finding(AnomalyCode.MISSING_ARRIVAL, visit, punch.at, {}))
        i += 1


def _visit(
    arrival: PunchIn | None,
    departure: PunchIn | None,
    start: datetime,
    end: datetime | None,
    tz: tzinfo,
) -> Visit:
    first = arrival if arrival is not None else departure
    assert first is not None
    return Visit(
        visit_key_for(first.id),
        first.company_id,
        first.carer_id,
        first.client_id,
        arrival.id if arrival is not None else None,
        departure.id if departure is not None else None,
        start,
        end,
        start.astimezone(tz).date(),  # day_of with the zone object at hand
    )


def _overlaps(carer_visits: list[Visit]) -> list[AnomalyOut]:
    """OVERLAPPING_VISITS on each closed visit that overlaps one at another client.

    Only closed visits take part: an open visit's end is unknown, and its real problem is the
    missing departure. Two unknown clients are not known to differ, so they are not flagged.
    A sweep over the visits sorted by start keeps this near-linear.
    """
    closed = sorted((v for v in carer_visits if v.closed), key=lambda v: (v.start, v.key))
    others: dict[str, set[str]] = defaultdict(set)
    by_key = {v.key: v for v in closed}
    active: list[Visit] = []
    for visit in closed:
        active = [a for a in active if a.end is not None and a.end > visit.start]
        for earlier in active:
            assert earlier.end is not None and visit.end is not None
            if earlier.client_id != visit.client_id and min(earlier.end, visit.end) > visit.start:
                others[earlier.key].add(visit.key)
                others[visit.key].add(earlier.key)
        active.append(visit)
    return [
        visit_finding(
            AnomalyCode.OVERLAPPING_VISITS,
            by_key[key],
            by_key[key].start,
            {"with_visits": sorted(keys)},
        )
        for key, keys in others.items()
    ]
