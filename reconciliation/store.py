"""Reconciliation on the database: load a scope, run the rules, write the result, one transaction.

The entry points, by who calls them:

- :func:`reconcile_after_punches` / :func:`reconcile_after_call` — a punch was stored (IVR,
  call-back, import): reconcile every carer-day it can change (``scope.refresh_after_punch``),
  at once, so coordinators see anomalies while the day runs;
- :func:`reconcile_after_import` — after ``telegestion import punches|planning``;
- :func:`reconcile_after_planned` — planning was imported or changed;
- :func:`reconcile_carer_days` — any list of ``(carer_id, local day)``, for other engineers;
- :func:`reconcile_range` — ``telegestion reconcile``: any range of days, in chunks of carers;
- :func:`reconcile_due` — the minute task of ``telegestion serve``: carer-days where time alone
  changes the result (a LATE_START_ALERT to raise, a NO_PUNCH to take over from it, an arrival
  that reaches ``max_visit_hours``).

All paths reconcile whole carer-days with the same loader, rules and writer, so an incremental
run and a batch over the same range leave the same rows. Two workers on the same carer-day
cannot interleave: on PostgreSQL a run locks its carers' rows (``SELECT … FOR NO KEY UPDATE``,
in id order, before reading anything); SQLite has one writer at a time (``BEGIN IMMEDIATE``).
A run that loses a deadlock is retried.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from reconciliation.db_load import Companies, Loader, load_companies
from reconciliation.db_write import Owned, WriteCounts, Writer
from reconciliation.engine import reconcile
from reconciliation.model import CarerDay, PunchIn, ResolutionIn
from reconciliation.scope import (
    ONE_DAY,
    day_of,
    refresh_after_planned,
    refresh_after_punch,
)
from reconciliation.sql_access import STATEMENT_EXISTS, STATEMENT_GONE, Sql, begin
from telegestion.model import utcnow as utc_now

log = logging.getLogger(__name__)

#: Carers per transaction in a batch: a few hundred keeps a month's chunk well under 1 GB.
CHUNK_CARERS = 250
#: Carer-days per transaction on the incremental paths before they are split by carers.
MAX_CARER_DAYS = 4000
_RETRIES = 4

_T = TypeVar("_T")


@dataclass(slots=True)
class RunReport:
    """What one call reconciled and wrote, and where its time went (seconds: reading the
    neighbourhood, running the rules, diffing and writing)."""

    carer_days: int = 0
    transactions: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    load_s: float = 0.0
    rules_s: float = 0.0
    write_s: float = 0.0
    #: CPU seconds of the rules alone (process time: what a loaded machine does not inflate).
    rules_cpu_s: float = 0.0

    def add(self, other: RunReport) -> None:
        self.carer_days += other.carer_days
        self.transactions += other.transactions
        self.counts.add(other.counts)
        self.load_s += other.load_s
        self.rules_s += other.rules_s
        self.write_s += other.write_s
        self.rules_cpu_s += other.rules_cpu_s

    def __str__(self) -> str:
        c = self.counts
        return (
            f"{self.carer_days} carer-day(s) reconciled: {c.visits_written} visit(s) written,"
            f" {c.visits_deleted} removed; {c.matches_written} match(es) written,"
            f" {c.matches_deleted} removed; {c.realised_updated} intervention(s) updated;"
            f" {c.anomalies_written} anomaly(ies) written, {c.anomalies_closed} closed"
        )


class CarersBusy(Exception):
    """Another run holds these carers longer than the caller was willing to wait."""


def _lock_wait_expired(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "pgcode", None) == "55P03"


def _retryable(exc: DBAPIError) -> bool:
    if getattr(exc.orig, "pgcode", None) in ("40P01", "40001", STATEMENT_GONE, STATEMENT_EXISTS):
        return True
    return "database is locked" in str(exc.orig)


def in_transaction(
    engine: Engine,
    work: Callable[[Sql], _T],
    *,
    batch: bool = False,
    write: bool = True,
    lock_wait_ms: int | None = None,
) -> _T:
    """Run ``work`` in one transaction, retried when it lost a deadlock.

    With ``lock_wait_ms`` (PostgreSQL), waiting longer than that for a lock raises
    :class:`CarersBusy` instead of waiting on: for a caller on a thread that serves calls.
    """
    for attempt in range(_RETRIES + 1):
        try:
            with engine.connect() as conn, conn.begin():
                sql = Sql(conn, prepare=not batch)
                begin(sql, batch=batch, write=write, lock_wait_ms=lock_wait_ms)
                return work(sql)
        except DBAPIError as exc:
            if lock_wait_ms is not None and _lock_wait_expired(exc):
                raise CarersBusy(str(exc.orig)) from exc
            if attempt == _RETRIES or not _retryable(exc):
                raise
            log.info("reconciliation retried after %s", exc.orig)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _lock_carers(sql: Sql, carers: Iterable[int]) -> None:
    """Serialise runs on the same carers. FOR NO KEY UPDATE, not FOR UPDATE: the foreign-key
    checks of a punch being stored for that carer (KEY SHARE) must never wait for a run."""
    if sql.postgres:
        sql.fetch(
            "SELECT id FROM carers WHERE id IN_LIST(:ids) ORDER BY id FOR NO KEY UPDATE",
            ids=sorted(set(carers)),
        )


def run_targets(
    sql: Sql,
    targets: Iterable[CarerDay],
    now: datetime,
    companies: Companies | None = None,
    *,
    company_resolutions: dict[int, list[ResolutionIn]] | None = None,
) -> RunReport:
    """Reconcile and write ``targets`` inside the caller's transaction (``sql``)."""
    by_company: dict[int, set[CarerDay]] = defaultdict(set)
    for target in targets:
        by_company[target.company_id].add(target)
    report = RunReport(transactions=0)
    if not by_company:
        return report
    if companies is None or not set(by_company) <= set(companies.rules):
        companies = load_companies(sql, by_company)
    _lock_carers(sql, {t.carer_id for days in by_company.values() for t in days})
    loader = Loader(sql)
    writer = Writer(sql, now)
    for company_id in sorted(by_company):
        days = by_company[company_id]
        rules = companies.rules[company_id]
        carers = sorted({t.carer_id for t in days})
        started = time.perf_counter()
        snapshot = loader.neighbourhood(
            company_id,
            carers,
            min(t.day for t in days),
            max(t.day for t in days),
            companies.rules,
            company_resolutions=(company_resolutions or {}).get(company_id),
        )
        loaded = time.perf_counter()
        cpu = time.process_time()
        result = reconcile(
            companies.rules,
            snapshot.punches.values(),
            snapshot.planned.values(),
            snapshot.resolutions.values(),
            now,
        )
        ruled = time.perf_counter()
        report.rules_cpu_s += time.process_time() - cpu
        report.counts.add(
            writer.write(Owned(company_id, frozenset(days)), result, snapshot, rules.timezone)
        )
        report.carer_days += len(days)
        report.load_s += loaded - started
        report.rules_s += ruled - loaded
        report.write_s += time.perf_counter() - ruled
    return report


