"""A worker's durable local spool: what a call wrote while the database could not take it.

A carer who heard "arrival recorded" must be paid for it, whatever failed: when PostgreSQL is
down or frozen, the punch, the later changes to it and the call's journal go here, on this
worker's own disk, *before* the readback, and ``ivr.spool_replay`` copies them to the database
once it answers again, in the order they were written.

Why SQLite (stdlib ``sqlite3``) rather than an append-only file with ``fsync``: a commit in WAL
mode with ``synchronous=FULL`` is on disk when it returns, a torn last write is rolled back by
SQLite itself on the next open (no hand-written record framing, checksums or truncation
recovery), entries are removed one by one once replayed without rewriting a file, and the
``seq`` primary key gives the replay order for free. The cost, one small transaction and one
fsync per entry, is paid only during an outage.

Entries hold plain JSON; datetimes are tagged (``{"$dt": iso}``) so that they come back as
timezone-aware ``datetime`` objects.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The entry kinds ``ivr.spool_replay`` knows how to replay.
KINDS = frozenset({"punch", "correct", "absent", "tasks", "code_failure", "journal"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    call_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    origin TEXT NOT NULL,
    call_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    written_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"cannot spool {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return dt.datetime.fromisoformat(obj["$dt"])
    return obj


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=_encode, separators=(",", ":"), sort_keys=True)


def loads(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text, object_hook=_decode)
    return loaded


@dataclasses.dataclass(frozen=True)
class SpoolEntry:
    seq: int
    kind: str
    origin: str
    call_key: str
    payload: dict[str, Any]
    written_at: float  # time.time() when spooled


class Spool:
    """One file per worker; safe to share between threads (one connection behind a lock)."""

    FILE_NAME = "spool.sqlite3"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / self.FILE_NAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._backlog = self._db.execute("SELECT count(*) FROM entries").fetchone()[0]
        self._dead = self._db.execute("SELECT count(*) FROM dead").fetchone()[0]
        #: entries written since this process started (a counter for metrics)
        self.appended_total = 0
        #: entries replayed and removed since this process started
        self.replayed_total = 0
        #: why the last write failed (a full disk...), None once a write succeeds
        self.last_write_error: str | None = None

    # --- writing ----------------------------------------------------------------------------

    def append(self, kind: str, origin: str, call_key: str, payload: dict[str, Any]) -> int:
        """Write one entry; it is on disk when this returns. Returns its sequence number."""
        if kind not in KINDS:
            raise ValueError(f"unknown spool entry kind {kind!r}")
        text = dumps(payload)
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO entries (kind, origin, call_key, payload, written_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (kind, origin, call_key, text, time.time()),
                )
            except sqlite3.Error as exc:
                self.last_write_error = f"{type(exc).__name__}: {exc}"
                log.error("spool %s refused an entry: %s", self.path, exc)
                raise
            self.last_write_error = None
            self._backlog += 1
            self.appended_total += 1
            seq = cur.lastrowid
        assert seq is not None
        return seq

    def remove(self, seqs: Iterable[int]) -> None:
        """Forget entries whose database transaction has committed."""
        seqs = list(seqs)
        if not seqs:
            return
        with self._lock:
            self._db.execute("BEGIN")
            removed = 0
            for seq in seqs:
                removed += self._db.execute("DELETE FROM entries WHERE seq = ?", (seq,)).rowcount
            self._db.execute("COMMIT")
            self._backlog -= removed
            self.replayed_total += removed

    def set_aside(self, entry: SpoolEntry, reason: str) -> None:
        """Move an entry the database refuses for good (not an outage) out of the way, kept
        for support: one bad entry must not hold back every later one."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO dead (seq, kind, origin, call_key, payload, written_at,"
                " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.seq,
                    entry.kind,
                    entry.origin,
                    entry.call_key,
                    dumps(entry.payload),
                    entry.written_at,
                    reason[:500],
                ),
            )
            removed = self._db.execute("DELETE FROM entries WHERE seq = ?", (entry.seq,)).rowcount
            self._db.execute("COMMIT")
            self._backlog -= removed
            self._dead += 1

    # --- reading ----------------------------------------------------------------------------

    def entries(self, limit: int = 200, kinds: Iterable[str] | None = None) -> list[SpoolEntry]:
        """The oldest entries first."""
        query = "SELECT seq, kind, origin, call_key, payload, written_at FROM entries"
        params: list[Any] = []
        if kinds is not None:
            wanted = sorted(kinds)
            query += f" WHERE kind IN ({','.join('?' for _ in wanted)})"
            params.extend(wanted)
        query += " ORDER BY seq LIMIT ?"
        params.append(int(limit))
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [SpoolEntry(s, k, o, c, loads(p), w) for s, k, o, c, p, w in rows]

    def set_aside_entries(self) -> list[tuple[SpoolEntry, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, origin, call_key, payload, written_at, reason FROM dead"
                " ORDER BY seq"
            ).fetchall()
        return [(SpoolEntry(s, k, o, c, loads(p), w), r) for s, k, o, c, p, w, r in rows]

    def ok(self) -> bool:
        """Whether the spool took its last write (True before any): for /healthz."""
        return self.last_write_error is None

    def backlog(self) -> int:
        """Entries waiting for the database (kept in memory: cheap on the reactor thread)."""
        return self._backlog

    def set_aside_count(self) -> int:
        """Entries the database refused for good, kept in the ``dead`` table."""
        return self._dead

    def oldest_age_s(self, now: float | None = None) -> float | None:
        """Seconds since the oldest waiting entry was written; ``None`` when empty."""
        with self._lock:
            row = self._db.execute("SELECT min(written_at) FROM entries").fetchone()
        if row is None or row[0] is None:
            return None
        return max(0.0, (time.time() if now is None else now) - row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
