"""A coordinator's resolution of an anomaly: appended to the audit trail, then applied at once.

The trail (``anomaly_resolutions``) is never updated: each decision is a new row with who, when,
the reason code and the note. Reconciliation reads the latest one per anomaly as an input
(:class:`reconciliation.model.ResolutionIn`), so every later run honours it; right after
writing it, the carer-days it can change are reconciled, so the realised intervention changes
before the coordinator looks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from reconciliation.db_load import Loader, load_companies
from reconciliation.model import RESOLUTION_ACTIONS, CarerDay, ResolutionIn, parse_anomaly_key
from reconciliation.scope import ONE_DAY, day_of, refresh_after_resolution
from reconciliation.sql_access import Sql
from reconciliation.store import (
    RunReport,
    in_transaction,
    owners_of_matches,
    reconcile_carer_days,
    utc_now,
)
from telegestion.model import (
    Anomaly,
    AnomalyResolution,
    Company,
    PlannedIntervention,
    Punch,
    User,
    Visit,
)
from telegestion.model.vocab import RESOLUTION_REASONS

#: Anomalies that reconciliation does not raise: only a dismissal makes sense for them.
_FOREIGN_CODES = frozenset({"CODE_BRUTE_FORCE"})


class ResolutionRefused(ValueError):
    """The resolution cannot be recorded; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ResolutionRequest:
    """What a coordinator asks; ``start``/``end`` are aware instants (``set_times``, or the
    times of a created intervention), ``intervention_ref`` the target of a link or the reference
    of the intervention to create."""

    anomaly_id: int
    action: str
    reason: str
    note: str = ""
    start: datetime | None = None
    end: datetime | None = None
    intervention_ref: str | None = None
    user_login: str | None = None


@dataclass(frozen=True, slots=True)
class ResolutionDone:
    resolution_id: int
    anomaly_key: str
    planned_id: int | None
    report: RunReport


def _visit_of(session: Session, anomaly: Anomaly) -> Visit | None:
    """The stored visit an anomaly is about: by its key, or the one its punch opens or closes
    (on the punch's carer's days around it)."""
    subjects = parse_anomaly_key(anomaly.key)
    company = anomaly.company_id
    if subjects.visit_first_punch_id is not None:
        key = f"v{subjects.visit_first_punch_id}"
        return session.scalar(select(Visit).where(Visit.company_id == company, Visit.key == key))
    punch = session.get(Punch, subjects.punch_id) if subjects.punch_id is not None else None
    if punch is None:
        return None
    timezone = session.scalar(select(Company.timezone).where(Company.id == punch.company_id))
    day = day_of(punch.at, timezone or "Europe/Paris")
    return session.scalar(
        select(Visit).where(
            Visit.carer_id == punch.carer_id,
            Visit.day >= day - ONE_DAY,
            Visit.day <= day + ONE_DAY,
            (Visit.arrival_punch_id == punch.id) | (Visit.departure_punch_id == punch.id),
        )
    )


def _check(request: ResolutionRequest, anomaly: Anomaly | None) -> Anomaly:
    if anomaly is None:
        raise ResolutionRefused(f"no anomaly with id {request.anomaly_id}")
    if request.action not in RESOLUTION_ACTIONS:
        raise ResolutionRefused(
            f"unknown action {request.action!r}; choose one of {', '.join(RESOLUTION_ACTIONS)}"
        )
    if request.reason not in RESOLUTION_REASONS:
        raise ResolutionRefused(
            f"unknown reason {request.reason!r}; choose one of {', '.join(RESOLUTION_REASONS)}"
        )
    if anomaly.status == "closed":
        raise ResolutionRefused(
            f"anomaly {anomaly.id} is closed: the rules no longer raise it, nothing to resolve"
        )
    if anomaly.code in _FOREIGN_CODES and request.action != "dismiss":
        raise ResolutionRefused(f"{anomaly.code} can only be dismissed")
    if request.action == "set_times":
        if request.start is None or request.end is None:
            raise ResolutionRefused("set_times needs --start and --end")
        if request.end < request.start:
            raise ResolutionRefused("set_times: --end is before --start")
    if request.action in ("link_to_intervention", "create_intervention"):
        if not request.intervention_ref:
            raise ResolutionRefused(f"{request.action} needs --intervention REF")
        if not parse_anomaly_key(anomaly.key).punch_ids:
            raise ResolutionRefused(
                f"{request.action} needs an anomaly about a visit or a punch, not {anomaly.code}"
            )
    return anomaly


