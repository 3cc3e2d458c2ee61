"""One reconciliation run: punches and planning in, visits, matches, anomalies and realised out.

:func:`reconcile` is a pure function of its arguments. It sorts everything it reads, so the
result never depends on input order, and it keeps no state, so a re-run on the same inputs gives
the same result and the same anomaly keys (the database upserts on them).

Resolutions (the coordinator's decisions) are inputs too. The database keeps their audit trail;
here only the current one per anomaly key counts (highest ``seq``). A resolved anomaly is still
returned while the rules raise it, with its ``resolution`` set, so it stays resolved on every
re-run. What each action does:

- ``dismiss``: the anomaly no longer blocks; times are computed as usual.
- ``accept_punched``: the punched times stand, without the keep-planned-within-tolerance rule
  (rounding still applies).
- ``use_planned``: the planned times, as they are.
- ``set_times``: the given start and end, as they are. On an anomaly about a whole visit that
  covers back-to-back interventions, the given span is cut at the planned boundaries.
- ``link_to_intervention`` / ``create_intervention`` (``params["planned_id"]``): the anomaly's
  visit is matched to that intervention, outside the automatic matching, without
  SUBSTITUTE_CARER. The database creates the planned row for ``create_intervention`` first.
  When several links compete, for one visit or one intervention, the highest ``seq`` wins. The
  anomaly the link answered is kept in the result (resolved) even where the new match means
  the rules would no longer raise it, so the link stays visible and attached.
- ``mark_not_done``: the intervention's status becomes ``not_done``.

When several time-setting decisions apply to one intervention (``accept_punched``,
``use_planned``, ``set_times``, ``mark_not_done``), the latest (highest ``seq``) wins.

Export status of a planned intervention:

- ``realised`` when it has a visit and no open blocking anomaly is about it (or a coordinator
  gave its times with ``use_planned``/``set_times`` although no visit was punched); a visit
  still in progress (arrival, no departure, MISSING_DEPARTURE not yet due) is not realised;
- ``not_done`` when a coordinator marked it so; when it has no visit and its NO_PUNCH was
  resolved otherwise than by giving times (the coordinator confirmed the missed visit); and when
  its only visit is a client-absent report whose anomalies are all resolved without times being
  given (the carer came, the care was not given: the trip is the DB layer's payroll matter);
- ``planned`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from operator import attrgetter
from typing import TypeVar

from reconciliation.matching import (
    Matching,
    assign,
    matching_anomalies,
    punch_anomalies,
    visit_matches,
)
from reconciliation.model import (
    AnomalyCode,
    AnomalyOut,
    CompanyRules,
    PlannedIn,
    PunchIn,
    Realised,
    RealisedStatus,
    ResolutionIn,
    Result,
    Visit,
    VisitMatch,
    parse_anomaly_key,
    severity_of,
)
from reconciliation.rounding import realised_span, whole_minutes
from reconciliation.scope import (
    carer_day_range,
    day_bounds,
    day_of,
    gather,
    range_window,
    refresh_after_planned,
    refresh_after_punch,
    refresh_after_resolution,
)
from reconciliation.visits import build_visits

__all__ = [
    "carer_day_range",
    "day_bounds",
    "day_of",
    "gather",
    "range_window",
    "reconcile",
    "refresh_after_planned",
    "refresh_after_punch",
    "refresh_after_resolution",
]

_TIME_DECISIONS = frozenset({"accept_punched", "use_planned", "set_times", "mark_not_done"})


def reconcile(
    rules_by_company: Mapping[int, CompanyRules],
    punches: Iterable[PunchIn],
    planned: Iterable[PlannedIn],
    resolutions: Iterable[ResolutionIn],
    now: datetime,
) -> Result:
    """Reconcile what is given, as of ``now`` (an aware datetime: the rules never read a clock).

    Every company named by a punch or a planned intervention needs its rules. Outputs carry the
    carer-day that owns them; after an incremental run keep ``result.for_owners(targets)``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    punches_by_id = _unique(punches, "punch")
    planned_by_id = _unique(planned, "planned intervention")
    companies = {p.company_id for p in punches_by_id.values()}
    companies |= {p.company_id for p in planned_by_id.values()}
    missing = sorted(companies - set(rules_by_company))
    if missing:
        raise ValueError(f"no reconciliation rules for company ids {missing}")

    visits, findings = build_visits(punches_by_id.values(), rules_by_company, now)
    visits_by_key = {v.key: v for v in visits}
    visit_of_punch: dict[int, Visit] = {}
    for v in visits:
        if v.arrival_punch_id is not None:
            visit_of_punch[v.arrival_punch_id] = v
        if v.departure_punch_id is not None:
            visit_of_punch[v.departure_punch_id] = v
    current = _current(resolutions)
    forced, forced_by = _effective_links(current, visit_of_punch, visits_by_key, planned_by_id)

    matching = assign(visits, planned_by_id.values(), rules_by_company, forced)
    matches = visit_matches(matching, visits_by_key)
    anomalies = [_about_visit(a, matching) for a in findings]
    anomalies += punch_anomalies(visits, punches_by_id, matching)
    anomalies += matching_anomalies(
        visits, planned_by_id.values(), matching, matches, rules_by_company, now
    )
    raised = {a.key for a in anomalies}
    for key, resolution in sorted(forced_by.items()):
        if key not in raised:
            anomalies.append(_kept_link(key, resolution, visits_by_key, matching, planned_by_id))
    if current:
        anomalies = [
            replace(a, resolution=current[a.key].action) if a.key in current else a
            for a in anomalies
        ]

    realised = _realise(
        planned_by_id, visits_by_key, matching, matches, anomalies, current, rules_by_company
    )
    return Result(
        visits=tuple(sorted(visits, key=attrgetter("key"))),
        matches=tuple(sorted(matches, key=attrgetter("planned_id"))),
        anomalies=tuple(sorted(anomalies, key=attrgetter("key"))),
        realised={pid: realised[pid] for pid in sorted(realised)},
    )