def _split(targets: set[CarerDay]) -> list[set[CarerDay]]:
    """Chunks of whole carers, so that a carer's days are written together."""
    if len(targets) <= MAX_CARER_DAYS:
        return [targets]
    by_carer: dict[tuple[int, int], set[CarerDay]] = defaultdict(set)
    for target in targets:
        by_carer[(target.company_id, target.carer_id)].add(target)
    chunks: list[set[CarerDay]] = [set()]
    for key in sorted(by_carer):
        if len(chunks[-1]) + len(by_carer[key]) > MAX_CARER_DAYS and chunks[-1]:
            chunks.append(set())
        chunks[-1] |= by_carer[key]
    return chunks


def _run_in_chunks(engine: Engine, targets: set[CarerDay], now: datetime) -> RunReport:
    report = RunReport()
    for chunk in _split(targets):
        part = in_transaction(engine, lambda sql, c=chunk: run_targets(sql, c, now))
        part.transactions = 1
        report.add(part)
    return report


# --- incremental ------------------------------------------------------------------------------


def reconcile_carer_days(
    engine: Engine, carer_days: Iterable[tuple[int, date]], *, now: datetime | None = None
) -> RunReport:
    """Reconcile exactly these ``(carer_id, local day)`` pairs (the day in the carer's company
    time zone). Unknown carers are ignored."""
    wanted = sorted(set(carer_days))
    if not wanted:
        return RunReport()
    moment = now or utc_now()

    def work(sql: Sql) -> set[CarerDay]:
        rows = sql.fetch(
            "SELECT id, company_id FROM carers WHERE id IN_LIST(:ids)",
            ids=sorted({c for c, _ in wanted}),
        )
        company_of = dict(rows)
        return {CarerDay(company_of[c], c, d) for c, d in wanted if c in company_of}

    targets = in_transaction(engine, work, write=False)
    return _run_in_chunks(engine, targets, moment)


