"""Local days, and what must be loaded so that one carer-day reconciles like a batch.

SPEC.md section 5 asks for two paths with one result: incremental (each new punch reconciles its
carer's day at once) and batch (any range, any time). Every rule looks a bounded distance away,
so everything a carer-day owns depends only on a bounded neighbourhood of it; this module names
that neighbourhood, so the database layer loads exactly it.

Two reaches, with M = ``max_visit_hours``: the *pairing reach* A = M + 10 min (how far a punch
can change which visits exist: a pairing spans at most M, a duplicate looks 10 min back) and the
*overlap reach* B = 2·M + 20 min (how far a punch can change whether two visits overlap).

The contract, for a target carer-day T = (company K, carer C, day D):

1. punches of C in K with ``at`` in [min(start of D-1 - A, start of D - B),
   max(end of D+1 + A, end of D + B));
2. planned interventions of C in K starting in [start of D-1, end of D+1);
3. for every client X named by 1 or 2: all punches at X (any carer) in the window of 1, and all
   planned interventions at X (any carer) in the window of 2;
4. for every other carer who punched at one of those clients: their punches in
   [start of D - B, end of D + B) (whether a substitute's visit overlaps another of theirs);
5. every current resolution about a loaded punch, visit or planned intervention (see
   :func:`reconciliation.model.parse_anomaly_key`), and every link/create resolution whose target
   is a loaded planned intervention; then both sides of each such link (the target planned
   intervention, and the linked visit's carer's punches within M + B of each punch its anomaly
   key names, loaded or not), and the resolutions about what that added.

Why D-1 and D+1: a visit of D-1 may carry a back-to-back intervention over midnight into D, and
a visit of D may carry one into D+1 (see :mod:`reconciliation.matching`).

Feed all of it to :func:`reconciliation.engine.reconcile` and keep ``result.for_owners({T})``.
Loading more never changes what T owns, so several targets can share one load and one run
(:func:`gather` does exactly this). Windows are half-open, in UTC; days are local to the company.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from reconciliation.model import (
    DUPLICATE_WINDOW,
    CarerDay,
    CompanyRules,
    PlannedIn,
    PunchIn,
    ResolutionIn,
    Visit,
    parse_anomaly_key,
)

ONE_DAY = timedelta(days=1)
_UTC = ZoneInfo("UTC")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """ZoneInfo objects are cached by zoneinfo too; this only saves the lookup by name."""
    return ZoneInfo(name)


def _tz(tz: tzinfo | str) -> tzinfo:
    return zone(tz) if isinstance(tz, str) else tz


def day_of(at: datetime, tz: tzinfo | str) -> date:
    """The local day of an instant: visits and interventions belong to the day they start on."""
    return at.astimezone(_tz(tz)).date()


def day_bounds(day: date, tz: tzinfo | str) -> tuple[datetime, datetime]:
    """UTC instants of the first moment of ``day`` and of the next day (23 h or 25 h on DST days).

    A local midnight that does not exist (a zone that changes clocks at 00:00) maps to the first
    instant that does, because zoneinfo reads a missing wall time with the offset before the jump.
    """
    zone_ = _tz(tz)
    start = datetime.combine(day, time(0), tzinfo=zone_).astimezone(ZoneInfo("UTC"))
    end = datetime.combine(day + ONE_DAY, time(0), tzinfo=zone_).astimezone(ZoneInfo("UTC"))
    return start, end


def pairing_reach(rules: CompanyRules) -> timedelta:
    """A: a pairing spans at most M, and whether a punch counts looks 10 minutes back."""
    return rules.max_visit + DUPLICATE_WINDOW


def overlap_reach(rules: CompanyRules) -> timedelta:
    """B: a visit lasts at most M and a visit overlapping it starts at most M earlier."""
    return 2 * rules.max_visit + 2 * DUPLICATE_WINDOW


def margin(rules: CompanyRules) -> timedelta:
    """M + B: how far around each punch named by a link its carer's punches are loaded (point 5):
    the linked visit starts at most M before that punch, and its overlaps reach B further."""
    return rules.max_visit + overlap_reach(rules)


@dataclass(frozen=True, slots=True)
class LoadWindow:
    """Half-open UTC windows: punches by ``at``, planned interventions by ``start``.

    ``punches_*`` serves the target carers and the clients they touch (points 1 and 3 of the
    module contract), ``other_carers_*`` the other carers met there (point 4).
    """

    punches_from: datetime
    punches_to: datetime
    other_carers_from: datetime
    other_carers_to: datetime
    planned_from: datetime
    planned_to: datetime


def range_window(first: date, last: date, rules: CompanyRules) -> LoadWindow:
    """What a batch over local days ``first``..``last`` of one company loads (for all carers)."""
    tz = rules.tz
    before, _ = day_bounds(first - ONE_DAY, tz)
    _, after = day_bounds(last + ONE_DAY, tz)
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    pairing, overlap = pairing_reach(rules), overlap_reach(rules)
    return LoadWindow(
        punches_from=min(before - pairing, start - overlap),
        punches_to=max(after + pairing, end + overlap),
        other_carers_from=start - overlap,
        other_carers_to=end + overlap,
        planned_from=before,
        planned_to=after,
    )


def carer_day_range(target: CarerDay, rules: CompanyRules) -> LoadWindow:
    """Windows of the module contract for one carer-day."""
    return range_window(target.day, target.day, rules)


class InputSource(Protocol):
    """The queries :func:`gather` needs; the database layer implements them (windows half-open)."""

    def punches_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> Iterable[PunchIn]: ...

    def punches_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> Iterable[PunchIn]: ...

    def planned_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> Iterable[PlannedIn]: ...

    def planned_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> Iterable[PlannedIn]: ...

    def punches_by_id(self, ids: Iterable[int]) -> Iterable[PunchIn]: ...

    def planned_by_id(self, ids: Iterable[int]) -> Iterable[PlannedIn]: ...

    def resolutions_about(
        self, punch_ids: Iterable[int], planned_ids: Iterable[int]
    ) -> Iterable[ResolutionIn]:
        """Current resolutions whose anomaly key names one of these punches, visits (by first punch)
        or planned interventions, and link/create resolutions targeting one of these planned."""
        ...


@dataclass(frozen=True, slots=True)
class Inputs:
    punches: tuple[PunchIn, ...]
    planned: tuple[PlannedIn, ...]
    resolutions: tuple[ResolutionIn, ...]


def gather(
    targets: Iterable[CarerDay],
    rules_by_company: Mapping[int, CompanyRules],
    source: InputSource,
) -> Inputs:
    """Load the union of the contract's neighbourhoods of ``targets`` (module docstring)."""
    punches: dict[int, PunchIn] = {}
    planned: dict[int, PlannedIn] = {}
    for target in sorted(set(targets)):
        rules = rules_by_company[target.company_id]
        window = carer_day_range(target, rules)
        company = target.company_id
        own = list(
            source.punches_of_carer(
                company, target.carer_id, window.punches_from, window.punches_to
            )
        )
        own_planned = list(
            source.planned_of_carer(
                company, target.carer_id, window.planned_from, window.planned_to
            )
        )
        clients = {p.client_id for p in own if p.client_id is not None}
        clients |= {p.client_id for p in own_planned}
        punches.update((p.id, p) for p in own)
        planned.update((p.id, p) for p in own_planned)
        other_carers: set[int] = set()
        for client in sorted(clients):
            for punch in source.punches_at_client(
                company, client, window.punches_from, window.punches_to
            ):
                punches[punch.id] = punch
                other_carers.add(punch.carer_id)
            planned.update(
                (p.id, p)
                for p in source.planned_at_client(
                    company, client, window.planned_from, window.planned_to
                )
            )
        other_carers.discard(target.carer_id)
        for carer in sorted(other_carers):
            punches.update(
                (p.id, p)
                for p in source.punches_of_carer(
                    company, carer, window.other_carers_from, window.other_carers_to
                )
            )
    resolutions = {
        _resolution_id(r): r for r in source.resolutions_about(sorted(punches), sorted(planned))
    }
    new_punches, new_planned = _link_sides(
        resolutions.values(), punches, planned, rules_by_company, source
    )
    if new_punches or new_planned:
        punches.update(new_punches)
        planned.update(new_planned)
        resolutions.update(
            (_resolution_id(r), r)
            for r in source.resolutions_about(sorted(new_punches), sorted(new_planned))
        )
    return Inputs(tuple(punches.values()), tuple(planned.values()), tuple(resolutions.values()))


