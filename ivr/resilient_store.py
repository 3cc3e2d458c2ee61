"""Calls that complete while the database is down or frozen (SPEC: a carer who heard "arrival
recorded" is paid for it, whatever failed).

:class:`ResilientStore` stands where a transport expects a ``CallStore``. While the database
answers, it passes every effect through. When an operation fails with an outage error, or the
FastAGI executor gives up waiting for it (``db_wait_s``, see ``ivr.fastagi_call``), the
database is marked *down* and, until the maintenance loop has seen it answer again and has
replayed the spool:

- lookups are answered from the directory copy (``ivr.directory_copy``), whatever its age;
- lock-out checks are answered from this worker's memory of failed entries: nobody is locked
  out because the database cannot say they are;
- punches get their kind from the recent punches in memory (the same rule,
  ``ivr.punch_rules.punch_kind``), and punches, corrections, absences, task codes, code failures
  and whole call journals are written to the durable spool (``ivr.spool``) — a punch is on disk
  before ``RecordPunch`` returns, so before the readback.

Ordering: once a call has written to the spool, the rest of that call goes there too; and while
the spool holds anything, every call's writes go there, so the replay (``ivr.spool_replay``)
keeps the order in which carers punched. Offline a punch has no database id: the flow gets a
negative local id, mapped back to the call's ``(origin, call_key)``, which keys every entry.

The maintenance step (:meth:`ResilientStore.maintain`, run by ``ivr.server`` on its own thread
about every second) probes a database marked down, replays the spool once it answers, and keeps
the directory copy and its file fresh.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ivr import effects as fx
from ivr import punch_rules
from ivr.call_record import NOT_IN_MEMORY, CallRecord
from ivr.call_store import CallStore, call_row_values, punch_values
from ivr.directory_copy import (
    PUNCH_WINDOW,
    RecentPunch,
    RecentPunches,
    encode,
    load_copy,
    save_copy,
)
from ivr.spool import Spool
from ivr.spool_replay import Replayer, ReplayOutcome, is_outage
from telegestion.model import Punch
from telegestion.phones import is_withheld, to_e164

log = logging.getLogger(__name__)

#: Effects that write: offline they go to the spool.
WRITES = (
    fx.RecordPunch,
    fx.CorrectPunch,
    fx.ReportClientAbsent,
    fx.RecordTaskCodes,
    fx.RecordCodeFailure,
)

COPY_FILE_NAME = "directory.json"

#: How long work given up on before it started is remembered (its thread never came).
_ABANDONED_TTL_S = 600.0


@dataclasses.dataclass
class _PunchState:
    """What this worker knows of a punch of a call in progress, to answer its changes offline."""

    company_id: int
    kind: fx.PunchKind
    original_kind: fx.PunchKind | None
    local_hour: int
    local_minute: int


@dataclasses.dataclass(frozen=True)
class _NotSpooled:
    """A punch whose spool write failed, to take back its count."""

    carer_id: int
    kind: str = "punch"

    @property
    def payload(self) -> dict[str, Any]:
        return {"punch": {"carer_id": self.carer_id}}


def _corrected(state: _PunchState) -> tuple[fx.PunchKind, fx.PunchKind | None]:
    """Kind and original kind after one more correction (``CallStore._correct``'s rule)."""
    original = state.original_kind if state.original_kind is not None else state.kind
    kind = punch_rules.flipped_kind(state.kind)
    return kind, None if kind == original else original


def _caller_number(caller_raw: str | None, caller_e164: str | None) -> str | None:
    """The scope number of a punch as ``ivr.punch_rules.punch_scope`` wants it."""
    if caller_raw is None or is_withheld(caller_raw):
        return None
    return caller_e164 or caller_raw


class ResilientStore:
    """A ``CallStore`` with an offline path; one per worker, shared by its threads.

    Attributes and methods read by metrics and health checks: :attr:`db_state`,
    :attr:`offline_calls`, :attr:`db_timeouts`, :attr:`outages`, :meth:`outage_s`,
    :meth:`backlog`, :meth:`directory_age_s`, :meth:`health`.
    """

    def __init__(
        self,
        store: CallStore,
        spool: Spool,
        *,
        copy_path: Path | None = None,
        retry_s: float = 5.0,
        copy_interval_s: float = 30.0,
        replay_batch: int = 200,
    ) -> None:
        self.store = store
        self.spool = spool
        self.copy_path = copy_path if copy_path is not None else spool.directory / COPY_FILE_NAME
        self.retry_s = retry_s
        self.copy_interval_s = copy_interval_s
        self.replay_batch = replay_batch
        self.replayer = Replayer(store, spool, on_done=self._replayed)
        self.recent = RecentPunches()
        self._lock = threading.Lock()
        self._down = False
        #: an outage happened and the spool has not been empty since (for the log line)
        self._behind = False
        self._down_since: float | None = None
        self._probe_due = 0.0
        self._copy_due = 0.0
        self._saved_copy: bytes | None = None
        self._window_first_id: int | None = None
        self._sticky: set[tuple[str, str]] = set()
        # Carers with punches in the spool the database has not seen: their next punch is
        # spooled too, since its kind depends on them; everyone else's goes to the database
        # as soon as it answers, so the spool drains while calls keep coming.
        self._spooled_carers: collections.Counter[int] = collections.Counter()
        self._journaled: set[tuple[str, str]] = set()
        # Database-path operations under way, by the id of their effect (or summary): True
        # once the executor gave up waiting and ran the offline path instead, so that the late
        # database path neither answers a second time nor spools a second time.
        self._in_flight: dict[int, bool] = {}
        # Work given up on before a database thread even picked it up (a frozen database holds
        # every thread): kept, with the object itself so its id stays unique, until that thread
        # gets to it and drops it; purged after ``_ABANDONED_TTL_S`` in case it never does.
        self._abandoned_early: dict[int, tuple[object, float]] = {}
        # The time a code failure under way on the database path was given: a fallback spools
        # the same one, so the replay knows a late write of it for the same failure.
        self._failure_at: dict[int, dt.datetime] = {}
        self._punches: dict[tuple[str, str], dict[int, _PunchState]] = {}
        self._failures: dict[str, list[punch_rules.CodeFailure]] = {}
        #: calls that wrote to the spool since start-up
        self.offline_calls = 0
        #: database operations the executor stopped waiting for (``db_wait_s``)
        self.db_timeouts = 0
        #: outages seen since start-up (up -> down transitions)
        self.outages = 0
        #: the last error that marked the database down, for logs and /healthz
        self.last_error: str | None = None

    # --- what a transport reads of a CallStore ---------------------------------------------

    @property
    def default_region(self) -> str:
        return self.store.default_region

    @property
    def engine(self) -> Any:
        return self.store.engine

    @property
    def clock(self) -> Any:
        return self.store.clock

    # --- state ------------------------------------------------------------------------------

    @property
    def db_state(self) -> str:
        """``"up"`` or ``"down"`` (down from the first failure until a probe succeeds)."""
        return "down" if self._down else "up"

    def backlog(self) -> int:
        return self.spool.backlog()

    def outage_s(self) -> float:
        """Seconds since the current outage began; 0 when the database is up."""
        since = self._down_since
        return 0.0 if since is None else time.monotonic() - since

    def directory_age_s(self) -> float | None:
        """Seconds since the directory in memory was read from the database (``None``: never)."""
        fetched = self.store.directory_fetched_at
        if fetched is None:
            return None
        return max(0.0, (self.store.clock() - fetched).total_seconds())

    def health(self) -> dict[str, Any]:
        """Everything above in one JSON-ready dict."""
        age = self.directory_age_s()
        return {
            "db_state": self.db_state,
            "outage_s": round(self.outage_s(), 3),
            "outages": self.outages,
            "offline_calls": self.offline_calls,
            "db_timeouts": self.db_timeouts,
            "spool_backlog": self.spool.backlog(),
            "spool_oldest_age_s": self.spool.oldest_age_s(),
            "spool_appended_total": self.spool.appended_total,
            "spool_replayed_total": self.spool.replayed_total,
            "spool_set_aside": self.spool.set_aside_count(),
            "spool_ok": self.spool.ok(),
            "directory_age_s": None if age is None else round(age, 3),
            "last_error": self.last_error,
        }

    def mark_down(self, why: object) -> None:
        """The database failed or was too slow: go offline, probe again in ``retry_s``."""
        # The first line only: the rest of a driver error is the statement and its parameters
        # (callers' numbers), which belong neither on /healthz nor in this log line.
        first_line = str(why).strip().splitlines()[0][:300] if str(why).strip() else repr(why)
        with self._lock:
            self._probe_due = time.monotonic() + self.retry_s
            self.last_error = first_line
            if self._down:
                return
            self._down = True
            self._behind = True
            self._down_since = time.monotonic()
            self.outages += 1
        log.error(
            "database unavailable (%s): calls go on from the local directory copy, "
            "writes go to the spool %s (backlog %d)",
            first_line,
            self.spool.path,
            self.spool.backlog(),
        )

    def _mark_up(self) -> None:
        with self._lock:
            if not self._down:
                return
            lasted = self.outage_s()
            self._down = False
            self._down_since = None
        log.warning(
            "database back after %.1f s; %d spool entries to replay",
            lasted,
            self.spool.backlog(),
        )

    def offline_first(self, effect: fx.Effect | None, call: CallRecord) -> bool:
        """Whether this effect (``None``: the call's journal at its end) must skip the database:
        it is down, or the call or the spool has writes the database has not seen yet."""
        if self._down or (call.origin, call.call_key) in self._sticky:
            return True
        if isinstance(effect, fx.RecordPunch):
            with self._lock:
                return self._spooled_carers[effect.carer_id] > 0
        return False

    def _replayed(self, entries: list[Any]) -> None:
        """Entries that left the spool (replayed or set aside): their carers' next punches may
        go to the database again."""
        with self._lock:
            for entry in entries:
                if entry.kind == "punch":
                    carer = entry.payload["punch"]["carer_id"]
                    self._spooled_carers[carer] -= 1
                    if self._spooled_carers[carer] <= 0:
                        del self._spooled_carers[carer]

    # --- start-up ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the saved directory copy and this spool's punches, before the first call: a
        worker started during an outage answers from them."""
        loaded = load_copy(self.copy_path)
        if loaded is not None:
            copy, punches = loaded
            self.store.install_directory(copy)
            self.recent.replace_from_db(punches, self.store.clock())
            log.info(
                "directory copy %s loaded (%d carers, %d recent punches)",
                self.copy_path,
                len(copy.carers),
                len(punches),
            )
        for entry in self.spool.entries(limit=1_000_000, kinds=("punch", "correct", "absent")):
            key = (entry.origin, entry.call_key)
            if entry.kind == "punch":
                p = entry.payload["punch"]
                with self._lock:
                    self._spooled_carers[p["carer_id"]] += 1
                self.recent.add_local(
                    RecentPunch(
                        entry.origin,
                        entry.call_key,
                        p["carer_id"],
                        p["client_id"],
                        _caller_number(p["caller_raw"], p["caller_e164"]),
                        p["kind"],
                        p["at"],
                    )
                )
            elif entry.kind == "correct":
                self.recent.update_local(key, kind=entry.payload["kind"])
            else:
                self.recent.update_local(key, client_absent=True)
        if self.spool.backlog():
            self._behind = True
            log.warning("spool %s holds %d entries to replay", self.spool.path, self.backlog())

    # --- world effects ----------------------------------------------------------------------

    def answer_from_memory(self, effect: fx.Effect, call: CallRecord) -> fx.Reply | object:
        """Like ``CallStore.answer_from_memory``; offline, lookups and lock-out checks never
        need a thread."""
        if self.offline_first(effect, call) and not isinstance(effect, WRITES):
            return self._lookup_offline(effect, call)
        return self.store.answer_from_memory(effect, call)

    def _lookup_offline(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """A lookup from the directory copy. With no copy at all (a first start during an
        outage) nothing is "unknown": the call fails as a technical problem, and no code
        failure is counted against the caller for a code the worker could not check."""
        if isinstance(effect, fx.CheckLockout):
            return self._lockout_offline(effect)
        if self.store.directory_fetched_at is None:
            return fx.Failure("database unavailable and no directory copy")
        reply = self.store.answer_from_memory(effect, call, stale_ok=True)
        if reply is NOT_IN_MEMORY:
            return fx.Failure("database unavailable")
        return reply  # type: ignore[return-value]

    def answer(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """The database path (a database thread); falls back to the offline path itself when
        the database fails with an outage error."""
        if not self._start(effect):
            return fx.Failure("abandoned")
        if self.offline_first(effect, call):
            self._end(effect)
            return self.answer_offline(effect, call)
        try:
            reply = self._answer_online(effect, call)
        except SQLAlchemyError as exc:
            abandoned = self._end(effect)
            if not is_outage(exc):
                log.error(
                    "database error on %s for call %s: %s",
                    type(effect).__name__,
                    call.call_key,
                    exc,
                )
                return fx.Failure(f"database: {type(exc).__name__}")
            self.mark_down(exc)
            if abandoned:  # the offline path has answered already
                return fx.Failure("abandoned")
            return self.answer_offline(effect, call)
        except BaseException:
            self._end(effect)
            raise
        if not self._end(effect):
            self._remember(effect, call, reply)
        return reply

    def _answer_online(self, effect: fx.Effect, call: CallRecord) -> fx.Reply:
        """The database's answer; a correction is written as its result (the kind the carer
        last heard, flipped), so that a late write racing the spool's replay converges."""
        if isinstance(effect, fx.CorrectPunch):
            state = self._punches.get((call.origin, call.call_key), {}).get(effect.punch_id)
            if state is not None:
                kind, original_kind = _corrected(state)
                return self.store.set_punch_kind(effect.punch_id, call, kind, original_kind)
        if isinstance(effect, fx.RecordCodeFailure):
            at = self.store.clock()
            with self._lock:
                self._failure_at[id(effect)] = at
            try:
                return self.store.record_code_failure(effect, call, at)
            finally:
                with self._lock:
                    self._failure_at.pop(id(effect), None)
        return self.store.answer_or_raise(effect, call)

    def _start(self, work: object) -> bool:
        """Register database work about to run; False when the executor has already given up
        on it and answered from the offline path (then it must do nothing at all)."""
        with self._lock:
            if self._abandoned_early.pop(id(work), None) is not None:
                return False
            self._in_flight[id(work)] = False
            return True

    def _end(self, work: object) -> bool:
        """Whether the executor gave up on this database work meanwhile."""
        with self._lock:
            return self._in_flight.pop(id(work), False)

    def _abandon(self, work: object) -> None:
        with self._lock:
            if id(work) in self._in_flight:
                self._in_flight[id(work)] = True
            else:
                self._abandoned_early[id(work)] = (work, time.monotonic())

    def _purge_abandoned(self) -> None:
        """Forget work given up on whose database thread never came (it had already ended)."""
        limit = time.monotonic() - _ABANDONED_TTL_S
        with self._lock:
            for key, (_, since) in list(self._abandoned_early.items()):
                if since < limit:
                    del self._abandoned_early[key]

    def _stuck_work(self) -> bool:
        """Whether database work the executor gave up on is still running on its thread."""
        with self._lock:
            return any(self._in_flight.values())

    def journaled_online(self, call: CallRecord) -> bool:
        """Whether this call's journal went to the database, so it is reconciled now (a
        spooled call is reconciled by the replay); memory only, so a call whose database is
        frozen never waits for a database thread just to learn there is nothing to do."""
        with self._lock:
            return (call.origin, call.call_key) in self._journaled

    def answer_offline(self, effect: fx.Effect, call: CallRecord, why: str = "down") -> fx.Reply:
        """The offline path (the spool's own threads, never a database thread). ``why`` is
        ``"timeout"`` when the executor stopped waiting for the database path."""
        if why == "timeout":
            self._abandon(effect)
            self.db_timeouts += 1
            self.mark_down(f"no answer within the database wait ({type(effect).__name__})")
        if not isinstance(effect, WRITES):
            return self._lookup_offline(effect, call)
        self._stick(call)
        if isinstance(effect, fx.RecordPunch):
            return self._punch_offline(effect, call)
        if isinstance(effect, fx.CorrectPunch):
            return self._correct_offline(effect, call)
        if isinstance(effect, fx.ReportClientAbsent):
            self._state(call, effect.punch_id)
            self.spool.append("absent", call.origin, call.call_key, {})
            self.recent.update_local((call.origin, call.call_key), client_absent=True)
            log.warning("client absent reported on spooled punch of call %s", call.call_key)
            return None
        if isinstance(effect, fx.RecordTaskCodes):
            self._state(call, effect.punch_id)
            self.spool.append("tasks", call.origin, call.call_key, {"codes": list(effect.codes)})
            return None
        assert isinstance(effect, fx.RecordCodeFailure)
        return self._code_failure_offline(effect, call)

    def finish(self, call: CallRecord, summary: fx.CallSummary) -> None:
        """The journal at the end of the call (a database thread); never raises.

        Unlike ``CallStore.finish`` it does not reconcile: the executor's wait for the database
        covers this journal only, and reconciliation (which may take its time) follows in
        :meth:`reconcile_after_finish`, waited for without a bound.
        """
        if not self._start(summary):
            return  # the journal went to the spool already
        if self.offline_first(None, call):
            self._end(summary)
            self.finish_offline(call, summary)
            return
        try:
            self.store.write_final(call, summary)
        except SQLAlchemyError as exc:
            abandoned = self._end(summary)
            if is_outage(exc):
                self.mark_down(exc)
                if not abandoned:
                    self.finish_offline(call, summary)
                return
            log.error("could not journal call %s/%s: %s", call.origin, call.call_key, exc)
        except BaseException:
            self._end(summary)
            raise
        else:
            if self._end(summary):
                return  # the journal went to the spool meanwhile
        with self._lock:
            self._journaled.add((call.origin, call.call_key))
        self._forget(call)

    def reconcile_after_finish(self, call: CallRecord) -> None:
        """Reconcile a call journaled in the database (a spooled call is reconciled by the
        replay); never raises."""
        key = (call.origin, call.call_key)
        with self._lock:
            if key not in self._journaled:
                return
            self._journaled.discard(key)
        if not self._down:
            self.store._reconcile(call)

    def finish_offline(self, call: CallRecord, summary: fx.CallSummary, why: str = "down") -> None:
        """The journal to the spool; never raises."""
        if why == "timeout":
            self._abandon(summary)
            self.db_timeouts += 1
            self.mark_down("no answer within the database wait (the call's journal)")
        self._stick(call)
        changes: dict[str, Any] = {
            "outcome": summary.outcome,
            "hangup_step": summary.hangup_step,
            "carer_id": summary.carer_id,
            "client_id": summary.client_id,
            "company_code_keyed": summary.company_code_keyed,
            "carer_code_keyed": summary.carer_code_keyed,
            "company_id": summary.company_id if summary.company_id is not None else call.company_id,
            "ended_at": self.store.clock(),
        }
        payload = {
            "call": call_row_values(call),
            "changes": changes,
            "events": [[at, kind, detail] for at, kind, detail in list(call.events)],
            "seq_base": call.seq_base if call.call_id is not None else 0,
        }
        try:
            self.spool.append("journal", call.origin, call.call_key, payload)
        except Exception:
            log.exception("could not spool the journal of call %s/%s", call.origin, call.call_key)
        self._forget(call)

    # --- the offline answers ----------------------------------------------------------------

    def _stick(self, call: CallRecord) -> None:
        key = (call.origin, call.call_key)
        with self._lock:
            if key in self._sticky:
                return
            self._sticky.add(key)
            self.offline_calls += 1

    def _forget(self, call: CallRecord) -> None:
        key = (call.origin, call.call_key)
        with self._lock:
            self._sticky.discard(key)
            self._punches.pop(key, None)

    def _state(self, call: CallRecord, punch_id: int) -> _PunchState:
        state = self._punches.get((call.origin, call.call_key), {}).get(punch_id)
        if state is None:
            raise LookupError(f"punch {punch_id} is not this call's")
        return state

    def _remember(self, effect: fx.Effect, call: CallRecord, reply: fx.Reply) -> None:
        """Keep what an offline answer may need later of what the database just answered."""
        key = (call.origin, call.call_key)
        if key in self._sticky:
            return  # the call went offline meanwhile: the spool has the last word
        if isinstance(effect, fx.RecordPunch) and isinstance(reply, fx.PunchRecorded):
            with self._lock:
                self._punches.setdefault(key, {})[reply.punch_id] = _PunchState(
                    effect.company_id, reply.kind, None, reply.local_hour, reply.local_minute
                )
            caller_e164 = to_e164(effect.caller_raw, self.store.company_region(effect.company_id))
            self.recent.add_local(
                RecentPunch(
                    call.origin,
                    call.call_key,
                    effect.carer_id,
                    effect.client_id,
                    _caller_number(effect.caller_raw, caller_e164),
                    reply.kind,
                    self.store.clock(),
                )
            )
        elif isinstance(effect, fx.CorrectPunch) and isinstance(reply, fx.PunchRecorded):
            state = self._punches.get(key, {}).get(effect.punch_id)
            if state is not None:
                state.kind, state.original_kind = _corrected(state)
            self.recent.update_local(key, kind=reply.kind)
        elif isinstance(effect, fx.ReportClientAbsent):
            self.recent.update_local(key, client_absent=True)
        elif isinstance(effect, fx.RecordCodeFailure):
            self._remember_failure(effect.caller_raw, effect.reason)

    def _punch_offline(self, effect: fx.RecordPunch, call: CallRecord) -> fx.PunchRecorded:
        now = self.store.clock()
        caller_e164 = to_e164(effect.caller_raw, self.store.company_region(effect.company_id))
        number = _caller_number(effect.caller_raw, caller_e164)
        scope = punch_rules.punch_scope(effect.carer_id, effect.client_id, number)
        kind = punch_rules.punch_kind(self.recent.latest(scope, now), now)
        payload = {
            "call": call_row_values(call),
            "punch": punch_values(effect, call, kind, now, caller_e164),
        }
        with self._lock:  # before the append: a replay may remove the entry at once
            self._spooled_carers[effect.carer_id] += 1
        try:
            seq = self.spool.append("punch", call.origin, call.call_key, payload)
        except BaseException:
            self._replayed([_NotSpooled(effect.carer_id)])
            raise
        local_id = -seq
        local = self.store._local(effect.company_id, now)
        with self._lock:
            self._punches.setdefault((call.origin, call.call_key), {})[local_id] = _PunchState(
                effect.company_id, kind, None, local.hour, local.minute
            )
        self.recent.add_local(
            RecentPunch(
                call.origin, call.call_key, effect.carer_id, effect.client_id, number, kind, now
            )
        )
        log.info("punch of call %s spooled as %s (local id %d)", call.call_key, kind, local_id)
        return fx.PunchRecorded(local_id, kind, local.hour, local.minute)

    def _correct_offline(self, effect: fx.CorrectPunch, call: CallRecord) -> fx.PunchRecorded:
        state = self._state(call, effect.punch_id)
        kind, original_kind = _corrected(state)
        self.spool.append(
            "correct",
            call.origin,
            call.call_key,
            {"kind": kind, "original_kind": original_kind},
        )
        state.kind, state.original_kind = kind, original_kind
        self.recent.update_local((call.origin, call.call_key), kind=kind)
        return fx.PunchRecorded(effect.punch_id, kind, state.local_hour, state.local_minute)

    def _code_failure_offline(self, effect: fx.RecordCodeFailure, call: CallRecord) -> bool:
        key = self.store._lockout_key(effect.caller_raw, self.store.default_region)
        if key is None:
            return False
        with self._lock:
            now = self._failure_at.get(id(effect)) or self.store.clock()
        self.spool.append(
            "code_failure",
            call.origin,
            call.call_key,
            {
                "key": key,
                "caller_raw": effect.caller_raw,
                "at": now,
                "reason": effect.reason,
                "field": effect.what,
                "company_id": call.company_id,
                "called_raw": call.called_raw,
            },
        )
        failures = self._remember_failure(effect.caller_raw, effect.reason, now)
        return punch_rules.is_locked_out(effect.caller_raw, failures, now)

    def _remember_failure(
        self, caller_raw: str, reason: str, at: dt.datetime | None = None
    ) -> list[punch_rules.CodeFailure]:
        key = self.store._lockout_key(caller_raw, self.store.default_region)
        if key is None:
            return []
        now = at or self.store.clock()
        since = now - punch_rules.LOCKOUT_WINDOW - punch_rules.LOCKOUT_DURATION
        with self._lock:
            kept = [f for f in self._failures.get(key, []) if f.at > since]
            kept.append(punch_rules.CodeFailure(now, reason))
            self._failures[key] = kept
            return list(kept)

    def _lockout_offline(self, effect: fx.CheckLockout) -> bool:
        """From the failures this worker saw: never a lock-out for want of a database."""
        key = self.store._lockout_key(effect.caller_raw, self.store.default_region)
        if key is None:
            return False
        with self._lock:
            failures = list(self._failures.get(key, ()))
        return punch_rules.is_locked_out(effect.caller_raw, failures, self.store.clock())

    # --- maintenance (its own thread) -------------------------------------------------------

    def maintain(self, time_budget_s: float = 2.0) -> None:
        """One step of the maintenance loop: probe, replay, refresh the copy. Never raises."""
        try:
            self._maintain(time_budget_s)
        except Exception:
            log.exception("spool maintenance failed")

    def _maintain(self, time_budget_s: float) -> None:
        self._purge_abandoned()
        if self._down:
            if time.monotonic() < self._probe_due:
                return
            if self._stuck_work():
                # ``SELECT 1`` may answer while work given up on still hangs on a database
                # thread (a lock, a frozen backend): the database is still too slow for calls.
                return
            if not self.probe():
                return
            self._mark_up()
        if self.spool.backlog():
            self.replay(time_budget_s)
            if self._down:
                return
        if time.monotonic() >= self._copy_due:
            self.refresh_copy()

    def probe(self) -> bool:
        """Whether the database answers ``SELECT 1`` now; marks it down when it does not.

        A connection the pool kept from before a database restart fails once (and the pool
        drops every connection as old as it): one more try on a new connection says the truth.
        """
        for attempt in (1, 2):
            try:
                with self.store.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            except DBAPIError as exc:
                if attempt == 1 and exc.connection_invalidated:
                    continue
                self.mark_down(exc)
                return False
            except SQLAlchemyError as exc:
                self.mark_down(exc)
                return False
        return False

    def replay(self, time_budget_s: float = 2.0) -> ReplayOutcome:
        """Replay the spool in batches until it is empty, the database fails or the budget is
        spent (the loop comes back a second later)."""
        total = ReplayOutcome()
        deadline = time.monotonic() + time_budget_s
        while self.spool.backlog() and time.monotonic() < deadline:
            outcome = self.replayer.replay(self.replay_batch)
            total.replayed += outcome.replayed
            total.set_aside += outcome.set_aside
            if outcome.stopped_by is not None:
                total.stopped_by = outcome.stopped_by
                self.mark_down(outcome.stopped_by)
                break
            if not outcome.replayed and not outcome.set_aside:
                break
        if total.replayed or total.set_aside:
            left = self.spool.backlog()
            log.info(
                "spool replay: %d entries replayed, %d set aside, %d left",
                total.replayed,
                total.set_aside,
                left,
            )
            if not left and not self._down and self._behind:
                self._behind = False
                log.warning("spool replayed: the database has caught up")
        return total

    def refresh_copy(self) -> None:
        """Reload the directory and the recent punches, and save them when they changed."""
        try:
            self.store._refresh_directory(force=True)
            self._load_recent_punches()
        except SQLAlchemyError as exc:
            if is_outage(exc):
                self.mark_down(exc)
            else:
                log.error("could not refresh the directory copy: %s", exc)
            return
        self._copy_due = time.monotonic() + self.copy_interval_s
        copy = self.store.directory_copy()
        if copy is None:
            return
        content = encode(copy, self.recent.snapshot())
        if content == self._saved_copy:
            return
        try:
            save_copy(self.copy_path, content)
        except OSError as exc:
            log.error("could not save the directory copy %s: %s", self.copy_path, exc)
            return
        self._saved_copy = content

    def _load_recent_punches(self) -> None:
        """The punches of the last ``PUNCH_WINDOW``, read by primary key after the first load
        (``at`` has no index of its own)."""
        now = self.store.clock()
        query = select(
            Punch.id,
            Punch.origin,
            Punch.call_key,
            Punch.carer_id,
            Punch.client_id,
            Punch.caller_e164,
            Punch.caller_raw,
            Punch.caller_withheld,
            Punch.kind,
            Punch.at,
            Punch.status,
        ).where(Punch.at > now - PUNCH_WINDOW)
        if self._window_first_id is not None:
            query = query.where(Punch.id >= self._window_first_id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
            if rows:
                self._window_first_id = min(r.id for r in rows)
            else:
                self._window_first_id = (conn.execute(select(func.max(Punch.id))).scalar() or 0) + 1
        self.recent.replace_from_db(
            (
                RecentPunch(
                    r.origin,
                    r.call_key,
                    r.carer_id,
                    r.client_id,
                    None if r.caller_withheld else _caller_number(r.caller_raw, r.caller_e164),
                    "arrival" if r.kind == "arrival" else "departure",
                    r.at,
                    r.status == "client_absent",
                )
                for r in rows
            ),
            now,
        )
