"""Fixtures of the resilience tests: a PostgreSQL server each test owns (to stop, kill, freeze).

Without PostgreSQL's binaries these tests skip, unless ``TELEGESTION_REQUIRE_POSTGRES=1`` (set by
``.ci/run``): then they fail, since CI must never pass by skipping the outage tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pg_cluster import PG_BIN, ClusterError, PgCluster, absent_binaries_policy

if TYPE_CHECKING:
    from serve_harness import CallLoad, ServeProcess


def require_pg_binaries() -> None:
    """Skip (or fail, when PostgreSQL is required) if this machine has no PostgreSQL 15."""
    action, why = absent_binaries_policy(PG_BIN, os.environ)
    if action == "fail":
        pytest.fail(why)
    if action == "skip":
        pytest.skip(why)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[Path]:
    """An initdb'd data folder, made once per test process and copied by each cluster."""
    require_pg_binaries()
    template = PgCluster()
    try:
        template.init()
    except ClusterError as exc:
        template.destroy()
        pytest.fail(str(exc))
    try:
        yield template.data
    finally:
        template.destroy()


@pytest.fixture
def pg_cluster(pg_template: Path) -> Iterator[PgCluster]:
    """A running PostgreSQL of this test alone; stopped and deleted afterwards, pass or fail."""
    cluster = PgCluster(template=pg_template)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


# -- a real worker under load on that cluster (serve_harness) ----------------------------------

#: Carers (and their clients) per company in the fault tests' directory.
PER_COMPANY = 40


@pytest.fixture
def seeded_cluster(pg_cluster: PgCluster, tmp_path: Path) -> PgCluster:
    """The cluster with the schema at head and the synthetic directory of ``call_load.py``."""
    from serve_harness import seed_directory

    seed_directory(pg_cluster.url, PER_COMPANY, tmp_path / "directory-csv")
    return pg_cluster


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Makes ``telegestion serve`` processes (not started); every one is killed at the end."""
    from serve_harness import ServeProcess

    made: list[ServeProcess] = []

    def make(url: str, node: str = "node-a", **options: object) -> ServeProcess:
        worker = ServeProcess(url, node=node, workdir=tmp_path / f"worker-{node}", **options)  # type: ignore[arg-type]
        made.append(worker)
        return worker

    try:
        yield make
    finally:
        for worker in made:
            worker.kill()


@pytest.fixture
def load_factory() -> Iterator[Callable[..., CallLoad]]:
    """Starts call loads (``serve_harness.CallLoad``); any still running is killed at the end."""
    from serve_harness import CallLoad

    made: list[CallLoad] = []

    def make(port: int, **options: object) -> CallLoad:
        options.setdefault("per_company", PER_COMPANY)
        load = CallLoad(port, **options)  # type: ignore[arg-type]
        made.append(load)
        return load

    try:
        yield make
    finally:
        for load in made:
            load.stop()