def _resolution_id(resolution: ResolutionIn) -> tuple[str, int, str]:
    return (resolution.anomaly_key, resolution.seq, resolution.action)


def _key_punch_ids(key: str) -> tuple[int, ...]:
    try:
        return parse_anomaly_key(key).punch_ids
    except ValueError:
        return ()  # a key from elsewhere (the IVR's CODE_BRUTE_FORCE) names no punch


def _link_sides(
    resolutions: Iterable[ResolutionIn],
    punches: Mapping[int, PunchIn],
    planned: Mapping[int, PlannedIn],
    rules_by_company: Mapping[int, CompanyRules],
    source: InputSource,
) -> tuple[dict[int, PunchIn], dict[int, PlannedIn]]:
    """The far side of each link: its target, and the linked visit with its carer's surroundings.

    The surroundings are loaded even when the linked punch itself is already there: it may sit at
    the edge of the window, with the rest of its visit just outside.
    """
    missing_planned: set[int] = set()
    anchor_ids: set[int] = set()
    for resolution in resolutions:
        target = resolution.link_target
        if target is None:
            continue
        if target not in planned:
            missing_planned.add(target)
        anchor_ids.update(_key_punch_ids(resolution.anomaly_key))
    new_planned = {p.id: p for p in source.planned_by_id(sorted(missing_planned))}
    anchors = [punches[i] for i in sorted(anchor_ids) if i in punches]
    anchors += source.punches_by_id(sorted(i for i in anchor_ids if i not in punches))
    new_punches: dict[int, PunchIn] = {}
    for anchor in anchors:
        extra = margin(rules_by_company[anchor.company_id])
        new_punches.update(
            (p.id, p)
            for p in source.punches_of_carer(
                anchor.company_id, anchor.carer_id, anchor.at - extra, anchor.at + extra
            )
            if p.id not in punches
        )
        if anchor.id not in punches:
            new_punches[anchor.id] = anchor
    return new_punches, new_planned


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def refresh_after_punch(
    punch: PunchIn, rules_by_company: Mapping[int, CompanyRules], source: InputSource
) -> frozenset[CarerDay]:
    """Carer-days whose outputs a new, removed or changed punch can change.

    Works whether or not ``punch`` is stored: the carer's visits are built with and without it
    (every stored punch with the same id is left out), and only what differs is followed. For a
    moved or edited punch, call it with the old and with the new version, both carrying the
    punch's real id: the two differences then cover old state against new. What is followed,
    from the changed visits:

    - the carer's own days: of each changed visit, of each visit at another client whose overlap
      with a changed one may have appeared or gone, of the punch (a DUPLICATE_PUNCH it is or
      causes), and the day after a visit that runs past midnight (a carry-over);
    - at the client of each changed visit, on its day: every carer planned or punching there
      (matching, substitutes, unplanned visits), and the days before and after when an
      intervention there crosses midnight (carry-overs in and out);
    - at the client of each visit whose overlap may have changed: the carers planned there that
      day (a substitute's blocking anomaly holds back their intervention);
    - the owners of interventions these visits are linked to by a coordinator.
    """
    # visits imports this module for day_of; importing it here keeps the dependency one-way.
    from reconciliation.visits import build_visits

    rules = rules_by_company[punch.company_id]
    tz, at, company, carer = rules.tz, punch.at, punch.company_id, punch.carer_id
    pairing = pairing_reach(rules)
    reach = 2 * pairing + rules.max_visit
    others = [
        p
        for p in source.punches_of_carer(company, carer, at - reach, at + reach)
        if p.id != punch.id
    ]
    single = {company: rules}
    before = set(build_visits(others, single, at)[0])
    after = set(build_visits([*others, punch], single, at)[0])
    changed = before ^ after
    closed_changed = [v for v in changed if v.closed]
    partners = {
        w
        for w in before | after
        if w.closed
        and w not in changed
        and any(_overlap(w, v) and w.client_id != v.client_id for v in closed_changed)
    }
    days = {v.day for v in changed | partners}
    days |= {day_of(at, tz), day_of(at + DUPLICATE_WINDOW, tz)}
    # An unchanged open visit may become superseded (MISSING_DEPARTURE at once) or stop being so.
    days |= {v.day for v in before | after if abs(v.start - at) <= pairing}
    days |= {v.day + ONE_DAY for v in changed | partners if _crosses_midnight(v, tz)}
    targets = {CarerDay(company, carer, day) for day in days}
    pairing_days = {(v.client_id, v.day) for v in changed if v.client_id is not None}
    for client, day in sorted(pairing_days):
        targets |= _around_client(company, client, day, rules, source)
    for visit in sorted(partners, key=lambda v: v.key):
        if visit.client_id is not None:
            start, end = day_bounds(visit.day, tz)
            targets |= {
                CarerDay(company, p.carer_id, visit.day)
                for p in source.planned_at_client(company, visit.client_id, start, end)
            }
    punch_ids = sorted({pid for v in changed | partners for pid in v.punch_ids})
    links = [r.link_target for r in source.resolutions_about(punch_ids, [])]
    for linked in source.planned_by_id(sorted({t for t in links if t is not None})):
        linked_rules = rules_by_company[linked.company_id]
        linked_day = day_of(linked.start, linked_rules.tz)
        targets.add(CarerDay(linked.company_id, linked.carer_id, linked_day))
    return frozenset(targets)