_Record = TypeVar("_Record", PunchIn, PlannedIn)


def _unique(items: Iterable[_Record], what: str) -> dict[int, _Record]:
    by_id: dict[int, _Record] = {}
    for item in items:
        known = by_id.setdefault(item.id, item)
        if known is not item and known != item:
            raise ValueError(f"two different {what} records share id {item.id}")
    return by_id


def _current(resolutions: Iterable[ResolutionIn]) -> dict[str, ResolutionIn]:
    """The latest decision per anomaly key; ties on ``seq`` fall to a fixed order of actions."""
    current: dict[str, ResolutionIn] = {}
    for res in resolutions:
        known = current.get(res.anomaly_key)
        if known is None or (res.seq, res.action, repr(sorted(res.params.items(), key=str))) > (
            known.seq,
            known.action,
            repr(sorted(known.params.items(), key=str)),
        ):
            current[res.anomaly_key] = res
    return current


def _visit_of_key(
    key: str, visit_of_punch: Mapping[int, Visit], visits_by_key: Mapping[str, Visit]
) -> Visit | None:
    try:
        subjects = parse_anomaly_key(key)
    except ValueError:
        return None  # a key from elsewhere (the IVR's CODE_BRUTE_FORCE) names no visit
    if subjects.visit_first_punch_id is not None:
        return visits_by_key.get(f"v{subjects.visit_first_punch_id}")
    if subjects.punch_id is not None:
        return visit_of_punch.get(subjects.punch_id)
    return None