def _target(session: Session, request: ResolutionRequest, anomaly: Anomaly) -> int | None:
    """The planned id a link points to; creates the intervention for create_intervention."""
    ref = request.intervention_ref
    if request.action not in ("link_to_intervention", "create_intervention") or ref is None:
        return None
    existing = session.scalar(
        select(PlannedIntervention).where(
            PlannedIntervention.company_id == anomaly.company_id,
            PlannedIntervention.intervention_ref == ref,
        )
    )
    if request.action == "link_to_intervention":
        if existing is None:
            raise ResolutionRefused(f"no planned intervention {ref} in this company")
        return existing.id
    if existing is not None:
        raise ResolutionRefused(f"intervention {ref} exists already: use link_to_intervention")
    visit = _visit_of(session, anomaly)
    if visit is None:
        raise ResolutionRefused("this anomaly's visit is not stored yet: run telegestion reconcile")
    if visit.client_id is None:
        raise ResolutionRefused(
            "the visit's client is unknown: link it to an intervention of the right client"
        )
    start = request.start or visit.start_at
    end = request.end or visit.end_at
    if start is None or end is None or end <= start:
        raise ResolutionRefused("give --start and --end for the new intervention")
    created = PlannedIntervention(
        company_id=anomaly.company_id,
        intervention_ref=ref,
        client_id=visit.client_id,
        carer_id=visit.carer_id,
        planned_start=start,
        planned_end=end,
        service="",
        financer="",
    )
    session.add(created)
    session.flush()
    return created.id


def _params(request: ResolutionRequest, planned_id: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if request.action == "set_times" and request.start and request.end:
        params["start"] = request.start.isoformat()
        params["end"] = request.end.isoformat()
    if planned_id is not None:
        params["planned_id"] = planned_id
        params["intervention_ref"] = request.intervention_ref
    return params


def resolve_anomaly(
    engine: Engine, request: ResolutionRequest, *, now: datetime | None = None
) -> ResolutionDone:
    """Append the decision to the trail, then reconcile what it changes (SPEC.md section 5)."""
    moment = now or utc_now()
    with Session(engine, expire_on_commit=False) as session, session.begin():
        anomaly = _check(request, session.get(Anomaly, request.anomaly_id))
        user_id = None
        if request.user_login:
            user = session.scalar(select(User).where(User.login == request.user_login))
            if user is None or not user.active:
                raise ResolutionRefused(f"no active user {request.user_login!r}")
            user_id = user.id
        planned_id = _target(session, request, anomaly)
        visit = _visit_of(session, anomaly) if anomaly.code not in _FOREIGN_CODES else None
        visit_id = visit.id if visit is not None else None
        subjects = parse_anomaly_key(anomaly.key) if anomaly.code not in _FOREIGN_CODES else None
        row = AnomalyResolution(
            anomaly_id=anomaly.id,
            action=request.action,
            reason_code=request.reason,
            note=request.note,
            params=_params(request, planned_id),
            link_planned_id=planned_id,
            subject_punch_id=subjects.punch_ids[0] if subjects and subjects.punch_ids else None,
            subject_planned_id=subjects.planned_id if subjects else None,
            user_id=user_id,
            created_at=moment,
        )
        session.add(row)
        anomaly.status = "resolved"
        anomaly.updated_at = moment
        key, code, company_id = anomaly.key, anomaly.code, anomaly.company_id
        owner = (anomaly.owner_carer_id, anomaly.owner_day)
        session.flush()
        resolution_id = row.id
    if code in _FOREIGN_CODES or company_id is None:
        return ResolutionDone(resolution_id, key, planned_id, RunReport())

    decision = ResolutionIn(
        key,
        request.action,  # type: ignore[arg-type]
        {"planned_id": planned_id} if planned_id is not None else _times(request),
        resolution_id,
    )

    def targets_of(sql: Sql) -> set[tuple[int, Any]]:
        companies = load_companies(sql, [company_id])
        found: set[CarerDay] = set(refresh_after_resolution(decision, companies.rules, Loader(sql)))
        # Where the anomaly's visit is matched now: a visit linked before to an intervention
        # far away carries its new times there.
        if visit_id is not None:
            found |= owners_of_matches(sql, [visit_id], companies)
        if owner[0] is not None and owner[1] is not None:
            found.add(CarerDay(company_id, owner[0], owner[1]))
        return {(t.carer_id, t.day) for t in found}

    targets = in_transaction(engine, targets_of, write=False)
    report = reconcile_carer_days(engine, targets, now=moment)
    return ResolutionDone(resolution_id, key, planned_id, report)


def _times(request: ResolutionRequest) -> dict[str, object]:
    if request.action == "set_times" and request.start and request.end:
        return {"start": request.start, "end": request.end}
    return {}