def _overlap(a: Visit, b: Visit) -> bool:
    assert a.end is not None and b.end is not None
    return a.start < b.end and b.start < a.end


def _crosses_midnight(visit: Visit, tz: tzinfo) -> bool:
    _, end_of_day = day_bounds(visit.day, tz)
    return visit.end is not None and visit.end > end_of_day


def _around_client(
    company: int, client: int, day: date, rules: CompanyRules, source: InputSource
) -> set[CarerDay]:
    """Carer-days whose matching at ``client`` on ``day`` (and its carry-overs) can change."""
    tz, pairing = rules.tz, pairing_reach(rules)
    start, end = day_bounds(day, tz)
    planned = list(source.planned_at_client(company, client, start, end))
    found = {CarerDay(company, p.carer_id, day) for p in planned}
    found |= {
        CarerDay(company, p.carer_id, day)
        for p in source.punches_at_client(company, client, start - pairing, end + pairing)
    }
    if any(p.end >= end for p in planned):
        # A carry-over into the next day changes what is left there for substitutes.
        after_start, after_end = day_bounds(day + ONE_DAY, tz)
        found |= {
            CarerDay(company, p.carer_id, day + ONE_DAY)
            for p in source.planned_at_client(company, client, after_start, after_end)
        }
        found |= {
            CarerDay(company, p.carer_id, day + ONE_DAY)
            for p in source.punches_at_client(
                company, client, after_start - pairing, after_end + pairing
            )
        }
    before_start, before_end = day_bounds(day - ONE_DAY, tz)
    if any(
        p.end >= start for p in source.planned_at_client(company, client, before_start, before_end)
    ):
        found |= {
            CarerDay(company, p.carer_id, day - ONE_DAY)
            for p in source.punches_at_client(
                company, client, before_start - pairing, before_end + pairing
            )
        }
    return found


