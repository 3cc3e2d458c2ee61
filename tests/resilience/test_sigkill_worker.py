"""A worker killed with SIGKILL in the middle of calls loses no punch that was read back.

The worker is started again with the same node name, working folder (so the same spool and
directory copy) and FastAGI port, as systemd would restart it; the calls placed while it is
down are refused (Asterisk then tries the next worker) and count for nothing.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from outage_scenario import HEARD_BEFORE, REPLAY_DEADLINE_S, run_outage
from pg_cluster import PgCluster
from serve_harness import CallLoad, ServeProcess, wait_for_punches


def cut_by(records: list[dict], at: float) -> list[dict]:
    """Calls that were up (answered, not yet ended) at wall-clock time ``at``."""
    return [r for r in records if r["t_answer"] is not None and r["t_answer"] < at < r["t_hangup"]]


def heard_after(records: list[dict], at: float) -> list[dict]:
    return [r for r in records if r["heard"] and r["t_answer"] > at]


def test_worker_killed_mid_load_with_the_database_up(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """SIGKILL with calls on the line, restart: every readback heard is stored exactly once."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=10, count=600, prefix="sigkill")
    load.wait_heard(HEARD_BEFORE)
    killed_at = time.time()
    worker.kill()
    worker.start()
    load.wait_until(lambda records: len(heard_after(records, killed_at)) >= 3, timeout=60)
    records = load.finish(stop_placing=True)
    assert cut_by(records, killed_at), "the kill cut no call short"
    verdict = wait_for_punches(
        seeded_cluster.url, worker.node, records, REPLAY_DEADLINE_S, settled=worker.caught_up
    )
    assert verdict.ok, verdict.describe()
    assert worker.terminate() == 0


def test_worker_killed_during_a_database_outage_replays_its_spool_after_restart(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """Spooled punches survive a SIGKILL during an outage and replay after a restart without DB."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=10, count=600, prefix="sigkill-outage", seed=5)
    kills: list[float] = []

    def kill_and_restart(fault_started: float) -> None:
        load.wait_until(lambda records: bool(heard_after(records, fault_started)), timeout=30)
        kills.append(time.time())
        worker.kill()
        worker.start()  # with PostgreSQL still down: from the saved directory copy
        load.wait_until(lambda records: bool(heard_after(records, kills[0])), timeout=60)

    run = run_outage(
        seeded_cluster.url,
        worker,
        load,
        begin=seeded_cluster.stop,
        end=seeded_cluster.start,
        during=kill_and_restart,
    )
    assert run.verdict.ok, run.explain()
    spooled_before_kill = [r for r in run.during() if r["heard"] and r["t_hangup"] < kills[0]]
    assert spooled_before_kill, "no punch was spooled before the kill"
    assert worker.terminate() == 0


def test_sigterm_lets_the_calls_in_progress_finish_and_exits_0(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """SIGTERM mid-load: no new call taken, every call up ends normally, the process exits 0."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=20, count=100, prefix="sigterm", seed=7)
    load.wait_heard(3)
    stopped_at = time.time()
    worker.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert worker.proc.wait(60) == 0  # type: ignore[union-attr]
    records = load.finish()
    up = [r for r in cut_by(records, stopped_at) if r["style"] == "listens_to_the_end"]
    assert up, "no call was in progress at SIGTERM"
    # Each ends as it would have: the server says goodbye and hangs up, outcome journaled.
    cut = [
        (r["uid"], r["status"], r["hung_up_by"], r["prompts"][-2:])
        for r in up
        if not (r["status"] and r["hung_up_by"] == "server" and r["prompts"][-1:] == ["goodbye"])
    ]
    assert not cut, f"calls cut by the stop: {cut[:5]}"
    late = [r for r in records if r["t_start"] > stopped_at + 1.0]
    assert late and not any(r["connected"] for r in late), "a call was taken after SIGTERM"
    verdict = wait_for_punches(seeded_cluster.url, worker.node, records, REPLAY_DEADLINE_S)
    assert verdict.ok, verdict.describe()