def _effective_links(
    current: Mapping[str, ResolutionIn],
    visit_of_punch: Mapping[int, Visit],
    visits_by_key: Mapping[str, Visit],
    planned_by_id: Mapping[int, PlannedIn],
) -> tuple[dict[str, int], dict[str, ResolutionIn]]:
    """Links that apply: the latest for their target and the latest for their visit.

    "Latest for the target" is decided among all links to it, whether or not their visit is in
    the input, so a carer-day loaded alone sees the same winners as a batch.
    """
    links = [(key, res) for key, res in current.items() if res.link_target is not None]
    best_for_target: dict[int, tuple[int, str]] = {}
    best_for_visit: dict[str, tuple[int, str]] = {}
    visit_of_link: dict[str, Visit] = {}
    for key, res in links:
        target = res.link_target
        assert target is not None
        rank = (res.seq, key)
        if rank > best_for_target.get(target, (-(2**63), "")):
            best_for_target[target] = rank
        visit = _visit_of_key(key, visit_of_punch, visits_by_key)
        if visit is not None:
            visit_of_link[key] = visit
            if rank > best_for_visit.get(visit.key, (-(2**63), "")):
                best_for_visit[visit.key] = rank
    forced: dict[str, int] = {}
    forced_by: dict[str, ResolutionIn] = {}
    for key, res in links:
        target = res.link_target
        visit = visit_of_link.get(key)
        if visit is None or target is None or target not in planned_by_id:
            continue
        rank = (res.seq, key)
        if best_for_target[target] != rank or best_for_visit[visit.key] != rank:
            continue
        if planned_by_id[target].company_id != visit.company_id:
            continue
        forced[visit.key] = target
        forced_by[key] = res
    return forced, forced_by


def _about_visit(finding: AnomalyOut, matching: Matching) -> AnomalyOut:
    """Visit anomalies block every intervention the visit covers."""
    if finding.visit_key is None:
        return finding
    chain = matching.chains.get(finding.visit_key)
    if not chain:
        return finding
    about = tuple(p.id for p in chain)
    f = finding
    return AnomalyOut(
        f.key, f.code, f.severity, f.company_id, f.carer_id, f.client_id, about[0], f.punch_id,
        f.visit_key, f.at, f.detail, about, f.owner, f.resolution,
    )  # fmt: skip


def _kept_link(
    key: str,
    resolution: ResolutionIn,
    visits_by_key: Mapping[str, Visit],
    matching: Matching,
    planned_by_id: Mapping[int, PlannedIn],
) -> AnomalyOut:
    """The anomaly a link answered, kept (resolved) although the new match no longer raises it."""
    target = resolution.link_target
    assert target is not None
    visit = visits_by_key[matching.visit_of[target]]
    subjects = parse_anomaly_key(key)
    try:
        code = AnomalyCode(subjects.code)
    except ValueError:
        code = AnomalyCode.UNPLANNED_VISIT
    return AnomalyOut(
        key=key,
        code=code,
        severity=severity_of(code),
        company_id=visit.company_id,
        carer_id=visit.carer_id,
        client_id=visit.client_id,
        planned_id=target,
        punch_id=subjects.punch_id or visit.arrival_punch_id or visit.departure_punch_id,
        visit_key=visit.key,
        at=visit.start,
        detail={"linked_planned_id": target},
        about_planned_ids=(target,),
        owner=visit.owner,
        resolution=resolution.action,
    )


def _realise(
    planned_by_id: Mapping[int, PlannedIn],
    visits_by_key: Mapping[str, Visit],
    matching: Matching,
    matches: Iterable[VisitMatch],
    anomalies: Iterable[AnomalyOut],
    current: Mapping[str, ResolutionIn],
    rules_by_company: Mapping[int, CompanyRules],
) -> dict[int, Realised]:
    about: dict[int, list[AnomalyOut]] = {}
    for anomaly in anomalies:
        for planned_id in anomaly.about_planned_ids:
            about.setdefault(planned_id, []).append(anomaly)
    match_of = {m.planned_id: m for m in matches}
    owners = matching.owners
    out: dict[int, Realised] = {}
    for planned_id, item in planned_by_id.items():
        rules = rules_by_company[item.company_id]
        match = match_of.get(planned_id)
        visit = visits_by_key[match.visit_key] if match else None
        said = about.get(planned_id)
        if said:
            status, times = _status(item, match, visit, matching, said, current, rules)
        else:
            status, times = _status_unremarked(item, match, visit, matching, rules)
        if status == "realised" and times is not None:
            start, end = times
            minutes: int | None = whole_minutes(start, end)
        else:
            start = end = None
            minutes = None
        out[planned_id] = Realised(
            planned_id=planned_id,
            status=status,
            realised_start=start,
            realised_end=end,
            realised_minutes=minutes,
            done_by_carer_id=(visit.carer_id if visit else item.carer_id)
            if status == "realised"
            else None,
            visit_keys=(visit.key,) if visit else (),
            owner=owners[planned_id],
        )
    return out


