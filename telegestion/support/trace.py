"""Finding calls in the journal the way support is asked about them, and explaining each one.

A ticket starts from "the carer called from Mme Dubois' home around 8 this morning": a caller
number as someone wrote it and an approximate time. :func:`calls_around` finds the calls of
that number around that time (``ix_calls_caller_started``), :func:`call_trace` one call by id,
:func:`search_calls` a page of the journal. Each full :class:`CallTrace` carries its journal,
its punches with the anomalies raised about them, and the diagnosis of
``telegestion.support.diagnosis``, fed with what the directory says today about the numbers
and codes of the call.

``company_ids`` is who is asking: None for the command line (an operator sees everything), a
set for a page user, who sees the calls of their companies and the calls that reached no
company (a wrong company code, a lock-out) from a landline of one of their clients or a mobile
of one of their carers. When restricted, the diagnosis names no other company.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from telegestion.model import (
    Anomaly,
    Call,
    CallEvent,
    Carer,
    Client,
    ClientLandline,
    CodeFailure,
    Company,
    Punch,
    ServiceNumber,
    Visit,
)
from telegestion.phones import WITHHELD_PLACEHOLDERS, is_withheld, to_e164

from .diagnosis import (
    CodeOwner,
    DirectoryFacts,
    LineOwner,
    Lockout,
    clock_time,
    code_attempts,
    diagnose,
)
from .records import AnomalyRef, CallTrace, JournalEvent, PunchLine

__all__ = [
    "AnomalyRef",
    "CallTrace",
    "JournalEvent",
    "PunchLine",
    "call_trace",
    "calls_around",
    "search_calls",
]

#: How far around a punch its anomalies are looked for (a visit lasts at most a day or so).
ANOMALY_REACH = dt.timedelta(hours=36)
#: Words accepted for "the caller number was withheld" in a search.
WITHHELD_WORDS = WITHHELD_PLACEHOLDERS | {"withheld", "none", "masqué", "masque"}

_CallCompany = aliased(Company)
_CallCarer = aliased(Carer)
_CallClient = aliased(Client)

_ROW_COLUMNS = (
    Call,
    _CallCompany.code,
    _CallCompany.name,
    _CallCompany.timezone,
    _CallCarer.carer_ref,
    _CallCarer.name,
    _CallClient.client_ref,
    _CallClient.name,
)


def _require_aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


def _base_query() -> Select[Any]:
    return (
        select(*_ROW_COLUMNS)
        .outerjoin(_CallCompany, _CallCompany.id == Call.company_id)
        .outerjoin(_CallCarer, _CallCarer.id == Call.carer_id)
        .outerjoin(_CallClient, _CallClient.id == Call.client_id)
    )


def visible_to(company_ids: Collection[int] | None) -> ColumnElement[bool] | None:
    """The visibility rule of the module docstring as a WHERE clause (None: everything)."""
    if company_ids is None:
        return None
    ids = sorted(set(company_ids))
    their_lines = select(ClientLandline.number_e164).where(ClientLandline.company_id.in_(ids))
    their_mobiles = select(Carer.mobile_e164).where(
        Carer.company_id.in_(ids), Carer.mobile_e164.is_not(None)
    )
    return or_(
        Call.company_id.in_(ids),
        and_(
            Call.company_id.is_(None),
            Call.caller_e164.is_not(None),
            or_(Call.caller_e164.in_(their_lines), Call.caller_e164.in_(their_mobiles)),
        ),
    )


def number_clause(e164_column: Any, raw_column: Any, text: str, region: str) -> ColumnElement[bool]:
    """Calls whose number is ``text`` in any written form.

    A number that parses is matched on its E.164 form, as the journal stored it (an index); one
    that does not on the raw text; a withheld word (``anonymous``, ``withheld``…) or an empty
    text finds the calls with no number.
    """
    stripped = text.strip()
    if not stripped or stripped.lower() in WITHHELD_WORDS:
        return and_(
            e164_column.is_(None),
            or_(
                raw_column.is_(None),
                func.lower(func.trim(raw_column)).in_(sorted(WITHHELD_PLACEHOLDERS)),
            ),
        )
    e164 = to_e164(stripped, region)
    if e164 is not None:
        return e164_column == e164  # type: ignore[no-any-return]
    return raw_column == stripped  # type: ignore[no-any-return]


def _trace_of(row: Any, *, events_loaded: bool) -> CallTrace:
    call: Call = row[0]
    return CallTrace(
        call_id=call.id,
        origin=call.origin,
        call_key=call.call_key,
        transport=call.transport,
        started_at=call.started_at,
        ended_at=call.ended_at,
        called_raw=call.called_raw,
        called_e164=call.called_e164,
        caller_raw=call.caller_raw,
        caller_e164=call.caller_e164,
        caller_presentation=call.caller_presentation,
        company_id=call.company_id,
        company_code=row[1],
        company_name=row[2],
        company_timezone=row[3],
        company_code_keyed=call.company_code_keyed,
        carer_code_keyed=call.carer_code_keyed,
        carer_ref=row[4],
        carer_name=row[5],
        client_ref=row[6],
        client_name=row[7],
        outcome=call.outcome,
        hangup_step=call.hangup_step,
        events_loaded=events_loaded,
    )


# --- the three look-ups ----------------------------------------------------------------------


def calls_around(
    session: Session,
    *,
    caller: str,
    called: str | None = None,
    at: dt.datetime,
    window: dt.timedelta = dt.timedelta(minutes=30),
    company_ids: Collection[int] | None = None,
    region: str = "FR",
) -> list[CallTrace]:
    """The calls from ``caller`` (to ``called``) that started within ``window`` of ``at``,
    oldest first, each with its full journal and diagnosis."""
    _require_aware("at", at)
    query = _base_query().where(
        number_clause(Call.caller_e164, Call.caller_raw, caller, region),
        Call.started_at >= at - window,
        Call.started_at <= at + window,
    )
    if called is not None and called.strip():
        query = query.where(number_clause(Call.called_e164, Call.called_raw, called, region))
    visible = visible_to(company_ids)
    if visible is not None:
        query = query.where(visible)
    rows = session.execute(query.order_by(Call.started_at, Call.id)).all()
    return [_full(session, _trace_of(row, events_loaded=True), company_ids) for row in rows]


def call_trace(
    session: Session, call_id: int, company_ids: Collection[int] | None
) -> CallTrace | None:
    """One call with its journal, punches and diagnosis; None if absent or not visible."""
    query = _base_query().where(Call.id == call_id)
    visible = visible_to(company_ids)
    if visible is not None:
        query = query.where(visible)
    row = session.execute(query).first()
    if row is None:
        return None
    return _full(session, _trace_of(row, events_loaded=True), company_ids)


def search_calls(
    session: Session,
    *,
    caller: str | None = None,
    called: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    company_ids: Collection[int] | None,
    limit: int = 50,
    offset: int = 0,
    region: str = "FR",
    newest_first: bool = True,
) -> list[CallTrace]:
    """A page of the journal, newest first (or oldest first), started in ``[start, end)``.

    Rows only: ``events``, ``punches`` and ``diagnosis`` are empty (``events_loaded`` False);
    :func:`call_trace` gives the full call. An empty ``caller`` or ``called`` (a blank search
    field) filters nothing; withheld callers are searched with ``caller="anonymous"``.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    query = _base_query()
    if caller is not None and caller.strip():
        query = query.where(number_clause(Call.caller_e164, Call.caller_raw, caller, region))
    if called is not None and called.strip():
        query = query.where(number_clause(Call.called_e164, Call.called_raw, called, region))
    if start is not None:
        query = query.where(Call.started_at >= start)
    if end is not None:
        query = query.where(Call.started_at < end)
    visible = visible_to(company_ids)
    if visible is not None:
        query = query.where(visible)
    if newest_first:
        query = query.order_by(Call.started_at.desc(), Call.id.desc())
    else:
        query = query.order_by(Call.started_at, Call.id)
    query = query.limit(max(limit, 0))
    rows = session.execute(query.offset(max(offset, 0))).all()
    return [_trace_of(row, events_loaded=False) for row in rows]