#: How far from a punch's new time its previous version is looked for (an edited punch).
MOVED_PUNCH_DAYS = 40


def visits_of_punches(
    sql: Sql, punches: Sequence[PunchIn], companies: Companies, days_around: int
) -> list[tuple[int, int, int, int | None, datetime | None, datetime | None, int, int]]:
    """Stored visits that one of these punches opens or closes, found through the carer's days
    (``days_around`` days on each side of each punch's time).

    Rows: (visit id, company, carer, client, start, end, arrival punch, departure punch).
    """
    found = []
    by_carer: dict[tuple[int, int], list[PunchIn]] = defaultdict(list)
    for punch in punches:
        by_carer[(punch.company_id, punch.carer_id)].append(punch)
    for (company_id, carer), own in sorted(by_carer.items()):
        tz = companies.rules[company_id].tz
        days = [day_of(p.at, tz) for p in own]
        ids = [p.id for p in own]
        for row in sql.fetch(
            "SELECT id, company_id, carer_id, client_id, start_at, end_at, arrival_punch_id,"
            " departure_punch_id FROM visits WHERE carer_id = :carer AND day >= :lo"
            " AND day <= :hi AND (arrival_punch_id IN_LIST(:ids)"
            " OR departure_punch_id IN_LIST(:ids))",
            carer=carer,
            lo=min(days) - timedelta(days=days_around),
            hi=max(days) + timedelta(days=days_around),
            ids=ids,
        ):
            found.append(
                (row[0], row[1], row[2], row[3], sql.instant(row[4]), sql.instant(row[5]),
                 row[6], row[7])
            )  # fmt: skip
    return found


def owners_of_matches(sql: Sql, visit_ids: Sequence[int], companies: Companies) -> set[CarerDay]:
    """The carer-days owning the interventions these stored visits are matched to."""
    if not visit_ids:
        return set()
    targets = set()
    for carer, start_raw, company in sql.fetch(
        "SELECT i.carer_id, i.planned_start, i.company_id FROM visit_matches m"
        " JOIN interventions i ON i.id = m.intervention_id WHERE m.visit_id IN_LIST(:ids)",
        ids=list(visit_ids),
    ):
        start = sql.instant(start_raw)
        assert start is not None
        rules = companies.rules.get(company) or load_companies(sql, [company]).rules[company]
        targets.add(CarerDay(company, carer, day_of(start, rules.tz)))
    return targets


def _previous(
    punch_id: int, company: int, carer: int, client: int | None, kind: str, at: datetime
) -> PunchIn:
    """A changed punch as a stored visit says it was (its real id, so that the scope compares
    the carer's visits with it against the visits without it)."""
    return PunchIn(punch_id, company, carer, client, kind, at)  # type: ignore[arg-type]


def _where_punches_were(
    sql: Sql, loader: Loader, punches: Sequence[PunchIn], companies: Companies
) -> set[CarerDay]:
    """Carer-days that hold results about these punches as they were when last reconciled.

    A punch that changed (an import re-run with a new time, a carer's correction) must also
    refresh the days its old version touched: the stored visits naming it, and the anomalies
    about it, say where that was (looked for within :data:`MOVED_PUNCH_DAYS` of its new time).
    """
    targets: set[CarerDay] = set()
    wanted = {p.id for p in punches}
    rows = visits_of_punches(sql, punches, companies, MOVED_PUNCH_DAYS)
    for _vid, company, carer, client, start, end, arrival, departure in rows:
        for punch_id, kind, at in ((arrival, "arrival", start), (departure, "departure", end)):
            if punch_id in wanted and at is not None:
                old = _previous(punch_id, company, carer, client, kind, at)
                targets |= refresh_after_punch(old, companies.rules, loader)
    targets |= owners_of_matches(sql, [r[0] for r in rows], companies)
    for punch in punches:
        day = day_of(punch.at, companies.rules[punch.company_id].tz)
        for owner, day_raw in sql.fetch(
            "SELECT owner_carer_id, owner_day FROM anomalies WHERE owner_carer_id = :carer"
            " AND owner_day >= :lo AND owner_day <= :hi AND punch_id = :punch",
            carer=punch.carer_id,
            lo=day - timedelta(days=MOVED_PUNCH_DAYS),
            hi=day + timedelta(days=MOVED_PUNCH_DAYS),
            punch=punch.id,
        ):
            owned = sql.day(day_raw)
            assert owned is not None
            targets |= {CarerDay(punch.company_id, owner, owned + k * ONE_DAY) for k in (-1, 0, 1)}
    return targets


