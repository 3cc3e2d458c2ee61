"""The database side of a landline call: answers the flow's world effects and keeps its journal.

Every method is synchronous and short (one transaction), so a transport runs it on a worker
thread (FastAGI) or inline (classic AGI). The rules it applies inside its transactions — which
kind a punch is, whether a number is locked out — are the pure functions of ``ivr.punch_rules``;
this module only fetches the rows they need and stores what they decide.

Nothing here holds call state between calls: a call's journal travels in a :class:`CallRecord`
owned by the transport, so any worker can serve any call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ivr import effects as fx
from ivr import punch_rules
from telegestion.model import (
    Anomaly,
    Call,
    CallEvent,
    Carer,
    ClientLandline,
    CodeFailure,
    Company,
    Punch,
    ServiceNumber,
)
from telegestion.phones import is_withheld, to_e164

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class CallRecord:
    """One call's journal as it happens; written with the punch and when the call ends."""

    origin: str
    call_key: str
    transport: str
    called_raw: str
    caller_raw: str
    caller_presentation: str | None
    started_at: dt.datetime
    default_region: str = "FR"
    company_id: int | None = None
    call_id: int | None = None
    events: list[tuple[dt.datetime, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    written_events: int = 0
    company_code_keyed: str | None = None
    carer_code_keyed: str | None = None

    @property
    def caller_e164(self) -> str | None:
        return to_e164(self.caller_raw, self.default_region)

    @property
    def called_e164(self) -> str | None:
        return to_e164(self.called_raw, self.default_region)

    def add(self, at: dt.datetime, kind: str, detail: dict[str, Any]) -> None:
        self.events.append((at, kind, detail))


@dataclasses.dataclass(frozen=True)
class _CompanyRow:
    info: fx.CompanyInfo
    region: str


class CallStore:
    """Answers world effects from the database; one instance per process, shared by threads."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock = utc_now,
        default_region: str = "FR",
        directory_ttl_s: float = 30.0,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.default_region = default_region
        self.directory_ttl_s = directory_ttl_s
        self._lock = threading.Lock()
        self._loaded_at = -1e9
        self._numbers: dict[str, tuple[str, int | None]] = {}
        self._companies_by_id: dict[int, _CompanyRow] = {}
        self._companies_by_code: dict[str, _CompanyRow] = {}

    # --- the small, hot part of the directory, cached -----------------------------------------

    def _refresh_directory(self, force: bool = False) -> None:
        """Called numbers and companies change rarely and are read on every call: keep a copy.

        A miss reloads at once, so a number imported a second ago works on the next call.
        """
        now = time.monotonic()
        if not force and now - self._loaded_at < self.directory_ttl_s:
            return
        with self.sessions() as session:
            companies = {
                c.id: _CompanyRow(
                    fx.CompanyInfo(c.id, c.code, c.language, c.timezone, c.task_codes_enabled),
                    c.region,
                )
                for c in session.scalars(select(Company))
            }
            numbers = {
                n.number_e164: (n.kind, n.company_id)
                for n in session.scalars(select(ServiceNumber))
            }
        with self._lock:
            self._companies_by_id = companies
            self._companies_by_code = {row.info.code: row for row in companies.values()}
            self._numbers = numbers
            self._loaded_at = now

    def _lookup_cached(self, get: Callable[[], Any]) -> Any:
        self._refresh_directory()
        found = get()
        if found is None:
            self._refresh_directory(force=True)
            found = get()
        return found

    def company_region(self, company_id: int | None) -> str:
        row = self._companies_by_id.get(company_id) if company_id is not None else None
        return row.region if row else self.default_region

    # --- world effects --------------------------------------------------------------------------

    def answer(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """Carry out one world effect; database trouble becomes a ``Failure`` reply."""
        handler = self._handlers.get(type(effect))
        if handler is None:
            raise TypeError(f"not a world effect: {effect!r}")
        try:
            return handler(self, effect, call)
        except SQLAlchemyError as exc:
            log.error(
                "database error on %s for call %s: %s", type(effect).__name__, call.call_key, exc
            )
            return fx.Failure(f"database: {type(exc).__name__}")

    def _called_number(
        self, effect: fx.LookupCalledNumber, call: CallRecord
    ) -> fx.CalledNumber | None:
        e164 = to_e164(effect.called_raw, self.default_region)
        if e164 is None:
            return None
        found = self._lookup_cached(lambda: self._numbers.get(e164))
        if found is None:
            return None
        kind, company_id = found
        company = self._companies_by_id.get(company_id) if company_id is not None else None
        if kind == "dedicated" and company is not None:
            call.company_id = company.info.company_id
        return fx.CalledNumber(kind, company.info if company else None)

    def _company(self, effect: fx.LookupCompany, call: CallRecord) -> fx.CompanyInfo | None:
        row = self._lookup_cached(lambda: self._companies_by_code.get(effect.code))
        if row is None:
            return None
        call.company_id = row.info.company_id
        return row.info

    def _carer(self, effect: fx.LookupCarer, call: CallRecord) -> fx.CarerInfo | None:
        with self.sessions() as session:
            carer_id = session.scalar(
                select(Carer.id).where(
                    Carer.company_id == effect.company_id,
                    Carer.carer_code == effect.carer_code,
                    Carer.active.is_(True),
                )
            )
        return fx.CarerInfo(carer_id) if carer_id is not None else None

    def _client(self, effect: fx.LookupClient, call: CallRecord) -> fx.ClientInfo | None:
        e164 = to_e164(effect.caller_raw, self.company_region(effect.company_id))
        if e164 is None:
            return None
        with self.sessions() as session:
            client_id = session.scalar(
                select(ClientLandline.client_id).where(
                    ClientLandline.company_id == effect.company_id,
                    ClientLandline.number_e164 == e164,
                )
            )
        return fx.ClientInfo(client_id) if client_id is not None else None

    # --- lock-out ---------------------------------------------------------------------------------

    @staticmethod
    def _lockout_key(caller_raw: str, region: str) -> str | None:
        if is_withheld(caller_raw):
            return None
        return to_e164(caller_raw, region) or caller_raw.strip()[:20]

    def _failures(
        self, session: Session, key: str, now: dt.datetime
    ) -> list[punch_rules.CodeFailure]:
        since = now - punch_rules.LOCKOUT_WINDOW - punch_rules.LOCKOUT_DURATION
        rows = session.execute(
            select(CodeFailure.at, CodeFailure.what).where(
                CodeFailure.caller_e164 == key, CodeFailure.at > since
            )
        )
        return [punch_rules.CodeFailure(at, reason) for at, reason in rows]

    def _check_lockout(self, effect: fx.CheckLockout, call: CallRecord) -> bool:
        key = self._lockout_key(effect.caller_raw, self.default_region)
        if key is None:
            return False
        now = self.clock()
        with self.sessions() as session:
            return punch_rules.is_locked_out(
                effect.caller_raw, self._failures(session, key, now), now
            )

    def _code_failure(self, effect: fx.RecordCodeFailure, call: CallRecord) -> bool:
        key = self._lockout_key(effect.caller_raw, self.default_region)
        if key is None:
            return False
        now = self.clock()
        new = punch_rules.CodeFailure(now, effect.reason)
        with self.sessions() as session, session.begin():
            earlier = self._failures(session, key, now)
            session.add(CodeFailure(caller_e164=key, at=now, what=effect.reason))
            if punch_rules.failure_starts_lockout(effect.caller_raw, earlier, new):
                session.add(
                    Anomaly(
                        company_id=call.company_id,
                        key=f"CODE_BRUTE_FORCE:{key}:{now.isoformat()}",
                        code="CODE_BRUTE_FORCE",
                        severity="B",
                        at=now,
                        detail={
                            "caller_number": key,
                            "called_number": call.called_raw,
                            "last_field": effect.what,
                            "locked_until": (now + punch_rules.LOCKOUT_DURATION).isoformat(),
                        },
                    )
                )
                log.warning("caller %s locked out after repeated failed codes", key)
            return punch_rules.is_locked_out(effect.caller_raw, [*earlier, new], now)

    # --- punches ----------------------------------------------------------------------------------

    def _local(self, company_id: int, at: dt.datetime) -> dt.datetime:
        row = self._companies_by_id.get(company_id)
        tz = ZoneInfo(row.info.timezone if row else "Europe/Paris")
        return at.astimezone(tz)

    def _recorded(self, punch: Punch) -> fx.PunchRecorded:
        local = self._local(punch.company_id, punch.at)
        kind: fx.PunchKind = "arrival" if punch.kind == "arrival" else "departure"
        return fx.PunchRecorded(punch.id, kind, local.hour, local.minute)

    def _latest_in_scope(
        self,
        session: Session,
        scope: punch_rules.PunchScope,
        caller_e164: str | None,
        now: dt.datetime,
    ) -> punch_rules.LatestPunch | None:
        since = now - punch_rules.OPEN_ARRIVAL_WINDOW - dt.timedelta(hours=1)
        query = select(Punch.kind, Punch.at, Punch.status).where(
            Punch.carer_id == scope.carer_id, Punch.at > since
        )
        if scope.client_id is not None:
            query = query.where(Punch.client_id == scope.client_id)
        elif scope.caller_number is None:
            query = query.where(Punch.client_id.is_(None), Punch.caller_withheld.is_(True))
        else:
            query = query.where(
                Punch.client_id.is_(None),
                or_(
                    Punch.caller_e164 == caller_e164,
                    and_(Punch.caller_e164.is_(None), Punch.caller_raw == scope.caller_number),
                ),
            )
        row = session.execute(query.order_by(Punch.at.desc(), Punch.id.desc()).limit(1)).first()
        if row is None:
            return None
        return punch_rules.LatestPunch(row.kind, row.at, row.status == "client_absent")

    def _record_punch(self, effect: fx.RecordPunch, call: CallRecord) -> fx.PunchRecorded:
        region = self.company_region(effect.company_id)
        caller_e164 = to_e164(effect.caller_raw, region)
        withheld = is_withheld(effect.caller_raw)
        try:
            with self.sessions() as session, session.begin():
                existing = session.scalars(
                    select(Punch).where(
                        Punch.origin == call.origin, Punch.call_key == call.call_key
                    )
                ).first()
                if existing is not None:
                    return self._recorded(existing)
                now = self.clock()
                scope = punch_rules.punch_scope(
                    effect.carer_id, effect.client_id, caller_e164 or effect.caller_raw
                )
                latest = self._latest_in_scope(session, scope, caller_e164, now)
                self._write_call(session, call)
                punch = Punch(
                    origin=call.origin,
                    call_key=call.call_key,
                    company_id=effect.company_id,
                    carer_id=effect.carer_id,
                    client_id=effect.client_id,
                    kind=punch_rules.punch_kind(latest, now),
                    at=now,
                    source="callback" if call.transport == "twilio" else "landline",
                    location_verified=call.transport != "twilio",
                    caller_raw=(effect.caller_raw or None) and effect.caller_raw[:64],
                    caller_e164=caller_e164,
                    caller_withheld=withheld,
                    called_raw=call.called_raw[:64] or None,
                    called_e164=call.called_e164,
                    call_id=call.call_id,
                )
                session.add(punch)
                session.flush()
                return self._recorded(punch)
        except IntegrityError:
            # Another worker recorded this very call (a replay): answer with its punch.
            call.call_id = None
            call.written_events = 0
            with self.sessions() as session:
                existing = session.scalars(
                    select(Punch).where(
                        Punch.origin == call.origin, Punch.call_key == call.call_key
                    )
                ).one()
                return self._recorded(existing)

    def _punch_of_call(self, session: Session, punch_id: int, call: CallRecord) -> Punch:
        punch = session.get(Punch, punch_id)
        if punch is None or (punch.origin, punch.call_key) != (call.origin, call.call_key):
            raise LookupError(f"punch {punch_id} is not this call's")
        return punch

    def _correct(self, effect: fx.CorrectPunch, call: CallRecord) -> fx.PunchRecorded:
        with self.sessions() as session, session.begin():
            punch = self._punch_of_call(session, effect.punch_id, call)
            if punch.original_kind is None:
                punch.original_kind = punch.kind
            punch.kind = punch_rules.flipped_kind(
                "arrival" if punch.kind == "arrival" else "departure"
            )
            if punch.kind == punch.original_kind:
                punch.original_kind = None
            return self._recorded(punch)

    def _absent(self, effect: fx.ReportClientAbsent, call: CallRecord) -> None:
        with self.sessions() as session, session.begin():
            punch = self._punch_of_call(session, effect.punch_id, call)
            punch.status = "client_absent"
            key = f"CLIENT_ABSENT:{punch.id}"
            if session.scalar(select(Anomaly.id).where(Anomaly.key == key)) is None:
                session.add(
                    Anomaly(
                        company_id=punch.company_id,
                        key=key,
                        code="CLIENT_ABSENT",
                        severity="B",
                        carer_id=punch.carer_id,
                        client_id=punch.client_id,
                        punch_id=punch.id,
                        call_id=punch.call_id,
                        at=punch.at,
                        detail={"reported_by": "carer", "caller_number": punch.caller_e164},
                    )
                )
        log.warning("client absent reported on punch %s", effect.punch_id)
        return None

    def _tasks(self, effect: fx.RecordTaskCodes, call: CallRecord) -> None:
        with self.sessions() as session, session.begin():
            punch = self._punch_of_call(session, effect.punch_id, call)
            punch.task_codes = " ".join(effect.codes)
        return None

    _handlers: ClassVar[dict[type, Callable[[CallStore, Any, CallRecord], fx.Reply]]] = {
        fx.LookupCalledNumber: _called_number,
        fx.LookupCompany: _company,
        fx.LookupCarer: _carer,
        fx.LookupClient: _client,
        fx.CheckLockout: _check_lockout,
        fx.RecordCodeFailure: _code_failure,
        fx.RecordPunch: _record_punch,
        fx.CorrectPunch: _correct,
        fx.ReportClientAbsent: _absent,
        fx.RecordTaskCodes: _tasks,
    }

    # --- the journal ------------------------------------------------------------------------------

    def _write_call(
        self,
        session: Session,
        call: CallRecord,
        summary: fx.CallSummary | None = None,
        ended_at: dt.datetime | None = None,
    ) -> None:
        """Insert or update the call row and append the events not yet written."""
        row = session.get(Call, call.call_id) if call.call_id is not None else None
        if row is None:
            row = session.scalars(
                select(Call).where(Call.origin == call.origin, Call.call_key == call.call_key)
            ).first()
        if row is None:
            row = Call(
                origin=call.origin,
                call_key=call.call_key,
                transport=call.transport,
                started_at=call.started_at,
                called_raw=call.called_raw[:64] or None,
                called_e164=call.called_e164,
                caller_raw=call.caller_raw[:64] or None,
                caller_e164=call.caller_e164,
                caller_presentation=call.caller_presentation,
            )
            session.add(row)
            session.flush()
            seq_base = 0
        else:
            seq_base = (
                session.scalar(
                    select(CallEvent.seq)
                    .where(CallEvent.call_id == row.id)
                    .order_by(CallEvent.seq.desc())
                    .limit(1)
                )
                or 0
            )
            if call.call_id is None:
                call.written_events = 0
        call.call_id = row.id
        if call.company_id is not None:
            row.company_id = call.company_id
        if summary is not None:
            row.outcome = summary.outcome
            row.hangup_step = summary.hangup_step
            row.company_id = summary.company_id or row.company_id
            row.carer_id = summary.carer_id
            row.client_id = summary.client_id
            row.company_code_keyed = summary.company_code_keyed
            row.carer_code_keyed = summary.carer_code_keyed
            row.ended_at = ended_at
        pending = call.events[call.written_events :]
        session.add_all(
            CallEvent(call_id=row.id, seq=seq_base + i + 1, at=at, kind=kind, detail=detail)
            for i, (at, kind, detail) in enumerate(pending)
        )
        call.written_events = len(call.events)

    def finish(self, call: CallRecord, summary: fx.CallSummary) -> None:
        """Write the call's outcome and its remaining events; never raises (the call is over)."""
        try:
            with self.sessions() as session, session.begin():
                self._write_call(session, call, summary, self.clock())
        except SQLAlchemyError as exc:
            log.error("could not journal call %s/%s: %s", call.origin, call.call_key, exc)