# --- one call in full --------------------------------------------------------------------------


def _full(session: Session, trace: CallTrace, company_ids: Collection[int] | None) -> CallTrace:
    events = tuple(
        JournalEvent(seq, at, kind, dict(detail or {}))
        for seq, at, kind, detail in session.execute(
            select(CallEvent.seq, CallEvent.at, CallEvent.kind, CallEvent.detail)
            .where(CallEvent.call_id == trace.call_id)
            .order_by(CallEvent.seq)
        )
    )
    trace = dataclasses.replace(trace, events=events, punches=_punches(session, trace))
    facts = directory_facts(session, trace, company_ids)
    return dataclasses.replace(trace, diagnosis=diagnose(trace, facts))


def _punches(session: Session, trace: CallTrace) -> tuple[PunchLine, ...]:
    rows = session.execute(
        select(Punch, Client.client_ref, Client.name, Company.timezone)
        .join(Company, Company.id == Punch.company_id)
        .outerjoin(Client, Client.id == Punch.client_id)
        .where(Punch.call_id == trace.call_id)
        .order_by(Punch.at, Punch.id)
    ).all()
    lines = []
    for punch, client_ref, client_name, timezone in rows:
        lines.append(
            PunchLine(
                punch_id=punch.id,
                kind=punch.kind,
                original_kind=punch.original_kind,
                at=punch.at,
                local_time=clock_time(punch.at, timezone),
                status=punch.status,
                source=punch.source,
                location_verified=punch.location_verified,
                caller_withheld=punch.caller_withheld,
                client_ref=client_ref,
                client_name=client_name,
                task_codes=punch.task_codes,
                anomalies=_anomalies_of(session, punch, trace.call_id),
            )
        )
    return tuple(lines)


