"""Benchmark of issue 3: the FastAGI server under the 8:00 burst, against a thread-per-call
pyst2 baseline serving the same flow, in the same run, on PostgreSQL.

    .venv/bin/python bench/bench_fastagi.py [--rate 100] [--duration 60]
        [--database postgresql+psycopg2://postgres@127.0.0.1:5432/test]

Each target gets a fresh schema seeded with a synthetic directory, is driven by
``bench/agi_loadgen.py`` in its own process, and is checked afterwards: every call must have
ended ``punch_recorded`` with exactly one punch, of the right carer at the right client.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from seed_directory import seed  # noqa: E402

from telegestion.db import make_engine  # noqa: E402
from telegestion.model import Carer, Client, Company, Punch  # noqa: E402


def schema_url(base: str, schema: str) -> str:
    return (
        make_url(base)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


class MemoryWatch:
    """Peak resident memory of a process (VmHWM) and its CPU seconds, read from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.threads_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            elif line.startswith("Threads:"):
                self.threads_peak = max(self.threads_peak, int(line.split()[1]))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._read()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._read()
        self._stop.set()


def start_target(
    kind: str, url: str, port: int, spool_dir: Path | None = None, node: str = "bench"
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    if spool_dir is not None:
        # A spool of its own per run: one left by another run would replay into this schema.
        env["TELEGESTION_SPOOL_DIR"] = str(spool_dir)
    # Four database threads carry 100 calls/s (about 6 ms of database time per call); more
    # threads only fight the reactor for the GIL.
    env.update(TELEGESTION_DATABASE_URL=url, TELEGESTION_DB_POOL_SIZE="4")
    if kind == "fastagi":
        env["TELEGESTION_NODE"] = node
        argv = [
            sys.executable,
            "-m",
            "telegestion.cli",
            "serve",
            "--agi-port",
            str(port),
            "--http-port",
            "0",
            "--listen",
            "127.0.0.1",
        ]
        ready = re.compile(r"FastAGI on")
    else:
        argv = [sys.executable, str(HERE / "pyst2_thread_server.py"), "--port", str(port)]
        ready = re.compile(r"baseline listening")
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not ready.search(line):
        proc.kill()
        raise SystemExit(f"{kind} did not start: {line!r}")
    return proc


def wait_for_spool(path: Path, limit_s: float = 900.0) -> tuple[int, float]:
    """Entries in the worker's spool when the load ended, and how long it took to empty."""

    def left() -> int:
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])

    first = left()
    started = time.monotonic()
    while left() and time.monotonic() - started < limit_s:
        time.sleep(0.5)
    return first, round(time.monotonic() - started, 1)


def check_punches(url: str, origins: list[str], expected: list[dict], uniqueids: list[str]) -> dict:
    engine = make_engine(url)
    with engine.connect() as conn:
        companies = dict(conn.execute(select(Company.id, Company.code)).all())
        carers = {
            r.id: (companies[r.company_id], r.carer_ref)
            for r in conn.execute(select(Carer.id, Carer.company_id, Carer.carer_ref))
        }
        clients = {r.id: r.client_ref for r in conn.execute(select(Client.id, Client.client_ref))}
        rows = conn.execute(
            select(Punch.call_key, Punch.carer_id, Punch.client_id, Punch.kind).where(
                Punch.origin.in_(origins)
            )
        ).all()
    engine.dispose()
    by_key: dict[str, list] = {}
    for row in rows:
        by_key.setdefault(row.call_key, []).append(row)
    right = duplicates = wrong = missing = 0
    examples: list[dict[str, str]] = []
    for meta, uid in zip(expected, uniqueids, strict=True):
        got = by_key.get(uid, [])
        if not got:
            missing += 1
            continue
        if len(got) > 1:
            duplicates += 1
        punch = got[0]
        ok = (
            carers[punch.carer_id] == (meta["company"], f"K{meta['index']}")
            and clients.get(punch.client_id) == f"C{meta['index']}"
            and punch.kind == "arrival"
        )
        right += ok
        wrong += not ok
        if not ok and len(examples) < 10:
            company, carer = carers[punch.carer_id]
            examples.append(
                {
                    "call": uid,
                    "expected": f"{meta['company']}/K{meta['index']} at C{meta['index']}, arrival",
                    "stored": f"{company}/{carer} at {clients.get(punch.client_id)}, {punch.kind}",
                }
            )
    return {
        "right": right,
        "wrong": wrong,
        "missing": missing,
        "duplicates": duplicates,
        "punches": len(rows),
        "wrong_examples": examples,
    }


