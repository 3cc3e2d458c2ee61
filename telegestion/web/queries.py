"""What the coordinator pages read, always within the companies of the user who asks.

Every query takes the :class:`~telegestion.web.accounts.Viewer` and filters on its company
ids; an object of another company is answered exactly like a missing one (``None``), so the
pages cannot tell a user what exists elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from reconciliation.model import parse_anomaly_key

from ..model import (
    Anomaly,
    AnomalyResolution,
    Call,
    CallEvent,
    Carer,
    Client,
    Company,
    PlannedIntervention,
    Punch,
    User,
    Visit,
    VisitMatch,
)
from ..model.vocab import ANOMALY_CODES, ANOMALY_STATUSES
from ..support.trace import visible_to
from .accounts import CompanyRef, Viewer
from .board import board_state

PAGE_SIZE = 50
SORT_KEYS = ("at", "company", "code", "status", "carer", "client")


def local_text(instant: dt.datetime | None, timezone: str, *, seconds: bool = False) -> str:
    """An instant on the wall clock of ``timezone``: '2026-11-23 09:05'."""
    if instant is None:
        return ""
    shown = instant.astimezone(ZoneInfo(timezone or "UTC"))
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def visible_anomaly(viewer: Viewer) -> ColumnElement[bool]:
    """The viewer's companies' anomalies, and those with no company (a lock-out on the shared
    number) whose call the viewer may see (``telegestion.support.trace.visible_to``)."""
    ids = viewer.company_ids
    if not ids:
        return false()
    callers = select(Call.id).where(visible_to(ids))  # type: ignore[arg-type]
    return or_(
        Anomaly.company_id.in_(ids),
        and_(Anomaly.company_id.is_(None), Anomaly.call_id.in_(callers)),
    )


# --- the anomaly list --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
    company: str = ""
    code: str = ""
    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    carer: str = ""
    client: str = ""
    sort: str = "at"
    descending: bool = False
    page: int = 1

    def query(self, **changes: Any) -> dict[str, str]:
        """The filter as query-string fields (for links that keep it)."""
        values = {
            "company": self.company,
            "code": self.code,
            "status": self.status,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "carer": self.carer,
            "client": self.client,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "page": str(self.page),
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def parse_filter(args: dict[str, str]) -> tuple[AnomalyFilter, list[str]]:
    """The filter a query string asks for, and what in it was ignored (shown to the user)."""
    problems: list[str] = []

    def date(name: str) -> dt.date | None:
        raw = args.get(name, "").strip()
        if not raw:
            return None
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            problems.append(f"{raw!r} is not a date (YYYY-MM-DD); ignored")
            return None

    code = args.get("code", "").strip()
    if code and code not in ANOMALY_CODES:
        problems.append(f"unknown code {code!r}; ignored")
        code = ""
    status = args.get("status", "").strip()
    if status and status not in ANOMALY_STATUSES:
        problems.append(f"unknown status {status!r}; ignored")
        status = ""
    sort = args.get("sort", "at")
    if sort not in SORT_KEYS:
        sort = "at"
    try:
        page = max(1, min(int(args.get("page", "1")), 100_000))
    except ValueError:
        page = 1
    return (
        AnomalyFilter(
            company=args.get("company", "").strip()[:3],
            code=code,
            status=status,
            date_from=date("from"),
            date_to=date("to"),
            carer=args.get("carer", "").strip()[:64],
            client=args.get("client", "").strip()[:64],
            sort=sort,
            descending=args.get("dir") == "desc",
            page=page,
        ),
        problems,
    )


@dataclass(frozen=True, slots=True)
class AnomalyRow:
    id: int
    company_code: str
    code: str
    severity: str
    status: str
    carer: str
    client: str
    intervention_ref: str
    at: str


def _midnight(day: dt.date, timezone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), ZoneInfo(timezone)).astimezone(dt.UTC)


def _date_clause(companies: tuple[CompanyRef, ...], f: AnomalyFilter) -> ColumnElement[bool]:
    """The date range in each company's own time zone (UTC for an anomaly with no company)."""
    if f.date_from is None and f.date_to is None:
        return true()

    def bounds(column: Any, timezone: str) -> list[ColumnElement[bool]]:
        parts = []
        if f.date_from is not None:
            parts.append(column >= _midnight(f.date_from, timezone))
        if f.date_to is not None:
            parts.append(column < _midnight(f.date_to + dt.timedelta(days=1), timezone))
        return parts

    per_company = [
        and_(Anomaly.company_id == c.id, *bounds(Anomaly.at, c.timezone)) for c in companies
    ]
    per_company.append(and_(Anomaly.company_id.is_(None), *bounds(Anomaly.at, "UTC")))
    return or_(*per_company)


