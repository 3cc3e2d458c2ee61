"""The durable spool (ivr.spool): what it holds survives a crash, in order, until replayed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.spool import Spool

AT = dt.datetime(2026, 11, 23, 8, 30, 12, 345678, tzinfo=dt.UTC)


def test_entries_come_back_after_reopening_in_order(tmp_path: Path) -> None:
    """Entries written, the spool closed and opened again: same entries, same order, datetimes
    aware."""
    spool = Spool(tmp_path)
    first = spool.append("punch", "node1", "c1", {"at": AT, "kind": "arrival", "n": [1, None]})
    second = spool.append("journal", "node1", "c1", {"events": [[AT, "prompt", {"p": "x"}]]})
    spool.close()
    again = Spool(tmp_path)
    entries = again.entries()
    assert [(e.seq, e.kind, e.origin, e.call_key) for e in entries] == [
        (first, "punch", "node1", "c1"),
        (second, "journal", "node1", "c1"),
    ]
    assert entries[0].payload == {"at": AT, "kind": "arrival", "n": [1, None]}
    assert entries[1].payload["events"][0][0] == AT
    assert again.backlog() == 2


def test_an_entry_is_on_disk_when_append_returns(tmp_path: Path) -> None:
    """A process killed (SIGKILL) right after append: the entry is there on the next open."""
    script = (
        "import os, signal, sys\n"
        "from ivr.spool import Spool\n"
        "s = Spool(sys.argv[1])\n"
        "s.append('punch', 'node1', 'k1', {'kind': 'arrival'})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False)
    assert done.returncode == -9
    spool = Spool(tmp_path)
    assert [(e.kind, e.call_key, e.payload) for e in spool.entries()] == [
        ("punch", "k1", {"kind": "arrival"})
    ]


def test_removed_entries_are_gone_and_the_backlog_counts_the_rest(tmp_path: Path) -> None:
    """Removing replayed entries keeps the others in order; the backlog follows, reopened too."""
    spool = Spool(tmp_path)
    seqs = [spool.append("tasks", "n", f"c{i}", {"codes": [str(i)]}) for i in range(4)]
    spool.remove([seqs[0], seqs[2], 999])
    assert [e.seq for e in spool.entries()] == [seqs[1], seqs[3]]
    assert spool.backlog() == 2
    assert spool.replayed_total == 2
    assert [e.seq for e in spool.entries(limit=1)] == [seqs[1]]
    spool.close()
    assert Spool(tmp_path).backlog() == 2


def test_an_entry_set_aside_leaves_the_line_but_is_kept(tmp_path: Path) -> None:
    """An entry the database refuses for good moves to the dead table with its reason."""
    spool = Spool(tmp_path)
    spool.append("punch", "n", "bad", {"kind": "arrival"})
    spool.append("punch", "n", "good", {"kind": "arrival"})
    bad = spool.entries()[0]
    spool.set_aside(bad, "IntegrityError: carer gone")
    assert [e.call_key for e in spool.entries()] == ["good"]
    assert spool.backlog() == 1
    assert spool.set_aside_count() == 1
    [(kept, reason)] = spool.set_aside_entries()
    assert kept.call_key == "bad" and reason.startswith("IntegrityError")


def test_unknown_kinds_and_values_are_refused(tmp_path: Path) -> None:
    """Only the replayable kinds and JSON values (and datetimes) are spooled."""
    spool = Spool(tmp_path)
    with pytest.raises(ValueError):
        spool.append("nonsense", "n", "c", {})
    with pytest.raises(TypeError):
        spool.append("punch", "n", "c", {"x": object()})
    assert spool.backlog() == 0


def test_oldest_age_is_that_of_the_first_waiting_entry(tmp_path: Path) -> None:
    """The age shown on /healthz is measured from the oldest entry still waiting."""
    spool = Spool(tmp_path)
    assert spool.oldest_age_s() is None
    spool.append("tasks", "n", "c", {"codes": []})
    written = spool.entries()[0].written_at
    assert spool.oldest_age_s(now=written + 7.5) == pytest.approx(7.5)
