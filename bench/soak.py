"""Soak run of issue 8: a sustained call load with the database restarted under it.

    .venv/bin/python bench/soak.py --duration 600 [--rate 15] [--restarts 2] [--down 25]
        [--json /tmp/soak.json]

One ``telegestion serve`` runs on a PostgreSQL server of its own (``tests/resilience/
pg_cluster.py``: initdb into a temporary folder, its own port), driven from a separate process
(``tests/resilience/call_load.py``) that behaves like Asterisk on the wire, with prompts at the
length of the real sound files and carers keying at a human pace; a quarter of them hang up as
soon as the readback is over and a quarter at a random moment. The database is stopped at
evenly spaced moments (``--restarts``, default twice: at 1/3 and 2/3 of the run) and started
again ``--down`` seconds later. After the load, the run waits for the worker's spool to drain
and reports:

- calls placed, completed (connected and ended with an outcome) and their outcomes;
- punches read back (the carer heard "arrival/departure recorded"), punches lost (read back,
  not in the database: target 0), duplicates (more than one punch for a call: target 0), wrong
  kind (stored kind differs from the one read back: target 0);
- the slowest call (answer to hang-up), and p50/p99;
- the spool's peak backlog and, per restart, the time from the database's return to an empty
  spool (from the worker's ``/healthz``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "resilience"))

from pg_cluster import PgCluster  # noqa: E402
from serve_harness import CallLoad, ServeProcess, seed_directory, wait_for_punches  # noqa: E402


def spool_backlog(health: dict[str, Any]) -> int | None:
    """Entries waiting in the worker's spool, as ``/healthz`` reports them (None if unknown)."""
    spool = health.get("spool")
    if isinstance(spool, int):
        return spool
    if isinstance(spool, dict):
        for key in ("backlog", "pending", "entries", "depth"):
            if isinstance(spool.get(key), int):
                return int(spool[key])
    return None


