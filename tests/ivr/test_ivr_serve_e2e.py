"""`telegestion serve` on real sockets, with many concurrent simulated Asterisk calls."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ivr_harness import MME_DUBOIS, SHARED, load_examples
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import Call, CallEvent, Carer, Punch

HERE = Path(__file__).resolve().parent


@pytest.fixture
def server(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[tuple[int, int]]:
    """A `telegestion serve` process on the test database; yields its FastAGI and HTTP ports."""
    load_examples(sessions)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    env.update(
        TELEGESTION_DATABASE_URL=db_url, TELEGESTION_NODE="e2e", TELEGESTION_DB_POOL_SIZE="8"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "telegestion.cli",
            "serve",
            "--agi-port",
            "0",
            "--http-port",
            "0",
            "--listen",
            "127.0.0.1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"FastAGI on [\d.]+:(\d+), HTTP on port (\d+)", line)
    if match is None:
        proc.kill()
        pytest.fail(f"serve did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield int(match.group(1)), int(match.group(2))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def place(port: int, specs: list[dict], tmp_path: Path, speed: float = 8.0) -> list[dict]:
    spec_file = tmp_path / "calls.jsonl"
    spec_file.write_text("".join(json.dumps(s) + "\n" for s in specs))
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "place_calls_client.py"),
            "127.0.0.1",
            str(port),
            str(spec_file),
            str(speed),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_many_concurrent_calls_each_record_one_punch(
    server: tuple[int, int], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """60 calls at once over TCP: every one is answered, punched once and journaled in full."""
    agi_port, http_port = server
    with sessions() as s:
        codes = list(
            s.scalars(select(Carer.carer_code).where(Carer.active.is_(True), Carer.company_id == 1))
        )
    specs = [
        {
            "called": SHARED,
            "caller": MME_DUBOIS if i % 3 else None,
            "keys": f",042,{codes[i % len(codes)]}",
            "uniqueid": f"1795400000.{i}",
        }
        for i in range(60)
    ]
    results = place(agi_port, specs, tmp_path)
    assert len(results) == 60
    assert [r["status"] for r in results] == ["punch_recorded"] * 60, results[:3]
    assert all(r["agistatus"] == "HANGUP" for r in results)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Punch).where(Punch.origin == "e2e")) == 60
        calls = s.scalars(select(Call).where(Call.origin == "e2e")).all()
        assert len(calls) == 60 and all(c.outcome == "punch_recorded" for c in calls)
        assert all(c.ended_at is not None for c in calls)
        per_call = dict(
            s.execute(select(CallEvent.call_id, func.count()).group_by(CallEvent.call_id)).all()
        )
        assert all(per_call[c.id] >= 8 for c in calls)
    # The same calls replayed (same uniqueids): no new punch.
    again = place(agi_port, specs[:10], tmp_path)
    assert [r["status"] for r in again] == ["punch_recorded"] * 10
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Punch).where(Punch.origin == "e2e")) == 60
    health = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5).read()
    )
    assert health["status"] == "ok" and health["node"] == "e2e"


def test_garbage_client_does_not_disturb_a_call(server: tuple[int, int], tmp_path: Path) -> None:
    """A client sending garbage is dropped while a real call on the same server completes."""
    import socket

    agi_port, _ = server
    bad = socket.create_connection(("127.0.0.1", agi_port), timeout=5)
    bad.sendall(b"GET / HTTP/1.0\r\n\r\n")
    results = place(
        agi_port, [{"called": SHARED, "caller": MME_DUBOIS, "keys": ">042>12345"}], tmp_path
    )
    assert results[0]["status"] == "punch_recorded"
    bad.settimeout(5)
    try:
        closed = bad.recv(100) == b""  # the server closed the garbage connection...
    except ConnectionResetError:
        closed = True  # ...or aborted it
    finally:
        bad.close()
    assert closed