def _like(column: Any, text: str) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


def anomaly_page(
    session: Session, viewer: Viewer, f: AnomalyFilter
) -> tuple[list[AnomalyRow], int]:
    """One page of the anomalies the viewer may see, filtered and sorted, and the total."""
    carer, client = aliased(Carer), aliased(Client)
    clauses: list[ColumnElement[bool]] = [visible_anomaly(viewer)]
    if f.company:
        clauses.append(Company.code == f.company)
    if f.code:
        clauses.append(Anomaly.code == f.code)
    if f.status:
        clauses.append(Anomaly.status == f.status)
    clauses.append(_date_clause(viewer.companies, f))
    if f.carer:
        clauses.append(or_(_like(carer.carer_ref, f.carer), _like(carer.name, f.carer)))
    if f.client:
        clauses.append(or_(_like(client.client_ref, f.client), _like(client.name, f.client)))
    base = (
        select(Anomaly.id)
        .outerjoin(Company, Company.id == Anomaly.company_id)
        .outerjoin(carer, carer.id == Anomaly.carer_id)
        .outerjoin(client, client.id == Anomaly.client_id)
        .where(*clauses)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    column = {
        "at": Anomaly.at,
        "company": Company.code,
        "code": Anomaly.code,
        "status": Anomaly.status,
        "carer": carer.carer_ref,
        "client": client.client_ref,
    }[f.sort]
    order = [column.desc() if f.descending else column.asc()]
    if f.sort != "at":
        order.append(Anomaly.at.asc())
    order.append(Anomaly.id.desc() if f.descending else Anomaly.id.asc())
    rows = session.execute(
        select(
            Anomaly.id,
            Company.code,
            Company.timezone,
            Anomaly.code,
            Anomaly.severity,
            Anomaly.status,
            carer.carer_ref,
            carer.name,
            client.client_ref,
            client.name,
            PlannedIntervention.intervention_ref,
            Anomaly.at,
        )
        .outerjoin(Company, Company.id == Anomaly.company_id)
        .outerjoin(carer, carer.id == Anomaly.carer_id)
        .outerjoin(client, client.id == Anomaly.client_id)
        .outerjoin(PlannedIntervention, PlannedIntervention.id == Anomaly.intervention_id)
        .where(*clauses)
        .order_by(*order)
        .limit(PAGE_SIZE)
        .offset((f.page - 1) * PAGE_SIZE)
    ).all()
    return [
        AnomalyRow(
            id=r[0],
            company_code=r[1] or "",
            code=r[3],
            severity=r[4],
            status=r[5],
            carer=_who(r[6], r[7]),
            client=_who(r[8], r[9]),
            intervention_ref=r[10] or "",
            at=local_text(r[11], r[2] or "UTC"),
        )
        for r in rows
    ], int(total)


def _who(ref: str | None, name: str | None) -> str:
    if ref is None:
        return ""
    return f"{ref} ({name})" if name and name != ref else ref


# --- one anomaly -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PunchView:
    id: int
    kind: str
    at: str
    source: str
    status: str
    caller: str
    client: str
    call_id: int | None


@dataclass(frozen=True, slots=True)
class EventView:
    seq: int
    at: str
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class CallView:
    id: int
    started: str
    caller: str
    called: str
    outcome: str
    company_code_keyed: str
    carer_code_keyed: str
    events: tuple[EventView, ...]


@dataclass(frozen=True, slots=True)
class InterventionView:
    ref: str
    client: str
    carer: str
    planned_start: str
    planned_end: str
    status: str
    realised_start: str
    realised_end: str
    realised_minutes: int | None
    realised_carer: str
    service: str
    financer: str


@dataclass(frozen=True, slots=True)
class ResolutionView:
    at: str
    user: str
    action: str
    reason: str
    note: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AnomalyView:
    id: int
    company: CompanyRef | None
    timezone: str
    code: str
    severity: str
    status: str
    at: str
    carer: str
    client: str
    detail: dict[str, Any]
    intervention: InterventionView | None
    punches: tuple[PunchView, ...]
    calls: tuple[CallView, ...]
    resolutions: tuple[ResolutionView, ...] = field(default=())


def visible_anomaly_row(session: Session, viewer: Viewer, anomaly_id: int) -> Anomaly | None:
    return session.scalar(select(Anomaly).where(Anomaly.id == anomaly_id, visible_anomaly(viewer)))


def _subject_punch_ids(anomaly: Anomaly) -> set[int]:
    ids = {anomaly.punch_id} if anomaly.punch_id else set()
    try:
        subjects = parse_anomaly_key(anomaly.key)
    except ValueError:
        return ids
    ids.update(p for p in (subjects.punch_id, subjects.visit_first_punch_id) if p)
    return ids


def anomaly_view(session: Session, viewer: Viewer, anomaly_id: int) -> AnomalyView | None:
    anomaly = visible_anomaly_row(session, viewer, anomaly_id)
    if anomaly is None:
        return None
    company = viewer.company(anomaly.company_id)
    timezone = company.timezone if company else "UTC"
    ids = viewer.company_ids
    names = _Names(session)

    intervention = None
    planned = (
        session.get(PlannedIntervention, anomaly.intervention_id)
        if anomaly.intervention_id
        else None
    )
    punch_ids = _subject_punch_ids(anomaly)
    if planned is not None and planned.company_id in ids:
        intervention = InterventionView(
            ref=planned.intervention_ref,
            client=names.client(planned.client_id),
            carer=names.carer(planned.carer_id),
            planned_start=local_text(planned.planned_start, timezone),
            planned_end=local_text(planned.planned_end, timezone),
            status=planned.status,
            realised_start=local_text(planned.realised_start, timezone),
            realised_end=local_text(planned.realised_end, timezone),
            realised_minutes=planned.realised_minutes,
            realised_carer=names.carer(planned.realised_carer_id),
            service=planned.service,
            financer=planned.financer,
        )
        for visit in session.scalars(
            select(Visit).join(VisitMatch).where(VisitMatch.intervention_id == planned.id)
        ):
            punch_ids.update(p for p in (visit.arrival_punch_id, visit.departure_punch_id) if p)
    if punch_ids:
        for visit in session.scalars(
            select(Visit).where(
                or_(Visit.arrival_punch_id.in_(punch_ids), Visit.departure_punch_id.in_(punch_ids))
            )
        ):
            punch_ids.update(p for p in (visit.arrival_punch_id, visit.departure_punch_id) if p)
    punches = list(
        session.scalars(
            select(Punch)
            .where(Punch.id.in_(punch_ids), Punch.company_id.in_(ids))
            .order_by(Punch.at, Punch.id)
        )
    )
    call_ids = {p.call_id for p in punches if p.call_id}
    if anomaly.call_id:
        call_ids.add(anomaly.call_id)
    trail = session.execute(
        select(AnomalyResolution, User.login)
        .outerjoin(User, User.id == AnomalyResolution.user_id)
        .where(AnomalyResolution.anomaly_id == anomaly.id)
        .order_by(AnomalyResolution.id)
    ).all()
    return AnomalyView(
        id=anomaly.id,
        company=company,
        timezone=timezone,
        code=anomaly.code,
        severity=anomaly.severity,
        status=anomaly.status,
        at=local_text(anomaly.at, timezone),
        carer=names.carer(anomaly.carer_id),
        client=names.client(anomaly.client_id),
        detail=dict(anomaly.detail or {}),
        intervention=intervention,
        punches=tuple(
            PunchView(
                id=p.id,
                kind=p.kind,
                at=local_text(p.at, timezone, seconds=True),
                source=p.source,
                status=p.status,
                caller="withheld" if p.caller_withheld else (p.caller_e164 or p.caller_raw or ""),
                client=names.client(p.client_id),
                call_id=p.call_id,
            )
            for p in punches
        ),
        calls=tuple(calls_by_id(session, sorted(call_ids), timezone)),
        resolutions=tuple(
            ResolutionView(
                at=local_text(r.created_at, timezone, seconds=True),
                user=login or "",
                action=r.action,
                reason=r.reason_code,
                note=r.note or "",
                params=dict(r.params or {}),
            )
            for r, login in trail
        ),
    )


def calls_by_id(session: Session, call_ids: list[int], timezone: str) -> list[CallView]:
    """The calls behind what a page shows, with their journal (the caller already checked
    that the page is the viewer's)."""
    if not call_ids:
        return []
    events: dict[int, list[EventView]] = {}
    for e in session.scalars(
        select(CallEvent).where(CallEvent.call_id.in_(call_ids)).order_by(CallEvent.seq)
    ):
        events.setdefault(e.call_id, []).append(
            EventView(e.seq, local_text(e.at, timezone, seconds=True), e.kind, compact(e.detail))
        )
    return [
        CallView(
            id=c.id,
            started=local_text(c.started_at, timezone, seconds=True),
            caller=c.caller_e164 or c.caller_raw or "withheld",
            called=c.called_e164 or c.called_raw or "",
            outcome=c.outcome or "",
            company_code_keyed=c.company_code_keyed or "",
            carer_code_keyed=c.carer_code_keyed or "",
            events=tuple(events.get(c.id, ())),
        )
        for c in session.scalars(select(Call).where(Call.id.in_(call_ids)).order_by(Call.id))
    ]


def compact(detail: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((detail or {}).items()))


class _Names:
    """Carer and client labels, read once each."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def carer(self, carer_id: int | None) -> str:
        row = self.session.get(Carer, carer_id) if carer_id else None
        return _who(row.carer_ref, row.name) if row else ""

    def client(self, client_id: int | None) -> str:
        row = self.session.get(Client, client_id) if client_id else None
        return _who(row.client_ref, row.name) if row else ""


# --- the live board ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoardLine:
    ref: str
    start: str
    end: str
    carer: str
    client: str
    state: str


@dataclass(frozen=True, slots=True)
class BoardCompany:
    company: CompanyRef
    day: str
    lines: tuple[BoardLine, ...]

    def count(self, state: str) -> int:
        return sum(1 for line in self.lines if line.state == state)


_BOARD_CODES = ("LATE_START_ALERT", "CLIENT_ABSENT")


def board(
    session: Session, viewer: Viewer, company_code: str, now: dt.datetime
) -> list[BoardCompany]:
    """Today's planned interventions of each company (its own today), with their state."""
    out = []
    for company in viewer.companies:
        if company_code and company.code != company_code:
            continue
        settings = session.get(Company, company.id)
        late_alert = dt.timedelta(minutes=settings.late_alert_min if settings else 15)
        today = now.astimezone(ZoneInfo(company.timezone)).date()
        start = _midnight(today, company.timezone)
        end = _midnight(today + dt.timedelta(days=1), company.timezone)
        planned = list(
            session.scalars(
                select(PlannedIntervention)
                .where(
                    PlannedIntervention.company_id == company.id,
                    PlannedIntervention.planned_start >= start,
                    PlannedIntervention.planned_start < end,
                )
                .order_by(PlannedIntervention.planned_start, PlannedIntervention.id)
            )
        )
        ids = [p.id for p in planned]
        visits = {
            m.intervention_id: v
            for m, v in session.execute(
                select(VisitMatch, Visit).join(Visit).where(VisitMatch.intervention_id.in_(ids))
            )
        }
        codes: dict[int, set[str]] = {}
        for pid, code in session.execute(
            select(Anomaly.intervention_id, Anomaly.code).where(
                Anomaly.intervention_id.in_(ids),
                Anomaly.code.in_(_BOARD_CODES),
                Anomaly.status == "open",
            )
        ):
            codes.setdefault(pid, set()).add(code)
        absent = {
            (carer_id, client_id)
            for carer_id, client_id in session.execute(
                select(Punch.carer_id, Punch.client_id).where(
                    Punch.company_id == company.id,
                    Punch.status == "client_absent",
                    Punch.at >= start,
                    Punch.at < end,
                )
            )
        }
        names = _Names(session)
        lines = []
        for p in planned:
            visit = visits.get(p.id)
            state = board_state(
                planned_start=p.planned_start,
                status=p.status,
                arrived=visit is not None and visit.arrival_punch_id is not None,
                left=visit is not None and visit.departure_punch_id is not None,
                open_codes=frozenset(codes.get(p.id, ())),
                client_absent=(p.carer_id, p.client_id) in absent,
                now=now,
                late_alert=late_alert,
            )
            lines.append(
                BoardLine(
                    ref=p.intervention_ref,
                    start=local_text(p.planned_start, company.timezone)[11:],
                    end=local_text(p.planned_end, company.timezone)[11:],
                    carer=names.carer(p.carer_id),
                    client=names.client(p.client_id),
                    state=state,
                )
            )
        out.append(BoardCompany(company, today.isoformat(), tuple(lines)))
    return out