def run_target(kind: str, base_url: str, args: argparse.Namespace) -> dict:
    schema = f"bench_{kind}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = schema_url(base_url, schema)
    try:
        engine = make_engine(url)
        per_company = int(args.rate * args.duration / 2) + 1
        seed(engine, per_company)
        engine.dispose()
        # Several workers, as deployed (one per core, Asterisk spreading calls over them with
        # SRV records): each its own port, node name and spool; the baseline gets as many
        # processes.
        base_port = args.port + (0 if kind == "fastagi" else 50)
        ports = [base_port + k for k in range(args.workers)]
        nodes = [f"bench{k}" if args.workers > 1 else "bench" for k in range(args.workers)]
        spool_dirs = [Path(tempfile.mkdtemp(prefix="bench-spool-")) for _ in ports]
        procs = [
            start_target(kind, url, port, spool, node)
            for port, spool, node in zip(ports, spool_dirs, nodes, strict=True)
        ]
        watches = [MemoryWatch(proc.pid) for proc in procs]
        cpu_before = sum(w.cpu_seconds() for w in watches)
        load = subprocess.run(
            [
                sys.executable,
                str(HERE / "agi_loadgen.py"),
                "--ports",
                ",".join(map(str, ports)),
                "--rate",
                str(args.rate),
                "--duration",
                str(args.duration),
                "--per-company",
                str(per_company),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        # Calls the server answered from its spool (the database slower than its bounded wait,
        # as happens when the server is overloaded) reach the database when the spool replays:
        # wait for that before checking, and say how much there was.
        spools = [wait_for_spool(spool / "spool.sqlite3") for spool in spool_dirs]
        spool_left = sum(left for left, _ in spools)
        drain_s = max(seconds for _, seconds in spools)
        cpu = sum(w.cpu_seconds() for w in watches) - cpu_before
        for watch in watches:
            watch.stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        result = json.loads(load.stdout.strip().splitlines()[-1])
        checks = check_punches(
            url,
            nodes if kind == "fastagi" else ["baseline"],
            result.pop("expected"),
            result.pop("uniqueids"),
        )
        result.update(
            checks=checks,
            spool_left_after_load=spool_left,
            spool_drain_s=drain_s,
            workers=args.workers,
            server_peak_rss_mb=round(sum(w.peak_kb for w in watches) / 1024, 1),
            server_threads_peak=sum(w.threads_peak for w in watches),
            server_cpu_s=round(cpu, 1),
            # CPU, not wall time: comparable across runs on a shared machine.
            server_cpu_ms_per_call=round(1000 * cpu / max(result["calls"], 1), 2),
        )
        return result
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="new calls per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of new calls")
    parser.add_argument("--port", type=int, default=14600)
    parser.add_argument("--database", default="postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (FastAGI workers) per target"
    )
    parser.add_argument("--only", choices=("fastagi", "baseline"), default=None)
    parser.add_argument(
        "--sweep", default="", help="comma-separated rates to run instead of --rate, e.g. 25,50,100"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.sweep.split(",") if r] or [args.rate]
    for rate in rates:
        args.rate = rate
        results = {}
        for kind in ("fastagi", "baseline"):
            if args.only and kind != args.only:
                continue
            started = time.monotonic()
            results[kind] = run_target(kind, args.database, args)
            results[kind]["wall_s"] = round(time.monotonic() - started, 1)
            print(f"rate {rate:g}/s {kind}: {json.dumps(results[kind])}", flush=True)
        if len(results) == 2:
            a, b = results["fastagi"], results["baseline"]
            print(
                json.dumps(
                    {
                        "rate": rate,
                        "p99_turnaround_ratio_baseline_over_fastagi": round(
                            b["turnaround_ms"]["p99"] / max(a["turnaround_ms"]["p99"], 1e-6), 2
                        ),
                        "peak_rss_ratio_baseline_over_fastagi": round(
                            b["server_peak_rss_mb"] / max(a["server_peak_rss_mb"], 1e-6), 2
                        ),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
