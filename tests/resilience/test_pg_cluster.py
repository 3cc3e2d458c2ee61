"""The throwaway PostgreSQL of the fault tests does what the tests rely on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pg_cluster import PG_BIN, ClusterError, PgCluster, _alive, absent_binaries_policy
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError


def query_one(url: str, sql: str = "SELECT 1", timeout: int = 3) -> object:
    engine = create_engine(url, connect_args={"connect_timeout": timeout}, poolclass=None)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


def test_cluster_answers_on_its_own_port_and_keeps_data_across_restarts(
    pg_cluster: PgCluster,
) -> None:
    """A committed row survives a fast restart, and the URL stays the same."""
    url = pg_cluster.url
    assert f":{pg_cluster.port}/" in url and pg_cluster.port != 5432
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE kept (n int)"))
        conn.execute(text("INSERT INTO kept VALUES (7)"))
    engine.dispose()
    pg_cluster.restart()
    assert pg_cluster.url == url
    assert query_one(url, "SELECT n FROM kept") == 7


def test_stop_refuses_connections_until_start(pg_cluster: PgCluster) -> None:
    """After stop nothing listens on the port; start brings the same server back."""
    pg_cluster.stop()
    assert not pg_cluster.running
    with pytest.raises(OperationalError):
        query_one(pg_cluster.url)
    pg_cluster.start()
    assert query_one(pg_cluster.url) == 1


def test_kill_removes_every_server_process_and_recovers(pg_cluster: PgCluster) -> None:
    """kill -9 takes the postmaster and its backends; the next start runs crash recovery."""
    engine = create_engine(pg_cluster.url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE crash (n int)"))
        conn.execute(text("INSERT INTO crash VALUES (1)"))
    held = engine.connect()  # a live backend in the group
    held.execute(text("SELECT 1"))
    processes = pg_cluster.server_processes()
    assert len(processes) >= 3  # postmaster, background workers, our backend
    pg_cluster.kill()
    assert not pg_cluster.running
    assert not any(_alive(pid) for pid in processes)
    held.invalidate()
    engine.dispose()
    pg_cluster.start()
    assert query_one(pg_cluster.url, "SELECT count(*) FROM crash") == 1
    assert "database system was interrupted" in pg_cluster.log_file.read_text()


def test_freeze_makes_queries_hang_and_thaw_releases_them(pg_cluster: PgCluster) -> None:
    """A frozen server accepts TCP but answers nothing until thawed."""
    pg_cluster.freeze()
    started = time.monotonic()
    with pytest.raises(OperationalError, match="timeout"):
        query_one(pg_cluster.url, timeout=1)
    assert time.monotonic() - started >= 0.9
    pg_cluster.thaw()
    assert query_one(pg_cluster.url) == 1


def test_destroy_stops_a_frozen_server_and_deletes_its_folder(pg_template: Path) -> None:
    """Clean-up works from the worst state: frozen, with its folder full."""
    cluster = PgCluster(template=pg_template)
    cluster.start()
    processes = cluster.server_processes()
    cluster.freeze()
    cluster.destroy()
    assert not cluster.base.exists()
    assert not any(_alive(pid) for pid in processes)
    cluster.destroy()  # twice is harmless


def test_missing_binaries_are_a_clear_error(tmp_path: Path) -> None:
    """Pointing at a folder without PostgreSQL says so instead of failing later."""
    with pytest.raises(ClusterError, match="binaries not found"):
        PgCluster(bin_dir=tmp_path)


def test_absent_binaries_skip_locally_and_fail_in_ci(tmp_path: Path) -> None:
    """No PostgreSQL: skip on a laptop, fail when TELEGESTION_REQUIRE_POSTGRES=1 (CI)."""
    assert absent_binaries_policy(tmp_path, {})[0] == "skip"
    assert absent_binaries_policy(tmp_path, {"TELEGESTION_REQUIRE_POSTGRES": "0"})[0] == "skip"
    action, why = absent_binaries_policy(tmp_path, {"TELEGESTION_REQUIRE_POSTGRES": "1"})
    assert action == "fail" and "binaries not found" in why
    assert absent_binaries_policy(PG_BIN, {"TELEGESTION_REQUIRE_POSTGRES": "1"}) == ("run", "")