_EDITED = "updated_at > created_at"


def _targets_after_punches(
    sql: Sql, ids: Sequence[int], edited: Collection[int]
) -> tuple[set[CarerDay], Companies]:
    """What ``scope.refresh_after_punch`` names for each punch; for the ``edited`` ones, also
    where their previous version left results."""
    loader = Loader(sql)
    punches = loader.punches_by_id(ids)
    companies = load_companies(sql, {p.company_id for p in punches})
    targets: set[CarerDay] = set()
    for punch in punches:
        targets |= refresh_after_punch(punch, companies.rules, loader)
    changed = [p for p in punches if p.id in edited]
    if changed:
        targets |= _where_punches_were(sql, loader, changed, companies)
    return targets, companies


def _incremental(
    engine: Engine,
    find: Callable[[Sql], list[tuple[int, bool]]],
    now: datetime,
    lock_wait_ms: int | None = None,
) -> RunReport:
    """Find punches (id, edited since stored?), then reconcile what they change, all in one
    transaction when the carer-days are few (a call's punch); a large import is split."""

    def work(sql: Sql) -> tuple[set[CarerDay], RunReport | None]:
        found = find(sql)
        if not found:
            return set(), RunReport()
        ids = [pid for pid, _ in found]
        targets, companies = _targets_after_punches(sql, ids, {p for p, e in found if e})
        if len(targets) > MAX_CARER_DAYS:
            return targets, None
        report = run_targets(sql, targets, now, companies)
        report.transactions = 1
        return targets, report

    targets, report = in_transaction(engine, work, lock_wait_ms=lock_wait_ms)
    if report is None:
        report = _run_in_chunks(engine, targets, now)
    return report


def reconcile_after_punches(
    engine: Engine, punch_ids: Iterable[int], *, now: datetime | None = None
) -> RunReport:
    """The incremental path: every carer-day these stored punches can change, now.

    A punch changed since it was stored (``updated_at`` later than ``created_at``: a correction,
    a re-imported row) also refreshes the days its previous version touched.
    """
    ids = sorted(set(punch_ids))
    if not ids:
        return RunReport()
    return _incremental(
        engine,
        lambda sql: [
            (pid, bool(edited))
            for pid, edited in sql.fetch(
                f"SELECT id, {_EDITED} FROM punches WHERE id IN_LIST(:ids)", ids=ids
            )
        ],
        now or utc_now(),
    )


def reconcile_after_call(
    engine: Engine,
    origin: str,
    call_key: str,
    *,
    now: datetime | None = None,
    lock_wait_ms: int | None = None,
) -> RunReport:
    """What the IVR and the call-back run when a call ends: reconcile its punch, if any.

    ``lock_wait_ms``: give up with :class:`CarersBusy` rather than wait longer for another run
    on the same carers (see :func:`reconciliation.background.reconcile_call`)."""
    return _incremental(
        engine,
        lambda sql: [
            (pid, bool(edited))
            for pid, edited in sql.fetch(
                f"SELECT id, {_EDITED} FROM punches WHERE origin = :origin AND call_key = :key",
                origin=origin,
                key=call_key,
            )
        ],
        now or utc_now(),
        lock_wait_ms,
    )


def reconcile_after_planned(
    engine: Engine, planned_ids: Iterable[int], *, now: datetime | None = None
) -> RunReport:
    """Planned interventions were created or changed: reconcile the carer-days they touch,
    where they are now and where the stored results say they were."""
    ids = sorted(set(planned_ids))
    if not ids:
        return RunReport()
    moment = now or utc_now()

    def targets_of(sql: Sql) -> set[CarerDay]:
        loader = Loader(sql)
        planned = loader.planned_by_id(ids)
        companies = load_companies(sql, {p.company_id for p in planned})
        found: set[CarerDay] = set()
        for item in planned:
            found |= refresh_after_planned(item, companies.rules, loader)
        for company, carer, day_raw in sql.fetch(
            "SELECT company_id, owner_carer_id, owner_day FROM anomalies"
            " WHERE intervention_id IN_LIST(:ids) AND owner_carer_id IS NOT NULL",
            ids=ids,
        ):
            day = sql.day(day_raw)
            assert day is not None
            found |= {CarerDay(company, carer, day + k * ONE_DAY) for k in (-1, 0, 1)}
        for company, carer, day_raw in sql.fetch(
            "SELECT v.company_id, v.carer_id, v.day FROM visit_matches m"
            " JOIN visits v ON v.id = m.visit_id WHERE m.intervention_id IN_LIST(:ids)",
            ids=ids,
        ):
            day = sql.day(day_raw)
            assert day is not None
            found |= {CarerDay(company, carer, day + k * ONE_DAY) for k in (-1, 0, 1)}
        return found

    return _run_in_chunks(engine, in_transaction(engine, targets_of, write=False), moment)


