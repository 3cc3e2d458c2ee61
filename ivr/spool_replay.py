"""Copying a worker's spool (``ivr.spool``) to the database once it answers again.

Entries go in the order they were written, a batch per transaction, and leave the spool only
once that transaction has committed: a crash in between replays them again, so every entry is
idempotent —

- calls and punches are inserted with ``ON CONFLICT (origin, call_key) DO NOTHING``; when the
  punch is already there (a database write that timed out for the call but committed later),
  the spooled kind and time win: they are what the carer heard;
- a correction stores the resulting kind, not "flip it", so applying it twice changes nothing;
- call events are inserted with ``ON CONFLICT (call_id, seq) DO NOTHING``;
- a code failure is skipped when the same caller, time and reason is already stored.

An error that says the database is unreachable or too slow stops the replay (the entry stays
first in line); any other error (the database refuses the entry for good, say a carer deleted
since) sets that entry aside in the spool's ``dead`` table, logged, so it holds nothing back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from ivr.call_record import Clock
from ivr.call_store import CallStore, mark_client_absent, statements
from ivr.spool import Spool, SpoolEntry
from reconciliation.store import reconcile_after_punches
from telegestion.model import Call, CallEvent, CodeFailure, Punch

log = logging.getLogger(__name__)


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means "unreachable or too slow" (retry later) rather than
    "this statement is wrong" (retrying changes nothing)."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclasses.dataclass
class ReplayOutcome:
    replayed: int = 0
    set_aside: int = 0
    #: the outage error that stopped the replay, if any
    stopped_by: BaseException | None = None


def _insert_ignoring(conn: Connection, model: Any, index: list[str]) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(model).on_conflict_do_nothing(index_elements=index)


def _ensure_call(conn: Connection, row: dict[str, Any]) -> int:
    call_id = conn.execute(statements(conn).insert_call, row).scalar()
    if call_id is None:
        call_id = conn.execute(
            select(Call.id).where(Call.origin == row["origin"], Call.call_key == row["call_key"])
        ).scalar_one()
    return int(call_id)


def _punch_where(entry: SpoolEntry) -> Any:
    return (Punch.origin == entry.origin) & (Punch.call_key == entry.call_key)


class _Refused(Exception):
    """An entry of a batch the database refuses for good: the batch is replayed one by one."""


class Replayer:
    """Replays one spool into the database of ``store`` (one thread at a time).

    A batch of entries goes in one transaction, then leaves the spool in one local commit,
    and its punches are reconciled in one incremental run: a worker back from an outage must
    drain its spool much faster than new calls fill it. Only when the database refuses an
    entry of the batch for good is the batch replayed entry by entry, so the refused one can
    be set aside without holding back the others.
    """

    def __init__(
        self,
        store: CallStore,
        spool: Spool,
        *,
        clock: Clock | None = None,
        on_done: Callable[[list[SpoolEntry]], None] | None = None,
    ) -> None:
        """``on_done`` hears of the entries that left the spool (replayed or set aside)."""
        self.store = store
        self.spool = spool
        self.on_done = on_done
        self.clock = clock or store.clock
        self._replay: dict[str, Callable[[Connection, SpoolEntry], None]] = {
            "punch": self._punch,
            "correct": self._correct,
            "absent": self._absent,
            "tasks": self._tasks,
            "code_failure": self._code_failure,
            "journal": self._journal,
        }

    def replay(self, limit: int = 200) -> ReplayOutcome:
        """Replay up to ``limit`` entries, oldest first; then reconcile the calls they touched."""
        entries = self.spool.entries(limit)
        if not entries:
            return ReplayOutcome()
        try:
            outcome = self._replay_batch(entries)
        except _Refused:
            outcome = self._replay_one_by_one(entries)
        done = entries[: outcome.replayed + outcome.set_aside]
        if self.on_done is not None:
            self.on_done(done)
        touched = {
            (entry.origin, entry.call_key): None for entry in done if entry.kind != "code_failure"
        }
        self._reconcile(list(touched))
        return outcome

    def _replay_batch(self, entries: list[SpoolEntry]) -> ReplayOutcome:
        outcome = ReplayOutcome()
        try:
            with self.store.engine.begin() as conn:
                for entry in entries:
                    try:
                        self._replay[entry.kind](conn, entry)
                    except SQLAlchemyError as exc:
                        if is_outage(exc):
                            raise
                        raise _Refused from exc
                    except (LookupError, ValueError, TypeError) as exc:
                        raise _Refused from exc
        except SQLAlchemyError as exc:
            if not is_outage(exc):
                raise _Refused from exc
            outcome.stopped_by = exc
            return outcome
        self.spool.remove([entry.seq for entry in entries])
        outcome.replayed = len(entries)
        return outcome

    def _replay_one_by_one(self, entries: list[SpoolEntry]) -> ReplayOutcome:
        outcome = ReplayOutcome()
        for entry in entries:
            try:
                with self.store.engine.begin() as conn:
                    self._replay[entry.kind](conn, entry)
            except SQLAlchemyError as exc:
                if is_outage(exc):
                    outcome.stopped_by = exc
                    break
                log.error(
                    "spool entry %s (%s of call %s/%s) refused by the database, set aside: %s",
                    entry.seq,
                    entry.kind,
                    entry.origin,
                    entry.call_key,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                )
                self.spool.set_aside(entry, f"{type(exc).__name__}: {exc}")
                outcome.set_aside += 1
                continue
            except (LookupError, ValueError, TypeError) as exc:  # a malformed entry
                log.error("spool entry %s cannot be replayed, set aside: %r", entry.seq, exc)
                self.spool.set_aside(entry, f"{type(exc).__name__}: {exc}")
                outcome.set_aside += 1
                continue
            self.spool.remove([entry.seq])
            outcome.replayed += 1
        return outcome

    def _reconcile(self, calls: list[tuple[str, str]]) -> None:
        """Reconcile the punches of the replayed calls, all in one incremental run."""
        if not calls:
            return
        try:
            with self.store.engine.connect() as conn:
                punch_ids = list(_punch_ids(conn, calls).values())
            reconcile_after_punches(self.store.engine, punch_ids, now=self.clock())
        except Exception:
            log.exception("could not reconcile %d replayed calls", len(calls))

    # --- one entry each, inside the caller's transaction ----------------------------------

    def _punch(self, conn: Connection, entry: SpoolEntry) -> None:
        values = dict(entry.payload["punch"])
        values["call_id"] = _ensure_call(conn, entry.payload["call"])
        stored = conn.execute(statements(conn).insert_punch, values).first()
        if stored is None:
            conn.execute(
                update(Punch)
                .where(_punch_where(entry))
                .values(
                    kind=values["kind"],
                    original_kind=None,
                    at=values["at"],
                    updated_at=self.clock(),
                )
            )

    def _correct(self, conn: Connection, entry: SpoolEntry) -> None:
        conn.execute(
            update(Punch)
            .where(_punch_where(entry))
            .values(
                kind=entry.payload["kind"],
                original_kind=entry.payload["original_kind"],
                updated_at=self.clock(),
            )
        )

    def _absent(self, conn: Connection, entry: SpoolEntry) -> None:
        with _session_on(conn) as session:
            punch = session.scalars(select(Punch).where(_punch_where(entry))).first()
            if punch is None:
                raise LookupError(f"no punch for call {entry.origin}/{entry.call_key}")
            mark_client_absent(session, punch)
            session.flush()

    def _tasks(self, conn: Connection, entry: SpoolEntry) -> None:
        conn.execute(
            update(Punch)
            .where(_punch_where(entry))
            .values(task_codes=" ".join(entry.payload["codes"]), updated_at=self.clock())
        )

    def _code_failure(self, conn: Connection, entry: SpoolEntry) -> None:
        p = entry.payload
        with _session_on(conn) as session:
            already = session.scalar(
                select(CodeFailure.id).where(
                    CodeFailure.caller_e164 == p["key"],
                    CodeFailure.at == p["at"],
                    CodeFailure.what == p["reason"],
                )
            )
            if already is not None:
                return
            self.store.store_code_failure(
                session,
                key=p["key"],
                caller_raw=p["caller_raw"],
                at=p["at"],
                reason=p["reason"],
                field=p["field"],
                company_id=p["company_id"],
                called_raw=p["called_raw"],
            )
            session.flush()

    def _journal(self, conn: Connection, entry: SpoolEntry) -> None:
        p = entry.payload
        call_id = _ensure_call(conn, p["call"])
        changes = {k: v for k, v in p["changes"].items() if k != "company_id" or v is not None}
        if changes:
            conn.execute(update(Call).where(Call.id == call_id).values(**changes))
        events = p["events"]
        if events:
            base = int(p.get("seq_base", 0))
            conn.execute(
                _insert_ignoring(conn, CallEvent, ["call_id", "seq"]),
                [
                    {
                        "call_id": call_id,
                        "seq": base + i + 1,
                        "at": at,
                        "kind": kind,
                        "detail": detail,
                    }
                    for i, (at, kind, detail) in enumerate(events)
                ],
            )


def _session_on(conn: Connection) -> Session:
    """An ORM session inside the replay's own transaction: its flushes are part of it, and
    closing it neither commits nor rolls back what the connection holds."""
    return Session(bind=conn, autoflush=False)


def _punch_ids(conn: Connection, calls: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The stored punch of each of these calls (origin, call key), for those that have one."""
    found: dict[tuple[str, str], int] = {}
    by_origin: dict[str, list[str]] = {}
    for origin, call_key in calls:
        by_origin.setdefault(origin, []).append(call_key)
    for origin, keys in by_origin.items():
        for start in range(0, len(keys), 500):
            rows = conn.execute(
                select(Punch.origin, Punch.call_key, Punch.id).where(
                    Punch.origin == origin, Punch.call_key.in_(keys[start : start + 500])
                )
            )
            for row_origin, call_key, pid in rows:
                found[(row_origin, call_key)] = pid
    return found
