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

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ivr import effects as fx
from ivr import punch_rules, visit_menu
from ivr.call_record import NOT_IN_MEMORY, CallRecord, Clock, utc_now
from ivr.client_label import client_label
from ivr.directory_copy import CompanyEntry, DirectoryCopy
from reconciliation.background import reconcile_call
from reconciliation.model import AnomalyCode, anomaly_key
from telegestion.model import (
    Anomaly,
    Call,
    CallEvent,
    Carer,
    Client,
    ClientLandline,
    CodeFailure,
    Company,
    PlannedIntervention,
    Punch,
    ServiceNumber,
)
from telegestion.phones import is_withheld, to_e164

log = logging.getLogger(__name__)


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
        preload_people: bool = True,
    ) -> None:
        """``preload_people=False`` for a process that serves one call (a classic AGI script):
        loading every carer and landline would cost more than the two queries it replaces."""
        self.sessions = sessions
        self.preload_people = preload_people
        self.clock = clock
        self.default_region = default_region
        self.directory_ttl_s = directory_ttl_s
        self._lock = threading.Lock()
        self._loaded_at = -1e9
        self._refreshing = threading.Lock()
        self._numbers: dict[str, tuple[str, int | None]] = {}
        self._companies_by_id: dict[int, _CompanyRow] = {}
        self._companies_by_code: dict[str, _CompanyRow] = {}
        self._active_carers: dict[tuple[int, str], int] = {}
        self._landlines: dict[tuple[int, str], int] = {}
        #: when the directory in memory was read from the database (None: never, or a copy)
        self.directory_fetched_at: dt.datetime | None = None
        #: bumped at each refresh from the database, so a watcher knows when to save a copy
        self.directory_version = 0
        # Caller numbers with failed code entries recent enough to matter for a lock-out. Any
        # other caller (nearly all of them) is not locked out, known without a query.
        self.failing_ttl_s = 5.0
        self._failing_callers: frozenset[str] = frozenset()
        self._failing_loaded_at = -1e9
        bind = sessions.kw.get("bind")
        if bind is None:
            raise ValueError("CallStore needs a sessionmaker bound to an engine")
        self.engine = bind

    # --- the small, hot part of the directory, cached -----------------------------------------

    def _refresh_directory(self, force: bool = False) -> None:
        """The directory is read on every call and changes rarely: keep a copy, reloaded every
        ``directory_ttl_s`` by one thread while the others go on with the previous copy.

        A miss always asks the database (``_lookup_cached``, ``_carer``, ``_client``), so a number,
        carer or landline imported a second ago works on the next call; what the copy can delay,
        by at most the TTL, is a carer deactivated or a landline moved to another client.
        """
        now = time.monotonic()
        if not force and now - self._loaded_at < self.directory_ttl_s:
            return
        first = self._loaded_at < 0
        if not self._refreshing.acquire(blocking=force or first):
            return
        try:
            if not force and time.monotonic() - self._loaded_at < self.directory_ttl_s:
                return
            with self.engine.connect() as conn:
                companies = {
                    c.id: _CompanyRow(
                        fx.CompanyInfo(c.id, c.code, c.language, c.timezone, c.task_codes_enabled),
                        c.region,
                    )
                    for c in conn.execute(
                        select(
                            Company.id,
                            Company.code,
                            Company.language,
                            Company.timezone,
                            Company.task_codes_enabled,
                            Company.region,
                        )
                    )
                }
                numbers = {
                    n.number_e164: (n.kind, n.company_id)
                    for n in conn.execute(
                        select(
                            ServiceNumber.number_e164, ServiceNumber.kind, ServiceNumber.company_id
                        )
                    )
                }
                carers: dict[tuple[int, str], int] = {}
                landlines: dict[tuple[int, str], int] = {}
                if self.preload_people:
                    carers = {
                        (r.company_id, r.carer_code): r.id
                        for r in conn.execute(
                            select(Carer.id, Carer.company_id, Carer.carer_code).where(
                                Carer.active.is_(True)
                            )
                        )
                    }
                    landlines = {
                        (r.company_id, r.number_e164): r.client_id
                        for r in conn.execute(
                            select(
                                ClientLandline.company_id,
                                ClientLandline.number_e164,
                                ClientLandline.client_id,
                            )
                        )
                    }
            with self._lock:
                self._companies_by_id = companies
                self._companies_by_code = {row.info.code: row for row in companies.values()}
                self._numbers = numbers
                self._active_carers = carers
                self._landlines = landlines
                self._loaded_at = time.monotonic()
                self.directory_fetched_at = self.clock()
                self.directory_version += 1
        finally:
            self._refreshing.release()

    def directory_copy(self) -> DirectoryCopy | None:
        """The directory in memory, for ``ivr.directory_copy`` to save; ``None`` before the
        first load."""
        with self._lock:
            if self.directory_fetched_at is None:
                return None
            return DirectoryCopy(
                companies=tuple(
                    CompanyEntry(
                        row.info.company_id,
                        row.info.code,
                        row.info.language,
                        row.info.timezone,
                        row.info.task_codes_enabled,
                        row.region,
                    )
                    for row in self._companies_by_id.values()
                ),
                numbers=dict(self._numbers),
                carers=dict(self._active_carers),
                landlines=dict(self._landlines),
                fetched_at=self.directory_fetched_at,
            )

    def install_directory(self, copy: DirectoryCopy) -> None:
        """Start from a saved copy (the database is unreachable at start-up). The copy stays
        due for a refresh, so the first call that finds the database up reloads it."""
        companies = {
            c.company_id: _CompanyRow(
                fx.CompanyInfo(c.company_id, c.code, c.language, c.timezone, c.task_codes_enabled),
                c.region,
            )
            for c in copy.companies
        }
        with self._lock:
            if (
                self.directory_fetched_at is not None
                and self.directory_fetched_at >= copy.fetched_at
            ):
                return  # the database answered meanwhile: keep its fresher directory
            self._companies_by_id = companies
            self._companies_by_code = {row.info.code: row for row in companies.values()}
            self._numbers = dict(copy.numbers)
            self._active_carers = dict(copy.carers)
            self._landlines = dict(copy.landlines)
            self.directory_fetched_at = copy.fetched_at

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
        try:
            return self.answer_or_raise(effect, call)
        except SQLAlchemyError as exc:
            log.error(
                "database error on %s for call %s: %s", type(effect).__name__, call.call_key, exc
            )
            return fx.Failure(f"database: {type(exc).__name__}")

    def answer_or_raise(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """``answer`` letting database errors through, for a caller that has a fallback."""
        handler = self._handlers.get(type(effect))
        if handler is None:
            raise TypeError(f"not a world effect: {effect!r}")
        return handler(self, effect, call)

    def answer_from_memory(
        self, effect: fx.Effect, call: CallRecord, *, stale_ok: bool = False
    ) -> fx.Reply | object:
        """The answer to a lookup that the directory copy holds, without blocking; else
        ``NOT_IN_MEMORY`` and the caller runs ``answer`` on a worker thread.

        Most lookups of a call hit the copy: answering them on the caller's thread saves a
        thread hop each, which is most of what they would cost.

        ``stale_ok`` (the database is down): the copy answers whatever its age, and a number,
        company, carer or landline it does not hold is unknown (``None``). Lock-out checks are
        not answered here then: ``ivr.resilient_store`` keeps their offline memory.
        """
        if stale_ok:
            if isinstance(
                effect, fx.LookupCalledNumber | fx.LookupCompany | fx.LookupCarer | fx.LookupClient
            ):
                return self._from_copy(effect, call)
            return NOT_IN_MEMORY
        if time.monotonic() - self._loaded_at >= self.directory_ttl_s:
            return NOT_IN_MEMORY  # a refresh is due: the worker thread does it
        if isinstance(effect, fx.LookupCalledNumber):
            e164 = to_e164(effect.called_raw, self.default_region)
            if e164 is not None and e164 in self._numbers:
                return self._called_number(effect, call)
        elif isinstance(effect, fx.LookupCompany):
            if effect.code in self._companies_by_code:
                return self._company(effect, call)
        elif isinstance(effect, fx.CheckLockout):
            if self._lockout_from_memory(effect.caller_raw) is False:
                return False
        elif isinstance(effect, fx.LookupCarer):
            carer_id = self._active_carers.get((effect.company_id, effect.carer_code))
            if carer_id is not None:
                return fx.CarerInfo(carer_id)
        elif isinstance(effect, fx.LookupClient):
            e164 = to_e164(effect.caller_raw, self.company_region(effect.company_id))
            client_id = self._landlines.get((effect.company_id, e164)) if e164 else None
            if client_id is not None:
                return fx.ClientInfo(client_id)
        return NOT_IN_MEMORY

    def _from_copy(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """A directory lookup from memory only, misses included (never a query)."""
        if isinstance(effect, fx.LookupCarer):
            carer_id = self._active_carers.get((effect.company_id, effect.carer_code))
            return fx.CarerInfo(carer_id) if carer_id is not None else None
        if isinstance(effect, fx.LookupClient):
            e164 = to_e164(effect.caller_raw, self.company_region(effect.company_id))
            client_id = self._landlines.get((effect.company_id, e164)) if e164 else None
            return fx.ClientInfo(client_id) if client_id is not None else None
        if isinstance(effect, fx.LookupCompany):
            row = self._companies_by_code.get(effect.code)
            if row is None:
                return None
            call.company_id = row.info.company_id
            return row.info
        e164 = to_e164(effect.called_raw, self.default_region)
        return self._service_number(e164 and self._numbers.get(e164), call)

    def _called_number(
        self, effect: fx.LookupCalledNumber, call: CallRecord
    ) -> fx.CalledNumber | None:
        e164 = to_e164(effect.called_raw, self.default_region)
        if e164 is None:
            return None
        return self._service_number(self._lookup_cached(lambda: self._numbers.get(e164)), call)

    def _service_number(
        self, found: tuple[str, int | None] | None, call: CallRecord
    ) -> fx.CalledNumber | None:
        """What the flow learns of a called number: its kind and, for a dedicated number, the
        company it names (which the call then belongs to)."""
        if not found:
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
        self._refresh_directory()
        carer_id = self._active_carers.get((effect.company_id, effect.carer_code))
        if carer_id is None:
            with self.engine.connect() as conn:
                carer_id = conn.execute(
                    select(Carer.id).where(
                        Carer.company_id == effect.company_id,
                        Carer.carer_code == effect.carer_code,
                        Carer.active.is_(True),
                    )
                ).scalar()
        return fx.CarerInfo(carer_id) if carer_id is not None else None

    def _client(self, effect: fx.LookupClient, call: CallRecord) -> fx.ClientInfo | None:
        e164 = to_e164(effect.caller_raw, self.company_region(effect.company_id))
        if e164 is None:
            return None
        self._refresh_directory()
        client_id = self._landlines.get((effect.company_id, e164))
        if client_id is None:
            with self.engine.connect() as conn:
                client_id = conn.execute(
                    select(ClientLandline.client_id).where(
                        ClientLandline.company_id == effect.company_id,
                        ClientLandline.number_e164 == e164,
                    )
                ).scalar()
        return fx.ClientInfo(client_id) if client_id is not None else None

    # --- the call-back's carer and menu (SPEC.md section 4) ----------------------------------

    def _carers_by_mobile(self, effect: fx.FindCarerByMobile, call: CallRecord) -> fx.CarerMatches:
        mobile = to_e164(effect.mobile_raw, self.default_region)
        if mobile is None:
            return fx.CarerMatches(())
        query = select(Carer.id, Carer.company_id).where(
            Carer.mobile_e164 == mobile,
            Carer.carer_code == effect.carer_code,
            Carer.active.is_(True),
        )
        if effect.company_id is not None:
            query = query.where(Carer.company_id == effect.company_id)
        with self.sessions() as session:
            rows = session.execute(query).all()
        matches: list[fx.CarerMatch] = []
        for carer_id, company_id in rows:
            company = self._lookup_cached(lambda c=company_id: self._companies_by_id.get(c))
            if company is not None:
                matches.append(fx.CarerMatch(carer_id, company.info))
        matches.sort(key=lambda m: m.company.code)
        if len(matches) == 1:
            call.company_id = matches[0].company.company_id
        return fx.CarerMatches(tuple(matches))

    def _visit_choices(self, effect: fx.ListVisitChoices, call: CallRecord) -> fx.VisitChoices:
        now = self.clock()
        around = visit_menu.AROUND_NOW
        with self.sessions() as session:
            planned = [
                visit_menu.PlannedVisit(client_id, start, end, client_label(name))
                for client_id, start, end, name in session.execute(
                    select(
                        PlannedIntervention.client_id,
                        PlannedIntervention.planned_start,
                        PlannedIntervention.planned_end,
                        Client.name,
                    )
                    .join(Client, Client.id == PlannedIntervention.client_id)
                    .where(
                        PlannedIntervention.company_id == effect.company_id,
                        PlannedIntervention.carer_id == effect.carer_id,
                        PlannedIntervention.status != "not_done",
                        PlannedIntervention.planned_start <= now + around,
                        PlannedIntervention.planned_end >= now - around,
                    )
                )
            ]
            latest: dict[int, visit_menu.LatestAtClient] = {}
            for client_id, kind, at, status, name in session.execute(
                select(Punch.client_id, Punch.kind, Punch.at, Punch.status, Client.name)
                .join(Client, Client.id == Punch.client_id)
                .where(
                    Punch.carer_id == effect.carer_id,
                    Punch.company_id == effect.company_id,
                    Punch.at > now - visit_menu.PUNCH_LOOKBACK,
                )
                .order_by(Punch.at, Punch.id)
            ):
                latest[client_id] = visit_menu.LatestAtClient(
                    client_id,
                    punch_rules.LatestPunch(kind, at, status == "client_absent"),
                    client_label(name),
                )
        row = self._companies_by_id.get(effect.company_id)
        timezone = row.info.timezone if row else "Europe/Paris"
        return fx.VisitChoices(visit_menu.visit_choices(planned, latest.values(), now, timezone))

    # --- lock-out ---------------------------------------------------------------------------------

    @staticmethod
    def _lockout_key(caller_raw: str, region: str) -> str | None:
        if is_withheld(caller_raw):
            return None
        return to_e164(caller_raw, region) or caller_raw.strip()[:20]

    def _failures(
        self, session: Session | Connection, key: str, now: dt.datetime
    ) -> list[punch_rules.CodeFailure]:
        since = now - punch_rules.LOCKOUT_WINDOW - punch_rules.LOCKOUT_DURATION
        rows = session.execute(_RECENT_FAILURES, {"caller": key, "since": since})
        return [punch_rules.CodeFailure(at, reason) for at, reason in rows]

    def _refresh_failing_callers(self, conn: Connection, now: dt.datetime) -> None:
        """Reload the numbers with recent failures; another worker's failures show within
        ``failing_ttl_s``, nothing next to the hour a lock-out needs."""
        since = now - punch_rules.LOCKOUT_WINDOW - punch_rules.LOCKOUT_DURATION
        callers = conn.execute(_FAILING_CALLERS, {"since": since}).scalars().all()
        self._failing_callers = frozenset(callers)
        self._failing_loaded_at = time.monotonic()

    def _lockout_from_memory(self, caller_raw: str) -> bool | None:
        """False when the number surely has no recent failure, None when a query must say."""
        key = self._lockout_key(caller_raw, self.default_region)
        if key is None:
            return False
        if time.monotonic() - self._failing_loaded_at >= self.failing_ttl_s:
            return None
        return False if key not in self._failing_callers else None

    def _check_lockout(self, effect: fx.CheckLockout, call: CallRecord) -> bool:
        key = self._lockout_key(effect.caller_raw, self.default_region)
        if key is None:
            return False
        now = self.clock()
        with self.engine.connect() as conn:
            if time.monotonic() - self._failing_loaded_at >= self.failing_ttl_s:
                self._refresh_failing_callers(conn, now)
            if key not in self._failing_callers:
                return False
            return punch_rules.is_locked_out(effect.caller_raw, self._failures(conn, key, now), now)

    def _code_failure(self, effect: fx.RecordCodeFailure, call: CallRecord) -> bool:
        return self.record_code_failure(effect, call, self.clock())

    def record_code_failure(
        self, effect: fx.RecordCodeFailure, call: CallRecord, now: dt.datetime
    ) -> bool:
        """``RecordCodeFailure`` at a time the caller chose (the offline path reuses it, so the
        spool's replay recognises a late write of the same failure)."""
        key = self._lockout_key(effect.caller_raw, self.default_region)
        if key is None:
            return False
        self._failing_callers = self._failing_callers | {key}
        with self.sessions() as session, session.begin():
            return self.store_code_failure(
                session,
                key=key,
                caller_raw=effect.caller_raw,
                at=now,
                reason=effect.reason,
                field=effect.what,
                company_id=call.company_id,
                called_raw=call.called_raw,
            )

    def store_code_failure(
        self,
        session: Session,
        *,
        key: str,
        caller_raw: str,
        at: dt.datetime,
        reason: str,
        field: str,
        company_id: int | None,
        called_raw: str,
    ) -> bool:
        """Store one failed entry (and ``CODE_BRUTE_FORCE`` when it starts a lock-out) in the
        session's transaction; whether the caller is locked out from ``at`` on. Shared with the
        spool's replay, which passes the time the failure happened."""
        new = punch_rules.CodeFailure(at, reason)
        earlier = self._failures(session, key, at)
        session.add(CodeFailure(caller_e164=key, at=at, what=reason))
        if punch_rules.failure_starts_lockout(caller_raw, earlier, new):
            session.add(
                Anomaly(
                    company_id=company_id,
                    key=f"CODE_BRUTE_FORCE:{key}:{at.isoformat()}",
                    code="CODE_BRUTE_FORCE",
                    severity="B",
                    at=at,
                    detail={
                        "caller_number": key,
                        "called_number": called_raw,
                        "last_field": field,
                        "locked_until": (at + punch_rules.LOCKOUT_DURATION).isoformat(),
                    },
                )
            )
            log.warning("caller %s locked out after repeated failed codes", key)
        return punch_rules.is_locked_out(caller_raw, [*earlier, new], at)

    # --- punches ----------------------------------------------------------------------------------

    def _local(self, company_id: int, at: dt.datetime) -> dt.datetime:
        row = self._companies_by_id.get(company_id)
        tz = ZoneInfo(row.info.timezone if row else "Europe/Paris")
        return at.astimezone(tz)

    def _recorded(self, punch: Any) -> fx.PunchRecorded:
        """The readback of a stored punch (a ``Punch`` or a row with the same fields)."""
        local = self._local(punch.company_id, punch.at)
        kind: fx.PunchKind = "arrival" if punch.kind == "arrival" else "departure"
        return fx.PunchRecorded(punch.id, kind, local.hour, local.minute)

    def _latest_in_scope(
        self,
        session: Session | Connection,
        scope: punch_rules.PunchScope,
        caller_e164: str | None,
        now: dt.datetime,
    ) -> punch_rules.LatestPunch | None:
        since = now - punch_rules.OPEN_ARRIVAL_WINDOW - dt.timedelta(hours=1)
        params: dict[str, Any] = {"carer": scope.carer_id, "since": since}
        if scope.client_id is not None:
            query = _LATEST_AT_CLIENT
            params["client"] = scope.client_id
        elif scope.caller_number is None:
            query = _LATEST_WITHHELD
        else:
            query = _LATEST_FROM_NUMBER
            params.update(e164=caller_e164, raw=scope.caller_number)
        row = session.execute(query, params).first()
        if row is None:
            return None
        return punch_rules.LatestPunch(row.kind, row.at, row.status == "client_absent")

    def _record_punch(self, effect: fx.RecordPunch, call: CallRecord) -> fx.PunchRecorded:
        """Decide the kind, store the punch and the journal so far, in one transaction.

        The insert is keyed by (origin, call key) and does nothing on a conflict: a replayed call
        (Asterisk's ``agi_uniqueid`` again, another worker racing on it) gets the stored punch
        back instead of a second one, without an error path.
        """
        region = self.company_region(effect.company_id)
        caller_e164 = to_e164(effect.caller_raw, region)
        with self.engine.begin() as conn:
            now = self.clock()
            scope = punch_rules.punch_scope(
                effect.carer_id, effect.client_id, caller_e164 or effect.caller_raw
            )
            latest = self._latest_in_scope(conn, scope, caller_e164, now)
            self._write_call_core(conn, call)
            values = punch_values(
                effect, call, punch_rules.punch_kind(latest, now), now, caller_e164
            )
            values["call_id"] = call.call_id
            stored = conn.execute(_statements(conn).insert_punch, values).first()
            if stored is None:
                stored = conn.execute(
                    select(Punch.id, Punch.company_id, Punch.kind, Punch.at).where(
                        Punch.origin == call.origin, Punch.call_key == call.call_key
                    )
                ).one()
            return self._recorded(stored)

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

    def set_punch_kind(
        self,
        punch_id: int,
        call: CallRecord,
        kind: punch_rules.PunchKind,
        original_kind: punch_rules.PunchKind | None,
    ) -> fx.PunchRecorded:
        """A correction stated as its result rather than as "flip it": written twice (a late
        write after the spool's replay of the same correction), it changes nothing more."""
        with self.sessions() as session, session.begin():
            punch = self._punch_of_call(session, punch_id, call)
            punch.kind, punch.original_kind = kind, original_kind
            return self._recorded(punch)

    def _absent(self, effect: fx.ReportClientAbsent, call: CallRecord) -> None:
        with self.sessions() as session, session.begin():
            mark_client_absent(session, self._punch_of_call(session, effect.punch_id, call))
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
        fx.FindCarerByMobile: _carers_by_mobile,
        fx.ListVisitChoices: _visit_choices,
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
        self._write_call_core(session.connection(), call, summary, ended_at)

    def _write_call_core(
        self,
        conn: Connection,
        call: CallRecord,
        summary: fx.CallSummary | None = None,
        ended_at: dt.datetime | None = None,
    ) -> None:
        """The journal with Core statements: one insert for the row, one executemany for the
        events. A call is journaled twice or more (at the punch, at the end, at each Twilio
        webhook), so the row is inserted when new and found when it exists."""
        inserted = False
        if call.call_id is None:
            call_id = conn.execute(_statements(conn).insert_call, call_row_values(call)).scalar()
            inserted = call_id is not None
            if call_id is None:
                call_id = conn.execute(
                    select(Call.id).where(
                        Call.origin == call.origin, Call.call_key == call.call_key
                    )
                ).scalar_one()
                call.seq_base = (
                    conn.execute(
                        select(func.max(CallEvent.seq)).where(CallEvent.call_id == call_id)
                    ).scalar()
                    or 0
                )
                call.written_events = 0
            else:
                call.seq_base = 0
            call.call_id = call_id
        changes: dict[str, Any] = {}
        if call.company_id is not None and not inserted:  # a row just inserted has it
            changes["company_id"] = call.company_id
        if summary is not None:
            changes.update(
                outcome=summary.outcome,
                hangup_step=summary.hangup_step,
                carer_id=summary.carer_id,
                client_id=summary.client_id,
                company_code_keyed=summary.company_code_keyed,
                carer_code_keyed=summary.carer_code_keyed,
                ended_at=ended_at,
            )
            if summary.company_id is not None:
                changes["company_id"] = summary.company_id
        if changes:
            conn.execute(_UPDATE_CALL, {"call_row": call.call_id, **changes})
        pending = call.events[call.written_events :]
        if pending:
            first = call.seq_base + call.written_events + 1
            conn.execute(
                _INSERT_EVENTS,
                [
                    {
                        "call_id": call.call_id,
                        "seq": first + i,
                        "at": at,
                        "kind": kind,
                        "detail": detail,
                    }
                    for i, (at, kind, detail) in enumerate(pending)
                ],
            )
        call.written_events = len(call.events)

    def write_journal(self, call: CallRecord, *, ended_at: dt.datetime | None = None) -> None:
        """Write the call row and the events not yet written, for a call that goes on in
        another request (a Twilio webhook) or that ended without running the flow (a call-back
        request, an unanswered call-back); never raises."""
        try:
            with self.sessions() as session, session.begin():
                self._write_call(session, call)
                if ended_at is not None:
                    row = session.get(Call, call.call_id)
                    if row is not None and row.ended_at is None:
                        row.ended_at = ended_at
        except SQLAlchemyError as exc:
            log.error("could not journal call %s/%s: %s", call.origin, call.call_key, exc)

    def write_final(self, call: CallRecord, summary: fx.CallSummary) -> None:
        """Write the call's outcome and its remaining events; database errors go through."""
        with self.engine.begin() as conn:
            self._write_call_core(conn, call, summary, self.clock())

    def finish(self, call: CallRecord, summary: fx.CallSummary) -> None:
        """Write the call's outcome and its remaining events; never raises (the call is over)."""
        try:
            self.write_final(call, summary)
        except SQLAlchemyError as exc:
            log.error("could not journal call %s/%s: %s", call.origin, call.call_key, exc)
        self._reconcile(call)

    def _reconcile(self, call: CallRecord) -> None:
        """Reconcile the carer's day of this call's punch (SPEC.md section 5, incremental), so
        coordinators see its anomalies at once. It runs after the journal, on the thread that
        finishes the call, once the carer has hung up: nobody waits for it. Never raises."""
        try:
            reconcile_call(self.engine, call.origin, call.call_key, self.clock())
        except Exception:
            log.exception("could not reconcile after call %s/%s", call.origin, call.call_key)


def call_row_values(call: CallRecord) -> dict[str, Any]:
    """The call row as first inserted (the journal and the spool's replay alike)."""
    return {
        "origin": call.origin,
        "call_key": call.call_key,
        "transport": call.transport,
        "started_at": call.started_at,
        "called_raw": call.called_raw[:64] or None,
        "called_e164": call.called_e164,
        "caller_raw": call.caller_raw[:64] or None,
        "caller_e164": call.caller_e164,
        "caller_presentation": call.caller_presentation,
        "company_id": call.company_id,
    }


def punch_values(
    effect: fx.RecordPunch,
    call: CallRecord,
    kind: punch_rules.PunchKind,
    at: dt.datetime,
    caller_e164: str | None,
) -> dict[str, Any]:
    """A punch row but its ``call_id`` (the database and the spool alike)."""
    return {
        "origin": call.origin,
        "call_key": call.call_key,
        "company_id": effect.company_id,
        "carer_id": effect.carer_id,
        "client_id": effect.client_id,
        "kind": kind,
        "at": at,
        "source": "callback" if call.transport == "twilio" else "landline",
        "status": "recorded",
        "location_verified": call.transport != "twilio",
        "caller_raw": (effect.caller_raw or None) and effect.caller_raw[:64],
        "caller_e164": caller_e164,
        "caller_withheld": is_withheld(effect.caller_raw),
        "called_raw": call.called_raw[:64] or None,
        "called_e164": call.called_e164,
        "created_at": at,
        "updated_at": at,
    }


def mark_client_absent(session: Session, punch: Punch) -> None:
    """The carer pressed 9: the arrival becomes an absence report, with its alert."""
    punch.status = "client_absent"
    # The key reconciliation gives the same anomaly: one row, whoever writes it first.
    key = anomaly_key(AnomalyCode.CLIENT_ABSENT, punch_id=punch.id)
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


def _latest_punch(*where: Any) -> Any:
    """The carer's latest punch since a time, among those ``where`` selects."""
    return (
        select(Punch.kind, Punch.at, Punch.status)
        .where(Punch.carer_id == bindparam("carer"), Punch.at > bindparam("since"), *where)
        .order_by(Punch.at.desc(), Punch.id.desc())
        .limit(1)
    )


# The three scopes of ``ivr.punch_rules.PunchScope``: a known client; a withheld number; an
# unknown number (stored in E.164 when it parsed, raw otherwise).
_LATEST_AT_CLIENT = _latest_punch(Punch.client_id == bindparam("client"))
_LATEST_WITHHELD = _latest_punch(Punch.client_id.is_(None), Punch.caller_withheld.is_(True))
_LATEST_FROM_NUMBER = _latest_punch(
    Punch.client_id.is_(None),
    or_(
        Punch.caller_e164 == bindparam("e164"),
        and_(Punch.caller_e164.is_(None), Punch.caller_raw == bindparam("raw")),
    ),
)

# The journal's statements, built once: a statement built per call costs its cache key (a
# walk of the whole statement) on every execution, more than the rest of its execution.
_UPDATE_CALL = update(Call).where(Call.id == bindparam("call_row"))
_INSERT_EVENTS = insert(CallEvent)

_FAILING_CALLERS = (
    select(CodeFailure.caller_e164).where(CodeFailure.at > bindparam("since")).distinct()
)

_RECENT_FAILURES = select(CodeFailure.at, CodeFailure.what).where(
    CodeFailure.caller_e164 == bindparam("caller"), CodeFailure.at > bindparam("since")
)


@dataclasses.dataclass(frozen=True)
class _Statements:
    """Statements built once per dialect: building one costs more than running it."""

    insert_call: Any
    insert_punch: Any


_STATEMENTS: dict[str, _Statements] = {}


def statements(conn: Connection) -> _Statements:
    """The call and punch inserts that do nothing on a conflict, for this connection."""
    return _statements(conn)


def _statements(conn: Connection) -> _Statements:
    built = _STATEMENTS.get(conn.dialect.name)
    if built is None:
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        # INSERT … ON CONFLICT DO NOTHING: a replay finds the row instead of failing on it.
        built = _Statements(
            insert_call=dialect_insert(Call)
            .on_conflict_do_nothing(index_elements=["origin", "call_key"])
            .returning(Call.id),
            insert_punch=dialect_insert(Punch)
            .on_conflict_do_nothing(index_elements=["origin", "call_key"])
            .returning(Punch.id, Punch.company_id, Punch.kind, Punch.at),
        )
        _STATEMENTS[conn.dialect.name] = built
    return built
