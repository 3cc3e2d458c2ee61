"""Matching visits to planned interventions, and the anomalies that come out of it.

SPEC.md section 5: per carer and local day, each planned intervention gets at most one visit,
total overlap is maximised, ties are broken deterministically, and one visit over back-to-back
interventions of the same client and carer covers all of them, cut at the planned boundaries.

The matching runs in phases, each an exact optimum (:mod:`reconciliation.assignment`) over small
independent groups, and each phase only takes what earlier phases left:

1. **own** — per (company, carer, client, day): a carer's visits at a known client against that
   carer's interventions at that client. Then, on the following day, a visit that runs past the
   end of its intervention covers the back-to-back interventions that continue it after midnight
   (**carried_over**: a night split at 00:00 for Sunday or holiday rates stays one visit).
2. **substitute** — per (company, client, day): visits still unmatched against interventions of
   *other* carers at that client still unmatched (SUBSTITUTE_CARER). The planned carer's own
   visits always come first, which is how other carers' planning is seen: the day's input holds
   every intervention at the clients the carer visited.
3. **unknown_client** — per (company, carer, day): visits whose client is unknown against what is
   left of the carer's own interventions; their caller anomaly stays open.

Groups in phases 1 and 2 only involve one client, which keeps what a carer-day depends on small
(see :mod:`reconciliation.scope`). Forced links from coordinators (**linked**) are taken out of
all phases first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter

from reconciliation.assignment import Candidate, best_matching
from reconciliation.model import (
    AnomalyCode,
    AnomalyOut,
    CarerDay,
    CompanyRules,
    MatchHow,
    PlannedIn,
    PunchIn,
    Visit,
    VisitMatch,
    anomaly_key,
    punch_anomaly,
    severity_of,
)
from reconciliation.rounding import realised_span, whole_minutes
from reconciliation.scope import day_of
from reconciliation.visits import visit_finding

_SECOND = timedelta(seconds=1)


@dataclass(slots=True)
class Matching:
    """Which planned interventions each visit covers (in time order) and how they were matched."""

    chains: dict[str, list[PlannedIn]] = field(default_factory=dict)
    how: dict[int, MatchHow] = field(default_factory=dict)
    visit_of: dict[int, str] = field(default_factory=dict)
    planned_day: dict[int, date] = field(default_factory=dict)
    owners: dict[int, CarerDay] = field(default_factory=dict)
    # Realised span under the company rule, per planned id, computed once for OVERTIME.
    automatic: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)

    def take(
        self, visit_key: str, planned: PlannedIn, how: MatchHow, *, before: bool = False
    ) -> None:
        chain = self.chains.setdefault(visit_key, [])
        if before:
            chain.insert(0, planned)
        else:
            chain.append(planned)
        self.how[planned.id] = how
        self.visit_of[planned.id] = visit_key

    def owner(self, planned: PlannedIn) -> CarerDay:
        return self.owners[planned.id]


def assign(
    visits: Iterable[Visit],
    planned: Iterable[PlannedIn],
    rules_by_company: Mapping[int, CompanyRules],
    forced: Mapping[str, int],
) -> Matching:
    """Match visits to planned interventions; ``forced`` maps a visit key to a linked planned id."""
    result = Matching()
    by_id: dict[int, PlannedIn] = {}
    planned_day = result.planned_day
    owners = result.owners
    # Planned starts repeat (the same slots every day for many carers): one zone conversion
    # per distinct (start, company), not per intervention.
    days: dict[tuple[datetime, int], date] = {}
    # Each phase's groups, indexed in one pass over the planning (insertion order is kept,
    # and each group is sorted where it is solved).
    own_planned: dict[tuple[int, int, int | None, date], list[PlannedIn]] = defaultdict(list)
    client_planned: dict[tuple[int, int | None, date], list[PlannedIn]] = defaultdict(list)
    carer_planned: dict[tuple[int, int, date], list[PlannedIn]] = defaultdict(list)
    for item in planned:
        company = item.company_id
        by_id[item.id] = item
        day = days.get((item.start, company))
        if day is None:
            day = days[(item.start, company)] = day_of(item.start, rules_by_company[company].tz)
        planned_day[item.id] = day
        owners[item.id] = CarerDay(company, item.carer_id, day)
        own_planned[(company, item.carer_id, item.client_id, day)].append(item)
        client_planned[(company, item.client_id, day)].append(item)
        carer_planned[(company, item.carer_id, day)].append(item)
    visit_list = list(visits)
    by_key = {v.key: v for v in visit_list}
    for visit_key, planned_id in sorted(forced.items()):
        result.take(visit_key, by_id[planned_id], "linked")
    following, preceding = _back_to_back(by_id.values())
    chains = result.chains
    visit_of = result.visit_of
    free_visits = [v for v in visit_list if v.key not in chains] if chains else visit_list

    # Phase 1: own visits at a known client.
    own_visits: dict[tuple[int, int, int | None, date], list[Visit]] = defaultdict(list)
    unknown_visits: dict[tuple[int, int, date], list[Visit]] = defaultdict(list)
    for visit in free_visits:
        if visit.client_id is not None:
            own_visits[(visit.company_id, visit.carer_id, visit.client_id, visit.day)].append(visit)
        else:
            unknown_visits[(visit.company_id, visit.carer_id, visit.day)].append(visit)
    own_keys: list[str] = []
    for key, group in own_visits.items():
        candidates = _left(own_planned.get(key), visit_of)
        if candidates:
            window = rules_by_company[key[0]].match_window
            own_keys += _phase(result, group, candidates, window, "own", _always)
    _extend(result, own_keys, by_key, following, preceding)
    _carry_over(result, own_keys, by_key, following)

    # Phase 2: substitutes, per client.
    left_visits: dict[tuple[int, int | None, date], list[Visit]] = defaultdict(list)
    for visit in free_visits:
        if visit.client_id is not None and visit.key not in chains:
            left_visits[(visit.company_id, visit.client_id, visit.day)].append(visit)
    substitute_keys: list[str] = []
    for key2, group in left_visits.items():
        candidates = _left(client_planned.get(key2), visit_of)
        if candidates:
            window = rules_by_company[key2[0]].match_window
            substitute_keys += _phase(result, group, candidates, window, "substitute", _other_carer)
    _extend(result, substitute_keys, by_key, following, preceding)

    # Phase 3: visits with an unknown client, against the carer's own leftovers.
    if unknown_visits:
        unknown_keys: list[str] = []
        for key3, group in unknown_visits.items():
            candidates = _left(carer_planned.get(key3), visit_of)
            if candidates:
                window = rules_by_company[key3[0]].match_window
                unknown_keys += _phase(result, group, candidates, window, "unknown_client", _always)
        _extend(result, unknown_keys, by_key, following, preceding)
    return result


def _left(group: list[PlannedIn] | None, visit_of: Mapping[int, str]) -> list[PlannedIn]:
    """The interventions of ``group`` that no earlier phase matched, in their order."""
    if not group:
        return []
    return [item for item in group if item.id not in visit_of]


def _always(visit: Visit, planned: PlannedIn) -> bool:
    return True


def _other_carer(visit: Visit, planned: PlannedIn) -> bool:
    return visit.carer_id != planned.carer_id


def eligible(visit: Visit, planned: PlannedIn, window: timedelta) -> bool:
    """The match rule: the visit overlaps the intervention, or starts within the window of it.

    A visit without a real span (open, missing its arrival, an absence report) is the instant of
    its one punch, which overlaps an intervention when it falls inside it.
    """
    if visit.closed and visit.end is not None:
        overlaps = visit.start < planned.end and planned.start < visit.end
    else:
        overlaps = planned.start <= visit.start <= planned.end
    return overlaps or abs(planned.start - visit.start) <= window


def overlap_seconds(visit: Visit, planned: PlannedIn) -> int:
    if not visit.closed or visit.end is None:
        return 0
    span = min(visit.end, planned.end) - max(visit.start, planned.start)
    return max(0, span // _SECOND)


def _phase(
    result: Matching,
    visits: list[Visit],
    planned: list[PlannedIn],
    window: timedelta,
    how: MatchHow,
    allowed: Callable[[Visit, PlannedIn], bool],
) -> list[str]:
    """Solve one group exactly; candidates are listed in the documented preference order."""
    if len(visits) == 1 and len(planned) == 1:
        # By far the most common group: one visit, one intervention.
        if allowed(visits[0], planned[0]) and eligible(visits[0], planned[0], window):
            result.take(visits[0].key, planned[0], how)
            return [visits[0].key]
        return []
    visits = sorted(visits, key=_visit_order)
    ordered_planned = sorted(planned, key=_planned_order)
    # eligible() and overlap_seconds(), inlined: this loop runs for every pair of every group.
    check = allowed is not _always
    candidates = []
    for i, v in enumerate(visits):
        start = v.start
        end = v.end if v.arrival_punch_id is not None and v.departure_punch_id is not None else None
        for j, p in enumerate(ordered_planned):
            if check and not allowed(v, p):
                continue
            distance = abs(p.start - start)
            if end is not None:
                if not (start < p.end and p.start < end) and distance > window:
                    continue
                gain = max(0, (min(end, p.end) - max(start, p.start)) // _SECOND)
            else:
                if not (p.start <= start <= p.end) and distance > window:
                    continue
                gain = 0
            candidates.append(Candidate(i, j, gain, distance // _SECOND))
    matched = []
    for cand in best_matching(candidates):
        visit = visits[cand.left]
        result.take(visit.key, ordered_planned[cand.right], how)
        matched.append(visit.key)
    return matched


_visit_order = attrgetter("start", "key")
_planned_order = attrgetter("start", "id")


def _back_to_back(
    planned: Iterable[PlannedIn],
) -> tuple[dict[int, PlannedIn], dict[int, PlannedIn]]:
    """Links each intervention to the one that starts exactly when it ends (same client and carer).

    When several could follow (two interventions at the same start), the one with the lowest id
    continues the chain, and a follower has at most one predecessor, so chains are simple paths.
    """
    items = list(planned)
    starting: dict[tuple[int, int, int, datetime], PlannedIn] = {}
    for item in items:
        key = (item.company_id, item.carer_id, item.client_id, item.start)
        known = starting.get(key)
        if known is None or item.id < known.id:
            starting[key] = item
    preceding: dict[int, PlannedIn] = {}
    successor: dict[int, PlannedIn] = {}
    for item in items:
        nxt = starting.get((item.company_id, item.carer_id, item.client_id, item.end))
        if nxt is None or nxt.id == item.id:
            continue
        known = preceding.get(nxt.id)
        if known is None or (item.start, item.id) < (known.start, known.id):
            preceding[nxt.id] = item
            successor[nxt.id] = nxt
    following = {before.id: successor[after_id] for after_id, before in preceding.items()}
    return following, preceding


def _extend(
    result: Matching,
    visit_keys: list[str],
    by_key: Mapping[str, Visit],
    following: Mapping[int, PlannedIn],
    preceding: Mapping[int, PlannedIn],
) -> None:
    """Let each matched visit cover the free back-to-back neighbours it overlaps, the same day.

    When two visits could take the same neighbour, the larger overlap wins, then the earlier visit.
    Repeated until nothing changes, so a long visit covers a whole chain. Only visits whose chain
    grew can offer anything new in the next round: every other visit's neighbours are where they
    were, and each one it offered was taken. The winner of a neighbour is the least rank, so the
    order in which visits are looked at does not matter.
    """
    chains = result.chains
    keys = [
        key
        for key in set(visit_keys)
        if by_key[key].closed
        and (chains[key][0].id in preceding or chains[key][-1].id in following)
    ]
    visit_of = result.visit_of
    planned_day = result.planned_day
    while keys:
        offers: dict[int, tuple[tuple[int, datetime, str], str, bool, PlannedIn]] = {}
        for key in keys:
            visit = by_key[key]
            chain = chains[key]
            day = planned_day[chain[0].id]
            sides = ((preceding.get(chain[0].id), True), (following.get(chain[-1].id), False))
            for neighbour, before in sides:
                if (
                    neighbour is None
                    or neighbour.id in visit_of
                    or planned_day.get(neighbour.id) != day
                ):
                    continue
                gain = overlap_seconds(visit, neighbour)
                if gain <= 0:
                    continue
                rank = (-gain, visit.start, key)
                if neighbour.id not in offers or rank < offers[neighbour.id][0]:
                    offers[neighbour.id] = (rank, key, before, neighbour)
        if not offers:
            return
        grown: set[str] = set()
        for planned_id in sorted(offers):
            _, key, before, neighbour = offers[planned_id]
            how = result.how[chains[key][0].id]
            result.take(key, neighbour, how, before=before)
            grown.add(key)
        keys = list(grown)


def _carry_over(
    result: Matching,
    own_keys: list[str],
    by_key: Mapping[str, Visit],
    following: Mapping[int, PlannedIn],
) -> None:
    """A visit still running when its chain goes on past midnight covers the next day's part.

    Only the next day, and only for visits matched in the own phase, so that a day's result
    depends on the day before it and never on a longer history.
    """
    chains = result.chains
    # Only a chain whose last intervention has a follower can carry over.
    for key in sorted({k for k in own_keys if chains[k][-1].id in following}):
        visit = by_key[key]
        if not visit.closed or visit.end is None:
            continue
        chain = chains[key]
        next_day = visit.day + timedelta(days=1)
        nxt = following.get(chain[-1].id)
        while (
            nxt is not None
            and nxt.id not in result.visit_of
            and result.planned_day.get(nxt.id) == next_day
            and visit.end > nxt.start
        ):
            result.take(key, nxt, "carried_over")
            nxt = following.get(nxt.id)


def visit_matches(result: Matching, by_key: Mapping[str, Visit]) -> list[VisitMatch]:
    """Cut each visit at the planned boundaries between the interventions it covers."""
    matches = []
    how = result.how
    owners = result.owners
    for key, chain in result.chains.items():
        visit = by_key[key]
        if len(chain) == 1:  # the usual case: the whole visit, as punched
            item = chain[0]
            matches.append(
                VisitMatch(
                    key,
                    item.id,
                    visit.start if visit.arrival_punch_id is not None else None,
                    visit.end if visit.departure_punch_id is not None else None,
                    how[item.id],
                    owners[item.id],
                )
            )
            continue
        last = len(chain) - 1
        for index, item in enumerate(chain):
            if index > 0:
                start: datetime | None = item.start
            else:
                start = visit.start if visit.arrival_punch_id is not None else None
            if index < last:
                end: datetime | None = item.end
            else:
                end = visit.end if visit.departure_punch_id is not None else None
            matches.append(
                VisitMatch(key, item.id, start, end, result.how[item.id], result.owner(item))
            )
    return matches


# --- anomalies ------------------------------------------------------------------------------


def _planned_finding(
    code: AnomalyCode,
    item: PlannedIn,
    owner: CarerDay,
    at: datetime,
    detail: Mapping[str, object],
    visit: Visit | None = None,
) -> AnomalyOut:
    return AnomalyOut(
        key=anomaly_key(code, planned_id=item.id, visit_key=visit.key if visit else None),
        code=code,
        severity=severity_of(code),
        company_id=item.company_id,
        carer_id=visit.carer_id if visit else item.carer_id,
        client_id=item.client_id,
        planned_id=item.id,
        punch_id=(visit.arrival_punch_id or visit.departure_punch_id) if visit else None,
        visit_key=visit.key if visit else None,
        at=at,
        detail=detail,
        about_planned_ids=(item.id,),
        owner=owner,
    )


def matching_anomalies(
    visits: Iterable[Visit],
    planned: Iterable[PlannedIn],
    result: Matching,
    matches: Iterable[VisitMatch],
    rules_by_company: Mapping[int, CompanyRules],
    now: datetime,
) -> list[AnomalyOut]:
    """UNPLANNED_VISIT, SUBSTITUTE_CARER, NO_PUNCH, LATE_START_ALERT, LATE_ARRIVAL,
    EARLY_DEPARTURE and OVERTIME.

    OVERTIME compares realised minutes (after the company's rule and rounding) with the planned
    minutes plus ``departure_tolerance_min``. LATE_START_ALERT is raised from ``late_alert_min``
    after the start until NO_PUNCH takes over at the end plus the departure tolerance; it stops
    being raised as soon as a visit is matched.
    """
    findings: list[AnomalyOut] = []
    by_key = {v.key: v for v in visits}
    for key, visit in by_key.items():
        if key not in result.chains:
            findings.append(visit_finding(AnomalyCode.UNPLANNED_VISIT, visit, visit.start, {}))
    match_of = {m.planned_id: m for m in matches}
    owners = result.owners
    for item in planned:
        rules = rules_by_company[item.company_id]
        owner = owners[item.id]
        match = match_of.get(item.id)
        if match is None:
            if now > item.end + rules.departure_tolerance:
                findings.append(_planned_finding(AnomalyCode.NO_PUNCH, item, owner, item.start, {}))
            elif now >= item.start + rules.late_alert:
                findings.append(
                    _planned_finding(
                        AnomalyCode.LATE_START_ALERT,
                        item,
                        owner,
                        item.start,
                        {"late_alert_min": rules.late_alert_min},
                    )
                )
            continue
        visit = by_key[match.visit_key]
        if match.how == "substitute":
            findings.append(
                _planned_finding(
                    AnomalyCode.SUBSTITUTE_CARER,
                    item,
                    owner,
                    visit.start,
                    {"planned_carer_id": item.carer_id},
                    visit,
                )
            )
        if visit.absence_report:
            continue
        if match.start is not None and match.start > item.start + rules.arrival_tolerance:
            findings.append(
                _planned_finding(
                    AnomalyCode.LATE_ARRIVAL,
                    item,
                    owner,
                    match.start,
                    {"minutes_late": whole_minutes(item.start, match.start)},
                    visit,
                )
            )
        if match.end is not None and match.end < item.end - rules.departure_tolerance:
            findings.append(
                _planned_finding(
                    AnomalyCode.EARLY_DEPARTURE,
                    item,
                    owner,
                    match.end,
                    {"minutes_early": whole_minutes(match.end, item.end)},
                    visit,
                )
            )
        if match.start is not None and match.end is not None:
            start, end = realised_span(item.start, item.end, match.start, match.end, rules)
            result.automatic[item.id] = (start, end)
            realised = whole_minutes(start, end)
            planned_minutes = whole_minutes(item.start, item.end)
            if realised > planned_minutes + rules.departure_tolerance_min:
                findings.append(
                    _planned_finding(
                        AnomalyCode.OVERTIME,
                        item,
                        owner,
                        match.end,
                        {"realised_minutes": realised, "planned_minutes": planned_minutes},
                        visit,
                    )
                )
    return findings


def punch_anomalies(
    visits: Iterable[Visit],
    punches_by_id: Mapping[int, PunchIn],
    result: Matching,
) -> list[AnomalyOut]:
    """UNKNOWN_CALLER_NUMBER, CALLER_ID_WITHHELD, LOCATION_UNVERIFIED and CLIENT_ABSENT.

    One per punch of a visit (ignored duplicates are not reported twice). A punch whose client is
    unknown gets CALLER_ID_WITHHELD when no number was presented and UNKNOWN_CALLER_NUMBER
    otherwise, also when the call-back menu's "not listed" was chosen: either way nothing ties the
    punch to a client, and the visit must not be exported until a coordinator says whose it is.
    """
    findings: list[AnomalyOut] = []
    for visit in visits:
        about: tuple[int, ...] | None = None
        for punch_id in (visit.arrival_punch_id, visit.departure_punch_id):
            if punch_id is None:
                continue
            punch = punches_by_id[punch_id]
            if (
                punch.client_id is not None
                and punch.status != "client_absent"
                and (punch.source != "callback" or punch.location_verified)
            ):
                continue  # nothing to say about most punches
            if about is None:
                about = tuple(p.id for p in result.chains.get(visit.key, ()))
            codes: list[tuple[AnomalyCode, dict[str, object]]] = []
            if punch.client_id is None:
                if punch.caller_withheld:
                    codes.append((AnomalyCode.CALLER_ID_WITHHELD, {"source": punch.source}))
                else:
                    reason = "unknown_number" if punch.caller_unknown else "client_not_identified"
                    codes.append(
                        (
                            AnomalyCode.UNKNOWN_CALLER_NUMBER,
                            {"source": punch.source, "reason": reason},
                        )
                    )
            if (
                punch.source == "callback"
                and punch.client_has_landline
                and not punch.location_verified
            ):
                codes.append((AnomalyCode.LOCATION_UNVERIFIED, {}))
            if punch.status == "client_absent":
                codes.append((AnomalyCode.CLIENT_ABSENT, {}))
            for code, detail in codes:
                findings.append(
                    punch_anomaly(
                        code,
                        punch,
                        owner=visit.owner,
                        detail=detail,
                        visit_key=visit.key,
                        about_planned_ids=about,
                    )
                )
    return findings