def _anomalies_of(session: Session, punch: Punch, call_id: int) -> tuple[AnomalyRef, ...]:
    """Open or resolved anomalies about this punch, or about the visit it belongs to."""
    visit_keys = set(
        session.scalars(
            select(Visit.key).where(
                Visit.company_id == punch.company_id,
                or_(Visit.arrival_punch_id == punch.id, Visit.departure_punch_id == punch.id),
            )
        )
    )
    rows = session.scalars(
        select(Anomaly)
        .where(
            Anomaly.company_id == punch.company_id,
            Anomaly.status.in_(("open", "resolved")),
            Anomaly.at >= punch.at - ANOMALY_REACH,
            Anomaly.at <= punch.at + ANOMALY_REACH,
        )
        .order_by(Anomaly.at, Anomaly.id)
    )
    found = []
    for anomaly in rows:
        tokens = set(anomaly.key.split(":"))
        if anomaly.punch_id == punch.id or anomaly.call_id == call_id or tokens & visit_keys:
            found.append(
                AnomalyRef(
                    anomaly.id,
                    anomaly.code,
                    anomaly.status,
                    anomaly.severity,
                    dict(anomaly.detail or {}),
                    "punch" if anomaly.punch_id == punch.id else "visit",
                )
            )
    return tuple(found)


def directory_facts(
    session: Session, trace: CallTrace, company_ids: Collection[int] | None
) -> DirectoryFacts:
    """What the directory says today about the call's numbers and the codes keyed in it."""
    allowed = None if company_ids is None else set(company_ids)

    def shown(company_id: int, code: str) -> str | None:
        return code if allowed is None or company_id in allowed else None

    number_kind = number_company = None
    if trace.called_e164:
        number = session.execute(
            select(ServiceNumber.kind, Company.id, Company.code)
            .outerjoin(Company, Company.id == ServiceNumber.company_id)
            .where(ServiceNumber.number_e164 == trace.called_e164)
        ).first()
        if number is not None:
            number_kind = number.kind
            number_company = shown(number.id, number.code) if number.id is not None else None

    lines: list[LineOwner] = []
    mobiles: list[CodeOwner] = []
    if trace.caller_e164:
        for company_id, code, client_ref in session.execute(
            select(Company.id, Company.code, Client.client_ref)
            .join(ClientLandline, ClientLandline.company_id == Company.id)
            .join(Client, Client.id == ClientLandline.client_id)
            .where(ClientLandline.number_e164 == trace.caller_e164)
            .order_by(Company.code, Client.client_ref)
        ):
            visible = shown(company_id, code)
            lines.append(
                LineOwner(
                    visible,
                    client_ref if visible else None,
                    company_id == trace.company_id,
                )
            )
        mobiles = _owners(session, Carer.mobile_e164 == trace.caller_e164, trace.company_id, shown)

    codes: dict[str, tuple[CodeOwner, ...]] = {}
    refused = {
        a.value
        for a in code_attempts(trace.events, "carer_code")
        if a.value is not None and not a.valid
    }
    for code in sorted(refused):
        codes[code] = tuple(_owners(session, Carer.carer_code == code, trace.company_id, shown))

    return DirectoryFacts(
        number_kind=number_kind,
        number_company_code=number_company,
        caller_lines=tuple(lines),
        caller_mobile_of=tuple(mobiles),
        carer_codes=codes,
        lockout=_lockout(session, trace),
    )


def _owners(
    session: Session,
    where: ColumnElement[bool],
    company_id: int | None,
    shown: Callable[[int, str], str | None],
) -> list[CodeOwner]:
    owners = []
    for cid, code, ref, name, active in session.execute(
        select(Company.id, Company.code, Carer.carer_ref, Carer.name, Carer.active)
        .join(Company, Company.id == Carer.company_id)
        .where(where)
        .order_by(Company.code, Carer.carer_ref)
    ):
        visible = shown(cid, code)
        same = cid == company_id
        owners.append(
            CodeOwner(
                visible,
                ref if visible else None,
                name if (visible and same) else None,
                bool(active),
                same,
            )
        )
    return owners


def _lockout(session: Session, trace: CallTrace) -> Lockout | None:
    """The caller number's lock-out around the call, counted as ``ivr.punch_rules`` does."""
    from ivr import punch_rules

    if is_withheld(trace.caller_raw):
        return None
    key = trace.caller_e164 or (trace.caller_raw or "").strip()[:20]
    moment = trace.ended_at or trace.started_at
    reach = punch_rules.LOCKOUT_WINDOW + punch_rules.LOCKOUT_DURATION
    failures = [
        punch_rules.CodeFailure(at, what)
        for at, what in session.execute(
            select(CodeFailure.at, CodeFailure.what).where(
                CodeFailure.caller_e164 == key,
                CodeFailure.at > moment - reach,
                CodeFailure.at <= moment,
            )
        )
    ]
    if not failures:
        return None
    until = punch_rules.locked_until(failures, moment)
    since = until - punch_rules.LOCKOUT_DURATION if until is not None else None
    upto = since if since is not None else moment
    counted = sum(
        1
        for f in failures
        if punch_rules.counts_toward_lockout(f.reason)
        and upto - punch_rules.LOCKOUT_WINDOW < f.at <= upto
    )
    return Lockout(counted, since, until)