def refresh_after_planned(
    planned: PlannedIn, rules_by_company: Mapping[int, CompanyRules], source: InputSource
) -> frozenset[CarerDay]:
    """Carer-days a new, changed or removed planned intervention can change.

    Call it with the old and with the new version when a planned intervention moves. The day
    before is included because a visit of that day may carry over into this intervention, the
    day after because this intervention may carry a visit over into its successor.
    """
    rules = rules_by_company[planned.company_id]
    tz = rules.tz
    day = day_of(planned.start, tz)
    first, last = day - ONE_DAY, day + ONE_DAY
    span_from, _ = day_bounds(first, tz)
    _, span_to = day_bounds(last, tz)
    pairing = pairing_reach(rules)
    company = planned.company_id
    carers = {planned.carer_id}
    carers |= {
        p.carer_id for p in source.planned_at_client(company, planned.client_id, span_from, span_to)
    }
    carers |= {
        p.carer_id
        for p in source.punches_at_client(
            company, planned.client_id, span_from - pairing, span_to + pairing
        )
    }
    return frozenset(CarerDay(company, carer, d) for carer in carers for d in _days(first, last))


def refresh_after_resolution(
    resolution: ResolutionIn,
    rules_by_company: Mapping[int, CompanyRules],
    source: InputSource,
) -> frozenset[CarerDay]:
    """Carer-days a new resolution can change, except one thing the caller adds itself.

    The caller must add the owners of the VisitMatch rows it stores for the anomaly's visit: a
    visit linked earlier to an intervention far away carries its new times there.
    """
    try:
        subjects = parse_anomaly_key(resolution.anomaly_key)
    except ValueError:
        return frozenset()  # not an anomaly reconciliation raises
    targets: set[CarerDay] = set()
    for punch in source.punches_by_id(subjects.punch_ids):
        targets |= refresh_after_punch(punch, rules_by_company, source)
    planned_ids = [p for p in (subjects.planned_id, resolution.link_target) if p is not None]
    for planned in source.planned_by_id(planned_ids):
        targets |= refresh_after_planned(planned, rules_by_company, source)
    return frozenset(targets)
