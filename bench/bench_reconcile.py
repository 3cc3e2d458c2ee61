"""Benchmark of issue 6: a month of a 5,000-carer network reconciled on PostgreSQL.

    .venv/bin/python bench/bench_reconcile.py [--carers 5000] [--workers 2] [--incremental 1000]
        [--database postgresql+psycopg2://postgres@127.0.0.1:5432/test] [--keep]

In one run, on a fresh schema:

1. generate the month (``bench/recon_month.py``, COPY; not part of any measured time);
2. **batch**: ``telegestion reconcile`` of the whole month from nothing, carers in chunks spread
   over ``--workers`` processes: wall time, and peak resident memory (VmHWM) of each process;
3. **re-run**: the same batch again, nothing to change (writes nothing);
4. **incremental**: ``--incremental`` new punches, one at a time, each stored then reconciled
   through ``reconcile_after_call`` (what the IVR runs when a call ends): p50, p99, max;
5. **PostgreSQL alone**, same run: the same rows the batch read (its queries, as ``COPY … TO
   STDOUT`` into nothing), and as many result rows written as the batch wrote (set-based
   ``INSERT … SELECT`` into copies of the result tables, one ``UPDATE`` of as many
   interventions); then the ratio of the batch to it.

Targets (2 cores): batch < 120 s, peak memory < 2 GB, incremental p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from recon_month import DAYS, FIRST, generate  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from reconciliation.scope import range_window  # noqa: E402
from reconciliation.store import (  # noqa: E402
    BatchPlan,
    RunReport,
    company_resolutions,
    plan_batch,
    reconcile_after_call,
    run_batch_chunk,
)
from telegestion import migrate  # noqa: E402
from telegestion.db import make_engine  # noqa: E402

NOW = datetime(2026, 11, 15, tzinfo=UTC)


def schema_url(base: str, schema: str) -> str:
    return (
        make_url(base)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM: the peak resident set of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- batch, in worker processes -------------------------------------------------------------

_ENGINE: Any = None


def _worker_init(url: str) -> None:
    global _ENGINE
    _ENGINE = make_engine(url, statement_timeout_ms=0, pool_size=2)


def _worker_run(jobs: list[tuple[BatchPlan, tuple[int, ...]]]) -> tuple[RunReport, float, float]:
    started = time.perf_counter()
    report = RunReport()
    resolutions: dict[int, Any] = {}
    for plan, chunk in jobs:
        if plan.company_id not in resolutions:
            resolutions[plan.company_id] = company_resolutions(_ENGINE, plan.company_id)
        report.add(run_batch_chunk(_ENGINE, plan, chunk, NOW, resolutions[plan.company_id]))
    return report, peak_rss_mb(), time.perf_counter() - started


def run_batch(url: str, workers: int) -> dict[str, Any]:
    engine = make_engine(url, statement_timeout_ms=0)
    started = time.perf_counter()
    plans = plan_batch(engine, None, None)
    engine.dispose()
    jobs = [(plan, chunk) for plan in plans for chunk in plan.chunks]
    shares: list[list[tuple[BatchPlan, tuple[int, ...]]]] = [[] for _ in range(workers)]
    for index, job in enumerate(jobs):
        shares[index % workers].append(job)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                             initargs=(url,)) as pool:  # fmt: skip
        results = list(pool.map(_worker_run, shares))
    wall = time.perf_counter() - started
    total = RunReport()
    for report, _, _ in results:
        total.add(report)
    return {
        "seconds": round(wall, 1),
        "worker_seconds_split": {
            "read": round(total.load_s, 1),
            "rules": round(total.rules_s, 1),
            "rules_cpu": round(total.rules_cpu_s, 1),
            "diff_and_write": round(total.write_s, 1),
        },
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        "chunks": len(jobs),
        "carer_days": total.carer_days,
        "written": {name: getattr(total.counts, name) for name in total.counts.__slots__},
        "peak_rss_mb_per_worker": [round(rss) for _, rss, _ in results],
        "peak_rss_mb_total": round(sum(rss for _, rss, _ in results) + peak_rss_mb()),
        "worker_seconds": [round(s, 1) for _, _, s in results],
        "report": total,
    }


# --- incremental -------------------------------------------------------------------------------


def run_incremental(
    url: str, missing: list[tuple[int, int, int, str, datetime]], n: int
) -> dict[str, Any]:
    """Punches for interventions nobody punched, stored like the IVR stores them, then
    reconciled one at a time through the function the IVR calls when the call ends."""
    engine = make_engine(url)
    timings = []
    written = 0
    for k, (company, carer, client, caller, start) in enumerate(missing[:n]):
        key = f"incr-{k}"
        at = start + timedelta(minutes=3)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO punches (origin, call_key, company_id, carer_id, client_id,"
                    " kind, at, source, status, location_verified, caller_raw, caller_e164,"
                    " caller_withheld, created_at, updated_at) VALUES ('bench-ivr', :key,"
                    " :company, :carer, :client, 'arrival', :at, 'landline', 'recorded', true,"
                    " :caller, :caller, false, :at, :at)"
                ),
                {
                    "key": key,
                    "company": company,
                    "carer": carer,
                    "client": client,
                    "at": at,
                    "caller": caller or None,
                },
            )
        began = time.perf_counter()
        report = reconcile_after_call(engine, "bench-ivr", key, now=NOW)
        timings.append((time.perf_counter() - began) * 1000)
        written += report.counts.total
    engine.dispose()
    timings.sort()
    return {
        "punches": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(0.99 * (len(timings) - 1))], 2),
        "max_ms": round(timings[-1], 2),
        "rows_written": written,
    }


# --- PostgreSQL alone --------------------------------------------------------------------------


class _Sink:
    """A file that keeps nothing: COPY TO STDOUT measures PostgreSQL, not the client."""

    def write(self, data: str | bytes) -> int:
        return len(data)


def _read_chunks(jobs: list[tuple[BatchPlan, tuple[int, ...]]]) -> float:
    """The batch's own read statements for these chunks, each run as ``COPY (…) TO STDOUT``."""
    from reconciliation.db_load import _neighbourhood_sql, load_companies
    from reconciliation.sql_access import Sql, _render

    engine = _ENGINE
    started = time.perf_counter()
    with engine.connect() as conn:
        sql = Sql(conn)
        companies = load_companies(sql)
        cursor = sql.raw.cursor()
        cursor.execute("SET jit = off")
        sink = _Sink()
        punches_sql, planned_sql = (_render(q, True) for q in _neighbourhood_sql(True))
        owned_sql = [
            _render(q, True)
            for q in (
                "SELECT id, key, carer_id, client_id, arrival_punch_id, departure_punch_id,"
                " start_at, end_at, day FROM visits WHERE company_id = :company"
                " AND carer_id IN_LIST(:carers) AND day >= :first AND day <= :last",
                "SELECT m.intervention_id, v.key, m.start_at, m.end_at, m.how"
                " FROM interventions i JOIN visit_matches m ON m.intervention_id = i.id"
                " JOIN visits v ON v.id = m.visit_id WHERE i.carer_id IN_LIST(:carers)"
                " AND i.planned_start >= :i_from AND i.planned_start < :i_to",
                "SELECT id, key, company_id, code, severity, status, carer_id, client_id,"
                " intervention_id, punch_id, at, detail, owner_carer_id, owner_day"
                " FROM anomalies WHERE owner_carer_id IN_LIST(:carers)"
                " AND owner_day >= :first AND owner_day <= :last",
            )
        ]
        for plan, chunk in jobs:
            window = range_window(plan.first, plan.last, companies.rules[plan.company_id])
            params = {
                "company": plan.company_id,
                "carers": list(chunk),
                "p_from": window.punches_from,
                "p_to": window.punches_to,
                "o_from": window.other_carers_from,
                "o_to": window.other_carers_to,
                "i_from": window.planned_from,
                "i_to": window.planned_to,
                "first": plan.first,
                "last": plan.last,
            }
            for statement in (punches_sql, planned_sql, *owned_sql):
                query = cursor.mogrify(statement, params).decode()
                cursor.copy_expert(f"COPY ({query}) TO STDOUT", sink)
        cursor.close()
    return time.perf_counter() - started