# --- time-driven ------------------------------------------------------------------------------


def due_carer_days(sql: Sql, since: datetime, now: datetime) -> set[CarerDay]:
    """Carer-days whose result changes between ``since`` and ``now`` with no new data.

    Three rules read the clock: LATE_START_ALERT opens ``late_alert_min`` after a planned start
    with no visit; NO_PUNCH replaces it once the end plus the departure tolerance has passed;
    an arrival left open gets MISSING_DEPARTURE after ``max_visit_hours``. Both ends of the
    window are included (a rule that flips exactly at ``since`` is not missed).
    """
    companies = load_companies(sql)
    targets: set[CarerDay] = set()
    for company_id, rules in companies.rules.items():
        tz = rules.tz
        # Planned interventions whose start + late_alert or end + tolerance falls in the window.
        longest = timedelta(days=2)
        rows = sql.fetch(
            "SELECT carer_id, planned_start, planned_end FROM interventions"
            " WHERE company_id = :company AND planned_start >= :lo AND planned_start <= :hi",
            company=company_id,
            lo=since - rules.late_alert - rules.departure_tolerance - longest,
            hi=now,
        )
        for carer, start_raw, end_raw in rows:
            start, end = sql.instant(start_raw), sql.instant(end_raw)
            assert start is not None and end is not None
            alert, missed = start + rules.late_alert, end + rules.departure_tolerance
            if since <= alert <= now or since <= missed <= now:
                targets.add(CarerDay(company_id, carer, day_of(start, tz)))
        # Arrivals reaching max_visit_hours: their visit's day, and what that visit covers.
        arrivals = sql.fetch(
            "SELECT id, carer_id, at FROM punches WHERE company_id = :company"
            " AND kind = 'arrival' AND at >= :lo AND at <= :hi",
            company=company_id,
            lo=since - rules.max_visit,
            hi=now - rules.max_visit,
        )
        keys = []
        for pid, carer, at_raw in arrivals:
            at = sql.instant(at_raw)
            assert at is not None
            targets.add(CarerDay(company_id, carer, day_of(at, tz)))
            keys.append(f"v{pid}")
        if keys:
            for carer, start_raw in sql.fetch(
                "SELECT i.carer_id, i.planned_start FROM visits v"
                " JOIN visit_matches m ON m.visit_id = v.id"
                " JOIN interventions i ON i.id = m.intervention_id"
                " WHERE v.company_id = :company AND v.key IN_LIST(:keys)",
                company=company_id,
                keys=keys,
            ):
                start = sql.instant(start_raw)
                assert start is not None
                targets.add(CarerDay(company_id, carer, day_of(start, tz)))
    return targets


def reconcile_due(engine: Engine, since: datetime, now: datetime) -> RunReport:
    """Reconcile the carer-days :func:`due_carer_days` finds between ``since`` and ``now``."""
    targets = in_transaction(engine, lambda sql: due_carer_days(sql, since, now), write=False)
    if not targets:
        return RunReport()
    return _run_in_chunks(engine, targets, now)


# --- batch ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """One company's part of a batch: its local days and its carers, in chunks."""

    company_id: int
    code: str
    first: date
    last: date
    chunks: tuple[tuple[int, ...], ...]