class HealthWatch:
    """Polls the worker's ``/healthz`` every ``period`` seconds; keeps the spool's history."""

    def __init__(self, worker: ServeProcess, period: float = 1.0) -> None:
        self.worker = worker
        self.period = period
        self.samples: list[tuple[float, int | None, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                health = self.worker.health()
            except Exception as exc:  # the worker answers 503 during an outage
                body = getattr(exc, "read", None)
                try:
                    health = json.loads(body()) if body is not None else {}
                except Exception:
                    health = {}
            self.samples.append((time.time(), spool_backlog(health), str(health.get("status"))))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self) -> int | None:
        known = [n for _, n, _ in self.samples if n is not None]
        return max(known) if known else None

    def drained_after(self, since: float) -> float | None:
        """Seconds from ``since`` to the first sample with an empty spool."""
        for at, backlog, _ in self.samples:
            if at >= since and backlog == 0:
                return round(at - since, 1)
        return None


def wait_spool_empty(worker: ServeProcess, deadline: float) -> float | None:
    """The time the worker's spool was seen empty (None: not by ``deadline``)."""
    while time.time() < deadline:
        try:
            if spool_backlog(worker.health()) == 0:
                return time.time()
        except Exception:
            pass
        time.sleep(0.5)
    return None


def pct(values: list[float], p: float) -> float | None:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p * len(values)))], 2) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak run: calls with database restarts.")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of new calls")
    parser.add_argument("--rate", type=float, default=15.0, help="new calls per second")
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--down", type=float, default=25.0, help="seconds down per restart")
    parser.add_argument("--per-company", type=int, default=300)
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument(
        "--drain-timeout", type=float, default=1800.0, help="longest wait for an empty spool"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tg-soak-"))
    cluster = PgCluster()
    worker: ServeProcess | None = None
    load: CallLoad | None = None
    watch: HealthWatch | None = None
    outages: list[dict[str, float]] = []
    try:
        cluster.start()
        seed_directory(cluster.url, args.per_company, work / "csv")
        worker = ServeProcess(
            cluster.url,
            node="soak",
            workdir=work / "worker",
            env={"TELEGESTION_DB_POOL_SIZE": str(args.pool_size)},
            flow_env={},
        )
        worker.start()
        watch = HealthWatch(worker)
        count = int(args.rate * args.duration)
        started = time.time()
        load = CallLoad(
            worker.agi_port,
            rate=args.rate,
            count=count,
            per_company=args.per_company,
            prefix=f"soak{int(started)}",
            speed=1.0,
        )
        print(f"soak: {count} calls over {args.duration:g} s on {cluster.url}", flush=True)
        print(f"soak: worker log {worker.log_path}", flush=True)
        for n in range(1, args.restarts + 1):
            at = started + args.duration * n / (args.restarts + 1)
            time.sleep(max(0.0, at - time.time()))
            down_at = time.time()
            cluster.stop()
            print(f"soak: database stopped at +{down_at - started:.0f} s", flush=True)
            time.sleep(args.down)
            cluster.start()
            up_at = time.time()
            print(f"soak: database back at +{up_at - started:.0f} s", flush=True)
            outages.append({"down_at": down_at, "up_at": up_at})
        records = load.finish(timeout=args.duration + 600)
        load_ended = time.time()
        print(f"soak: last call ended at +{load_ended - started:.0f} s", flush=True)
        # The verdict that counts is taken once the spool is empty: before, a punch still
        # waiting in it would count as lost.
        drained = wait_spool_empty(worker, load_ended + args.drain_timeout)
        print(f"soak: spool empty at +{(drained or time.time()) - started:.0f} s", flush=True)
        verdict = wait_for_punches(cluster.url, worker.node, records, 30.0)
        watch.stop()
        results = summarise(args, records, verdict, outages, watch, started, load_ended, drained)
        health = worker.health()
        results["final_health"] = health
        results["serve_exit"] = worker.terminate()
    finally:
        if watch is not None:
            watch.stop()
        if load is not None:
            load.stop()
        if worker is not None:
            worker.kill()
        cluster.destroy()
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak: working folder kept: {work}")


def summarise(
    args: argparse.Namespace,
    records: list[dict[str, Any]],
    verdict: Any,
    outages: list[dict[str, float]],
    watch: HealthWatch,
    started: float,
    load_ended: float,
    drained: float | None,
) -> dict[str, Any]:
    completed = [r for r in records if r.get("connected") and r.get("status")]
    talk = [r["talk_s"] for r in records if r.get("talk_s") is not None]
    slowest = max(records, key=lambda r: r.get("talk_s") or 0.0)
    during = []
    for n, outage in enumerate(outages):
        next_down = outages[n + 1]["down_at"] if n + 1 < len(outages) else float("inf")
        drained_s = watch.drained_after(outage["up_at"])
        if drained_s is not None and outage["up_at"] + drained_s > next_down:
            drained_s = None  # not before the next outage
        # Calls answered while the database was down (most read back before it returned).
        inside = [
            r
            for r in records
            if r.get("t_answer") is not None
            and outage["down_at"] <= r["t_answer"] <= outage["up_at"]
        ]
        during.append(
            {
                "down_s": round(outage["up_at"] - outage["down_at"], 1),
                "down_at_s": round(outage["down_at"] - started, 1),
                "calls_answered_while_down": len(inside),
                "read_back_of_those": sum(1 for r in inside if r["heard"]),
                "spool_drained_s": drained_s,
            }
        )
    return {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "calls_placed": len(records),
        "calls_completed": len(completed),
        "outcomes": dict(Counter(str(r.get("status")) for r in records)),
        "not_connected": sum(1 for r in records if not r.get("connected")),
        "read_back": verdict.heard,
        "punches_lost": len(verdict.lost),
        "duplicates": len(verdict.duplicated),
        "wrong_kind": len(verdict.wrong_kind),
        "lost_examples": list(verdict.lost[:10]),
        "slowest_call_s": round(slowest.get("talk_s") or 0.0, 2),
        "slowest_call": slowest.get("uid"),
        "talk_s_p50": pct(talk, 0.5),
        "talk_s_p99": pct(talk, 0.99),
        "spool_peak_backlog": watch.peak(),
        "outages": during,
        "load_s": round(load_ended - started, 1),
        "spool_empty_after_last_call_s": None
        if drained is None
        else round(drained - load_ended, 1),
        "spool_empty_after_last_restart_s": (
            None
            if not outages
            else watch.drained_after(outages[-1]["up_at"])
            or (None if drained is None else round(drained - outages[-1]["up_at"], 1))
        ),
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        f"calls placed      {r['calls_placed']}  ({r['rate_per_s']:g}/s for {r['duration_s']:g} s)",
        f"calls completed   {r['calls_completed']}  outcomes {r['outcomes']}",
        f"read back         {r['read_back']}",
        f"punches lost      {r['punches_lost']}  (target 0)",
        f"duplicates        {r['duplicates']}  (target 0)",
        f"wrong kind        {r['wrong_kind']}  (target 0)",
        f"slowest call      {r['slowest_call_s']} s  (p50 {r['talk_s_p50']} s,"
        f" p99 {r['talk_s_p99']} s)",
        f"spool peak        {r['spool_peak_backlog']}",
    ]
    for n, o in enumerate(r["outages"], 1):
        lines.append(
            f"outage {n}          {o['down_s']} s at +{o['down_at_s']} s:"
            f" {o['calls_answered_while_down']} calls answered while down,"
            f" {o['read_back_of_those']} of them read back; spool empty "
            + (
                f"{o['spool_drained_s']} s after the database returned"
                if o["spool_drained_s"] is not None
                else "only after the next outage or the end"
            )
        )
    lines.append(
        f"spool empty       {r['spool_empty_after_last_restart_s']} s after the last restart"
        f" ({r['spool_empty_after_last_call_s']} s after the last call ended)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