def baseline_read(url: str, workers: int) -> float:
    """The batch's reads, chunk by chunk, in as many processes as the batch: its statements,
    its parameters, only PostgreSQL's side of the work."""
    engine = make_engine(url, statement_timeout_ms=0)
    plans = plan_batch(engine, None, None)
    engine.dispose()
    jobs = [(plan, chunk) for plan in plans for chunk in plan.chunks]
    shares = [jobs[i::workers] for i in range(workers)]
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_init, initargs=(url,)
    ) as pool:
        list(pool.map(_read_chunks, shares))
    return time.perf_counter() - started


def baseline_write(url: str, batch: dict[str, Any]) -> tuple[float, dict[str, int]]:
    """As many rows as the batch wrote, written by set-based SQL into copies of the result
    tables (same columns and indexes), and one UPDATE of as many interventions."""
    written = batch["written"]
    engine = make_engine(url, statement_timeout_ms=0)
    raw = engine.raw_connection()
    cursor = raw.cursor()
    for table in ("visits", "visit_matches", "anomalies"):
        cursor.execute(f"DROP TABLE IF EXISTS base_{table}")
        cursor.execute(f"CREATE TABLE base_{table} (LIKE {table} INCLUDING ALL)")
    raw.commit()
    counts = {}
    started = time.perf_counter()
    for table, n in (
        ("visits", written["visits_written"]),
        ("visit_matches", written["matches_written"]),
        ("anomalies", written["anomalies_written"]),
    ):
        cursor.execute(f"INSERT INTO base_{table} SELECT * FROM {table} ORDER BY id LIMIT {n}")
        counts[table] = cursor.rowcount
    cursor.execute(
        "UPDATE interventions SET realised_minutes = realised_minutes, updated_at = now()"
        f" WHERE id IN (SELECT id FROM interventions ORDER BY id LIMIT"
        f" {written['realised_updated']})"
    )
    counts["interventions"] = cursor.rowcount
    raw.commit()
    seconds = time.perf_counter() - started
    for table in ("visits", "visit_matches", "anomalies"):
        cursor.execute(f"DROP TABLE base_{table}")
    raw.commit()
    cursor.close()
    raw.close()
    engine.dispose()
    return seconds, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument("--carers", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--incremental", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()

    schema = f"bench_recon_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = schema_url(args.database, schema)
    result: dict[str, Any] = {
        "carers": args.carers,
        "workers": args.workers,
        "cores": os.cpu_count(),
    }
    try:
        engine = make_engine(url, statement_timeout_ms=0)
        migrate.upgrade(engine)
        started = time.perf_counter()
        raw = engine.raw_connection()
        month = generate(raw, carers=args.carers)
        raw.close()
        engine.dispose()
        result["generated"] = {
            "month": f"{FIRST} + {DAYS} days",
            "planned": month.planned,
            "punches": month.punches,
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(result["generated"]), flush=True)

        result["load_average_before_batch"] = [round(x, 1) for x in os.getloadavg()]
        batch = run_batch(url, args.workers)
        print(f"batch: {batch['seconds']} s, {batch['report']}", flush=True)
        result["batch"] = {k: v for k, v in batch.items() if k != "report"}

        rerun = run_batch(url, args.workers)
        result["rerun"] = {k: rerun[k] for k in ("seconds", "written", "peak_rss_mb_total")}
        print(f"re-run: {rerun['seconds']} s, {rerun['report']}", flush=True)

        result["incremental"] = run_incremental(url, month.missing, args.incremental)
        print(f"incremental: {result['incremental']}", flush=True)

        read_s = baseline_read(url, args.workers)
        write_s, counts = baseline_write(url, batch)
        alone = read_s + write_s
        result["postgresql_alone"] = {
            "read_seconds": round(read_s, 1),
            "write_seconds": round(write_s, 1),
            "rows_written": counts,
            "seconds": round(alone, 1),
        }
        result["ratio_batch_to_postgresql_alone"] = round(batch["seconds"] / alone, 2)
        print(json.dumps(result, indent=2, default=str), flush=True)
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