def plan_batch(
    engine: Engine,
    first: date | None,
    last: date | None,
    *,
    company_code: str | None = None,
    chunk_carers: int = CHUNK_CARERS,
) -> list[BatchPlan]:
    """Which companies, days and carer chunks a batch covers.

    Without dates, every day that has a punch or a planned intervention (in the company's time
    zone). Carers are chunked in id order, which keeps a team (carers sharing clients, usually
    created together) in one chunk, so a chunk rarely needs another chunk's punches.
    """

    def work(sql: Sql) -> list[BatchPlan]:
        companies = load_companies(sql)
        wanted = sorted(companies.codes)
        if company_code is not None:
            found = companies.id_of(company_code)
            if found is None:
                raise LookupError(f"unknown company code {company_code!r}")
            wanted = [found]
        plans = []
        for company_id in wanted:
            rules = companies.rules[company_id]
            lo, hi = first, last
            if lo is None or hi is None:
                bounds = sql.fetch(
                    "SELECT MIN(planned_start), MAX(planned_start) FROM interventions"
                    " WHERE company_id = :c UNION ALL"
                    " SELECT MIN(at), MAX(at) FROM punches WHERE company_id = :c",
                    c=company_id,
                )
                instants = [sql.instant(v) for row in bounds for v in row if v is not None]
                if not instants:
                    continue
                lo = lo or day_of(min(i for i in instants if i is not None), rules.tz)
                hi = hi or day_of(max(i for i in instants if i is not None), rules.tz)
            if hi < lo:
                continue
            carers = [
                r[0]
                for r in sql.fetch(
                    "SELECT id FROM carers WHERE company_id = :c ORDER BY id", c=company_id
                )
            ]
            chunks = tuple(
                tuple(carers[i : i + chunk_carers]) for i in range(0, len(carers), chunk_carers)
            )
            plans.append(BatchPlan(company_id, companies.codes[company_id], lo, hi, chunks))
        return plans

    return in_transaction(engine, work, write=False)


def run_batch_chunk(
    engine: Engine,
    plan: BatchPlan,
    carers: Sequence[int],
    now: datetime,
    resolutions: list[ResolutionIn] | None = None,
) -> RunReport:
    """One transaction of a batch: these carers, every day of the plan."""
    days = [plan.first + timedelta(days=n) for n in range((plan.last - plan.first).days + 1)]
    targets = {CarerDay(plan.company_id, c, d) for c in carers for d in days}

    def work(sql: Sql) -> RunReport:
        company_resolutions = None
        if resolutions is not None:
            company_resolutions = {plan.company_id: resolutions}
        report = run_targets(sql, targets, now, company_resolutions=company_resolutions)
        report.transactions = 1
        return report

    with _no_cyclic_gc():
        return in_transaction(engine, work, batch=True)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A batch chunk allocates a few million small objects that never form cycles (rows,
    punches, visits, results); the cyclic collector would walk the growing heap again and
    again for nothing (10 to 20 % of the rules' CPU). Reference counting still frees them; the
    collector runs again once the chunk is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def company_resolutions(engine: Engine, company_id: int) -> list[ResolutionIn]:
    return in_transaction(
        engine, lambda sql: Loader(sql).resolutions_of_company(company_id), write=False
    )


def reconcile_range(
    engine: Engine,
    first: date | None = None,
    last: date | None = None,
    *,
    company_code: str | None = None,
    now: datetime | None = None,
    chunk_carers: int = CHUNK_CARERS,
    progress: Callable[[BatchPlan, int, RunReport], None] | None = None,
) -> RunReport:
    """The batch: every carer-day of the range (local days, both included), chunk by chunk.

    Gives the same rows as the incremental path would have left for the same data and ``now``.
    """
    moment = now or utc_now()
    report = RunReport()
    for plan in plan_batch(
        engine, first, last, company_code=company_code, chunk_carers=chunk_carers
    ):
        resolutions = company_resolutions(engine, plan.company_id)
        for index, chunk in enumerate(plan.chunks):
            part = run_batch_chunk(engine, plan, chunk, moment, resolutions)
            report.add(part)
            if progress is not None:
                progress(plan, index, part)
    return report


def reconcile_after_import(engine: Engine, kind: str, since: datetime) -> RunReport:
    """After ``telegestion import punches|planning``: reconcile what the file added or changed.

    The import writes ``updated_at`` on every row it inserts or changes (not on unchanged rows),
    so the rows touched since ``since`` are exactly that file's effect.
    """
    table = {"punches": "punches", "planning": "interventions"}.get(kind)
    if table is None:
        return RunReport()
    rows = in_transaction(
        engine,
        lambda sql: sql.fetch(f"SELECT id FROM {table} WHERE updated_at >= :since", since=since),
        write=False,
    )
    ids = [r[0] for r in rows]
    if kind == "punches":
        return reconcile_after_punches(engine, ids)
    return reconcile_after_planned(engine, ids)
