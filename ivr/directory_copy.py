"""The worker's local copy of what a call needs to know, for when the database cannot say.

Two things let a call complete without PostgreSQL: the directory (companies, service numbers,
active carers, client landlines) to validate the codes keyed, and the carers' recent punches
(the latest one per ``ivr.punch_rules.PunchScope`` over the last ~15 hours) so that an offline
punch gets the kind the database would have given it. Both are kept in memory, refreshed from
the database while it answers, and written to one local file after each refresh so that a
worker restarted during an outage starts with them.

The file is replaced atomically (temporary file, fsync, rename, fsync of the folder): a crash
while writing leaves the previous copy whole, and a torn temporary file is never read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ivr import punch_rules

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

#: How far back punches matter to the punch-kind rule: an open arrival is 14 hours at most.
PUNCH_WINDOW = punch_rules.OPEN_ARRIVAL_WINDOW + dt.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class CompanyEntry:
    company_id: int
    code: str
    language: str
    timezone: str
    task_codes_enabled: bool
    region: str


@dataclasses.dataclass(frozen=True)
class DirectoryCopy:
    """The directory as ``ivr.call_store.CallStore`` keeps it, with the time it was read."""

    companies: tuple[CompanyEntry, ...]
    numbers: Mapping[str, tuple[str, int | None]]
    carers: Mapping[tuple[int, str], int]
    landlines: Mapping[tuple[int, str], int]
    fetched_at: dt.datetime

    def age_s(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.fetched_at).total_seconds())


@dataclasses.dataclass(frozen=True)
class RecentPunch:
    """A punch as the punch-kind rule sees it; ``caller_number`` as the punch stores it (E.164,
    else raw), ``None`` for a withheld number."""

    origin: str
    call_key: str
    carer_id: int
    client_id: int | None
    caller_number: str | None
    kind: punch_rules.PunchKind
    at: dt.datetime
    client_absent: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.origin, self.call_key

    @property
    def scope(self) -> punch_rules.PunchScope:
        return punch_rules.punch_scope(self.carer_id, self.client_id, self.caller_number)

    def as_latest(self) -> punch_rules.LatestPunch:
        return punch_rules.LatestPunch(self.kind, self.at, self.client_absent)


class RecentPunches:
    """The latest punch per scope: the database's (reloaded whole at each refresh) overlaid
    with the punches this worker recorded itself, which win (a spooled punch is not in the
    database yet, and its kind is what the carer heard)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._from_db: dict[tuple[str, str], RecentPunch] = {}
        self._local: dict[tuple[str, str], RecentPunch] = {}
        self._by_scope: dict[punch_rules.PunchScope, RecentPunch] = {}

    def replace_from_db(self, punches: Iterable[RecentPunch], now: dt.datetime) -> None:
        since = now - PUNCH_WINDOW
        fresh = {p.key: p for p in punches if p.at > since}
        with self._lock:
            self._from_db = fresh
            self._local = {k: p for k, p in self._local.items() if p.at > since}
            self._rebuild()

    def add_local(self, punch: RecentPunch) -> None:
        """A punch this worker recorded (online or spooled), or a change to one."""
        with self._lock:
            self._local[punch.key] = punch
            current = self._by_scope.get(punch.scope)
            if current is None or current.key == punch.key or current.at <= punch.at:
                self._by_scope[punch.scope] = punch

    def update_local(self, key: tuple[str, str], **changes: Any) -> None:
        with self._lock:
            punch = self._local.get(key) or self._from_db.get(key)
            if punch is None:
                return
            changed = dataclasses.replace(punch, **changes)
            self._local[key] = changed
            if (current := self._by_scope.get(changed.scope)) is not None and current.key == key:
                self._by_scope[changed.scope] = changed

    def latest(
        self, scope: punch_rules.PunchScope, now: dt.datetime
    ) -> punch_rules.LatestPunch | None:
        with self._lock:
            found = self._by_scope.get(scope)
        if found is None or found.at <= now - PUNCH_WINDOW:
            return None
        return found.as_latest()

    def snapshot(self) -> list[RecentPunch]:
        with self._lock:
            return sorted(self._by_scope.values(), key=lambda p: (p.at, p.key))

    def __len__(self) -> int:
        return len(self._by_scope)

    def _rebuild(self) -> None:
        merged = {**self._from_db, **self._local}
        by_scope: dict[punch_rules.PunchScope, RecentPunch] = {}
        for punch in sorted(merged.values(), key=lambda p: p.at):
            by_scope[punch.scope] = punch
        self._by_scope = by_scope


# --- the file ------------------------------------------------------------------------------------


def _to_json(copy: DirectoryCopy, punches: Iterable[RecentPunch]) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "fetched_at": copy.fetched_at.isoformat(),
        "companies": [dataclasses.astuple(c) for c in copy.companies],
        "numbers": sorted([n, kind, cid] for n, (kind, cid) in copy.numbers.items()),
        "carers": sorted([cid, code, carer] for (cid, code), carer in copy.carers.items()),
        "landlines": sorted([cid, n, client] for (cid, n), client in copy.landlines.items()),
        "punches": [
            [
                p.origin,
                p.call_key,
                p.carer_id,
                p.client_id,
                p.caller_number,
                p.kind,
                p.at.isoformat(),
                p.client_absent,
            ]
            for p in punches
        ],
    }


def _from_json(data: dict[str, Any]) -> tuple[DirectoryCopy, list[RecentPunch]]:
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unknown directory copy version {data.get('version')!r}")
    copy = DirectoryCopy(
        companies=tuple(CompanyEntry(*row) for row in data["companies"]),
        numbers={n: (kind, cid) for n, kind, cid in data["numbers"]},
        carers={(cid, code): carer for cid, code, carer in data["carers"]},
        landlines={(cid, n): client for cid, n, client in data["landlines"]},
        fetched_at=dt.datetime.fromisoformat(data["fetched_at"]),
    )
    punches = [
        RecentPunch(o, k, carer, client, number, kind, dt.datetime.fromisoformat(at), absent)
        for o, k, carer, client, number, kind, at, absent in data["punches"]
    ]
    return copy, punches


def encode(copy: DirectoryCopy, punches: Iterable[RecentPunch]) -> bytes:
    return json.dumps(_to_json(copy, punches), separators=(",", ":")).encode()


def save_copy(path: Path, content: bytes) -> None:
    """Replace the file at ``path`` with ``content`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_copy(path: Path) -> tuple[DirectoryCopy, list[RecentPunch]] | None:
    """The saved copy, or ``None`` when there is none or it cannot be read (logged)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("directory copy %s cannot be read: %s", path, exc)
        return None
    try:
        return _from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        log.error("directory copy %s is damaged, ignored: %s", path, exc)
        return None
