"""The fault tests' harness: a real worker, real callers, and a verdict that can fail."""

from __future__ import annotations

from collections.abc import Callable

from pg_cluster import PgCluster
from serve_harness import CallLoad, ServeProcess, check_punches
from sqlalchemy import create_engine, delete, update

from telegestion.model import Punch


def test_a_healthy_run_passes_and_a_lost_or_changed_punch_is_caught(
    seeded_cluster: PgCluster,
    serve_factory: Callable[..., ServeProcess],
    load_factory: Callable[..., CallLoad],
) -> None:
    """With the database up every readback is stored; deleting or flipping one is reported."""
    worker = serve_factory(seeded_cluster.url)
    worker.start()
    records = load_factory(worker.agi_port, rate=20, count=30, prefix="healthy").finish()
    assert {r["style"] for r in records} >= {"listens_to_the_end", "hangs_up_after_readback"}
    finishers = [r for r in records if r["style"] == "listens_to_the_end"]
    assert finishers and all(r["status"] == "punch_recorded" and r["heard"] for r in finishers)
    verdict = check_punches(seeded_cluster.url, worker.node, records)
    assert verdict.ok, verdict.describe()
    assert verdict.heard >= len(finishers)

    heard = [r for r in records if r["heard"]]
    gone, flipped = heard[0], heard[1]
    engine = create_engine(seeded_cluster.url)
    with engine.begin() as conn:
        conn.execute(delete(Punch).where(Punch.call_key == gone["uid"]))
        other = "departure" if flipped["heard"] == "arrival" else "arrival"
        conn.execute(update(Punch).where(Punch.call_key == flipped["uid"]).values(kind=other))
    engine.dispose()
    verdict = check_punches(seeded_cluster.url, worker.node, records)
    assert verdict.lost == (gone["uid"],)
    assert verdict.wrong_kind == ((flipped["uid"], flipped["heard"], other),)
    assert worker.terminate() == 0