def _status_unremarked(
    item: PlannedIn,
    match: VisitMatch | None,
    visit: Visit | None,
    matching: Matching,
    rules: CompanyRules,
) -> tuple[RealisedStatus, tuple[datetime, datetime] | None]:
    """:func:`_status` of an intervention no anomaly is about (most of them): no decision and
    nothing blocking, so only the visit counts."""
    if match is None or visit is None:
        return "planned", None
    if visit.absence_report:
        return "not_done", None
    if visit.end is None:
        return "planned", None
    known = matching.automatic.get(item.id)
    if known is not None:
        return "realised", known
    return "realised", realised_span(item.start, item.end, match.start, match.end, rules)


def _status(
    item: PlannedIn,
    match: VisitMatch | None,
    visit: Visit | None,
    matching: Matching,
    about: list[AnomalyOut],
    current: Mapping[str, ResolutionIn],
    rules: CompanyRules,
) -> tuple[RealisedStatus, tuple[datetime, datetime] | None]:
    decision: ResolutionIn | None = None
    decided_on: AnomalyOut | None = None
    for anomaly in about:
        res = current.get(anomaly.key)
        if res is None or res.action not in _TIME_DECISIONS:
            continue
        rank = (res.seq, anomaly.key)
        if decision is None or decided_on is None or rank > (decision.seq, decided_on.key):
            decision, decided_on = res, anomaly
    action = decision.action if decision else None
    if action == "mark_not_done":
        return "not_done", None
    if match is None or visit is None:
        if decision is not None and action in ("use_planned", "set_times"):
            return "realised", _given_times(item, decision, decided_on, None, matching)
        if any(a.code == AnomalyCode.NO_PUNCH and not a.is_open for a in about):
            return "not_done", None
        return "planned", None
    if any(a.blocks for a in about):
        return "planned", None
    if decision is not None and action in ("use_planned", "set_times"):
        return "realised", _given_times(item, decision, decided_on, visit, matching)
    if visit.absence_report:
        return "not_done", None
    if visit.end is None and not any(
        a.code == AnomalyCode.MISSING_DEPARTURE and not a.is_open for a in about
    ):
        # Still in progress: nothing to export until the departure (or a coordinator) ends it.
        return "planned", None
    if action == "accept_punched":
        return "realised", realised_span(
            item.start, item.end, match.start, match.end, rules, keep_planned=False
        )
    known = matching.automatic.get(item.id)
    if known is not None:
        return "realised", known
    return "realised", realised_span(item.start, item.end, match.start, match.end, rules)


def _given_times(
    item: PlannedIn,
    decision: ResolutionIn,
    decided_on: AnomalyOut | None,
    visit: Visit | None,
    matching: Matching,
) -> tuple[datetime, datetime]:
    if decision.action == "use_planned":
        return item.start, item.end
    start, end = decision.set_times
    about_whole_visit = (
        decided_on is not None and parse_anomaly_key(decided_on.key).planned_id is None
    )
    if visit is not None and about_whole_visit:
        chain = matching.chains[visit.key]
        position = next(i for i, p in enumerate(chain) if p.id == item.id)
        if position > 0:
            start = item.start
        if position < len(chain) - 1:
            end = item.end
    return start, max(start, end)
