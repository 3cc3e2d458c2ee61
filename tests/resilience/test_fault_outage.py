"""PostgreSQL stops, crashes or freezes under a call load: no punch read back is lost or doubled.

Each test runs a real ``telegestion serve`` on a PostgreSQL server of its own, places calls
(10 new calls a second, up to 600, until the scenario is over) before, during and after the
fault, and checks at the end (once the spool has replayed) that
every carer who heard "arrival recorded" or "departure recorded" has exactly that punch.
"""

from __future__ import annotations

from collections.abc import Callable

from outage_scenario import assert_carers_were_served_during, assert_no_punch_lost, run_outage
from pg_cluster import PgCluster
from serve_harness import FAST_FLOW_ENV, CallLoad, ServeProcess


def test_database_stopped_and_started_mid_load(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """A clean stop of PostgreSQL: calls go on from the spool and land once after the restart."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=10, count=600, prefix="stop")
    run = run_outage(
        seeded_cluster.url, worker, load, begin=seeded_cluster.stop, end=seeded_cluster.start
    )
    assert_no_punch_lost(run)
    assert_carers_were_served_during(run)


def test_database_killed_mid_load(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """kill -9 of PostgreSQL (crash recovery at restart): nothing read back is lost or doubled."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=10, count=600, prefix="kill", seed=2)
    run = run_outage(
        seeded_cluster.url, worker, load, begin=seeded_cluster.kill, end=seeded_cluster.start
    )
    assert_no_punch_lost(run)
    assert_carers_were_served_during(run)


def test_database_frozen_longer_than_the_bounded_wait(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """A server that accepts connections but never answers (SIGSTOP) is an outage too."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    load = load_factory(worker.agi_port, rate=10, count=600, prefix="freeze", seed=3)
    run = run_outage(
        seeded_cluster.url, worker, load, begin=seeded_cluster.freeze, end=seeded_cluster.thaw
    )
    assert run.fault_ended - run.fault_started > 2 * float(FAST_FLOW_ENV["TELEGESTION_DB_WAIT_S"])
    assert_no_punch_lost(run)
    assert_carers_were_served_during(run)
