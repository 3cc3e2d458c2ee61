"""Writing one run's result for its carer-days: only what changed, in the caller's transaction.

A run owns a set of carer-days (:class:`reconciliation.model.CarerDay`). For them, and only
for them, the database must end up holding exactly what the rules produced:

- visits (upserted by key; those of these carer-days the rules no longer produce are deleted);
- visit matches of the planned interventions these carer-days own (upserted by intervention);
- the realised fields and status of those planned interventions (the core model);
- anomalies: new ones inserted, changed ones updated, a ``closed`` one that comes back reopened
  (``open``, or ``resolved`` when a coordinator's resolution still answers it); and those the
  rules no longer raise are marked ``closed`` — never deleted, so the coordinator's resolutions
  and their audit trail stay attached. CODE_BRUTE_FORCE belongs to the IVR: never touched.

What is already right is not written at all, so a re-run over unchanged data writes nothing.
Large writes on PostgreSQL go through COPY into a temporary table and one set-based statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from reconciliation.db_load import CoreState, Snapshot
from reconciliation.model import AnomalyOut, CarerDay, Result, Visit
from reconciliation.scope import day_bounds
from reconciliation.sql_access import Sql

#: From this many rows on, PostgreSQL writes through COPY (fewer round trips, less parsing).
BULK_ROWS = 500


@dataclass(slots=True)
class WriteCounts:
    """How many rows one or more runs wrote, by what happened to them."""

    visits_written: int = 0
    visits_deleted: int = 0
    matches_written: int = 0
    matches_deleted: int = 0
    realised_updated: int = 0
    anomalies_written: int = 0
    anomalies_closed: int = 0

    def add(self, other: WriteCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Owned:
    """The carer-days of one company a run writes, and the box that holds them (for queries)."""

    company_id: int
    carer_days: frozenset[CarerDay]
    carers: tuple[int, ...] = field(init=False)
    first: date = field(init=False)
    last: date = field(init=False)

    def __post_init__(self) -> None:
        if not self.carer_days:
            raise ValueError("no carer-days to write")
        if any(cd.company_id != self.company_id for cd in self.carer_days):
            raise ValueError("carer-days of another company")
        object.__setattr__(self, "carers", tuple(sorted({cd.carer_id for cd in self.carer_days})))
        object.__setattr__(self, "first", min(cd.day for cd in self.carer_days))
        object.__setattr__(self, "last", max(cd.day for cd in self.carer_days))


def _document(detail: Mapping[str, object]) -> dict[str, Any]:
    """The detail as it reads back from a JSON column, so that it compares equal."""
    loaded: dict[str, Any] = json.loads(json.dumps(detail, sort_keys=True))
    return loaded


def _visit_values(visit: Visit) -> tuple[Any, ...]:
    return (
        visit.carer_id,
        visit.client_id,
        visit.arrival_punch_id,
        visit.departure_punch_id,
        visit.start,
        visit.end,
        visit.day,
    )


def _anomaly_values(found: AnomalyOut) -> tuple[Any, ...]:
    return (
        found.company_id,
        str(found.code),
        found.severity,
        "open" if found.resolution is None else "resolved",
        found.carer_id,
        found.client_id,
        found.planned_id,
        found.punch_id,
        found.at,
        _document(found.detail),
        found.owner.carer_id,
        found.owner.day,
    )


class Writer:
    """Diffs one run's result against the database and writes the difference."""

    def __init__(self, sql: Sql, now: datetime) -> None:
        self.sql = sql
        self.now = now
        self._planned_bulk = False

    def write(self, owned: Owned, result: Result, snapshot: Snapshot, timezone: str) -> WriteCounts:
        counts = WriteCounts()
        keep = owned.carer_days
        all_visits = {v.key: v for v in result.visits}
        visits = {v.key: v for v in result.visits if v.owner in keep}
        matches = {m.planned_id: m for m in result.matches if m.owner in keep}
        realised = {pid: r for pid, r in result.realised.items() if r.owner in keep}
        anomalies = {a.key: a for a in result.anomalies if a.owner in keep}

        old_visits = self._owned_visits(owned)
        old_matches = self._owned_matches(owned, timezone, realised)
        old_anomalies = self._owned_anomalies(owned)

        # Visits: upsert what changed; the visits a match needs that another carer-day owns
        # are inserted when missing (their owner's run keeps them right).
        upsert_visits = [
            (owned.company_id, key, *values)
            for key, visit in sorted(visits.items())
            if old_visits.get(key, (None, None))[1] != (values := _visit_values(visit))
        ]
        foreign = self._missing_visits(
            owned.company_id, {m.visit_key for m in matches.values() if m.visit_key not in visits}
        )
        ensure_visits = [(owned.company_id, k, *_visit_values(all_visits[k])) for k in foreign]
        gone_visits = sorted(
            visit_id for key, (visit_id, _) in old_visits.items() if key not in visits
        )
        # Matches and the core model.
        upsert_matches = []
        for planned_id, match in sorted(matches.items()):
            row = (match.visit_key, match.start, match.end, match.how)
            if old_matches.get(planned_id) != row:
                upsert_matches.append((owned.company_id, planned_id, *row))
        gone_matches = sorted(pid for pid in old_matches if pid not in matches)
        core_updates = []
        for planned_id, done in sorted(realised.items()):
            state = CoreState(
                done.status,
                done.realised_start,
                done.realised_end,
                done.realised_minutes,
                done.done_by_carer_id,
            )
            if snapshot.state.get(planned_id) != state:
                core_updates.append((planned_id, *_core_values(state)))
        # Anomalies.
        upsert_anomalies = []
        for key, found in sorted(anomalies.items()):
            values = _anomaly_values(found)
            if old_anomalies.get(key, (None, None, None))[2] != values:
                upsert_anomalies.append((key, *values))
        to_close = sorted(
            anomaly_id
            for key, (anomaly_id, status, values) in old_anomalies.items()
            if key not in anomalies and status != "closed" and values[1] != "CODE_BRUTE_FORCE"
        )

        self._upsert_visits(upsert_visits, replace=True)
        self._upsert_visits(ensure_visits, replace=False)
        self._delete("visit_matches", "intervention_id", gone_matches)
        self._delete("visits", "id", gone_visits)
        self._upsert_matches(upsert_matches)
        self._update_core(core_updates)
        self._upsert_anomalies(upsert_anomalies)
        if to_close:
            self.sql.execute(
                "UPDATE anomalies SET status = 'closed', updated_at = :now WHERE id IN_LIST(:ids)",
                now=self.now,
                ids=to_close,
            )
        counts.visits_written = len(upsert_visits) + len(ensure_visits)
        counts.visits_deleted = len(gone_visits)
        counts.matches_written = len(upsert_matches)
        counts.matches_deleted = len(gone_matches)
        counts.realised_updated = len(core_updates)
        counts.anomalies_written = len(upsert_anomalies)
        counts.anomalies_closed = len(to_close)
        return counts

    # --- what the database holds now for these carer-days ---------------------------------------

    def _owned_visits(self, owned: Owned) -> dict[str, tuple[int, tuple[Any, ...]]]:
        sql = self.sql
        rows = sql.fetch(
            "SELECT id, key, carer_id, client_id, arrival_punch_id, departure_punch_id,"
            " start_at, end_at, day FROM visits"
            " WHERE company_id = :company AND carer_id IN_LIST(:carers)"
            " AND day >= :first AND day <= :last",
            company=owned.company_id,
            carers=list(owned.carers),
            first=owned.first,
            last=owned.last,
        )
        found = {}
        for vid, key, carer, client, arrival, departure, start, end, day_raw in rows:
            day = sql.day(day_raw)
            assert day is not None
            if CarerDay(owned.company_id, carer, day) in owned.carer_days:
                values = (
                    carer,
                    client,
                    arrival,
                    departure,
                    sql.instant(start),
                    sql.instant(end),
                    day,
                )
                found[key] = (vid, values)
        return found

    def _missing_visits(self, company_id: int, keys: set[str]) -> list[str]:
        if not keys:
            return []
        rows = self.sql.fetch(
            "SELECT key FROM visits WHERE company_id = :company AND key IN_LIST(:keys)",
            company=company_id,
            keys=sorted(keys),
        )
        return sorted(keys - {key for (key,) in rows})

    def _owned_matches(
        self, owned: Owned, timezone: str, realised: Collection[int]
    ) -> dict[int, tuple[Any, ...]]:
        sql = self.sql
        start, _ = day_bounds(owned.first, timezone)
        _, end = day_bounds(owned.last, timezone)
        rows = sql.fetch(
            "SELECT m.intervention_id, v.key, m.start_at, m.end_at, m.how"
            " FROM interventions i"
            " JOIN visit_matches m ON m.intervention_id = i.id"
            " JOIN visits v ON v.id = m.visit_id"
            " WHERE i.carer_id IN_LIST(:carers) AND i.planned_start >= :start"
            " AND i.planned_start < :end",
            carers=list(owned.carers),
            start=start,
            end=end,
        )
        return {
            pid: (key, sql.instant(s), sql.instant(e), how)
            for pid, key, s, e, how in rows
            if pid in realised
        }

    def _owned_anomalies(self, owned: Owned) -> dict[str, tuple[int, str, tuple[Any, ...]]]:
        sql = self.sql
        rows = sql.fetch(
            "SELECT id, key, company_id, code, severity, status, carer_id, client_id,"
            " intervention_id, punch_id, at, detail, owner_carer_id, owner_day FROM anomalies"
            " WHERE owner_carer_id IN_LIST(:carers) AND owner_day >= :first"
            " AND owner_day <= :last",
            carers=list(owned.carers),
            first=owned.first,
            last=owned.last,
        )
        found = {}
        for row in rows:
            day = sql.day(row[13])
            assert day is not None
            if CarerDay(row[2], row[12], day) not in owned.carer_days:
                continue
            values = (
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                sql.instant(row[10]),
                sql.document(row[11]),
                row[12],
                day,
            )
            found[row[1]] = (row[0], row[5], values)
        return found

    # --- writes ---------------------------------------------------------------------------------

    def _bulk(self, rows: list[Any]) -> bool:
        if not self.sql.postgres or len(rows) < BULK_ROWS:
            return False
        if not self._planned_bulk:
            # Each bulk statement joins a chunk-sized temporary table to a large table on a
            # unique index: index lookups cost what the chunk costs, where a hash or merge join
            # would read the whole table (years of rows) for every chunk.
            self.sql.execute("SET LOCAL enable_hashjoin = off")
            self.sql.execute("SET LOCAL enable_mergejoin = off")
            self._planned_bulk = True
        return True

    def _delete(self, table: str, column: str, ids: list[int]) -> None:
        if ids:
            self.sql.execute(f"DELETE FROM {table} WHERE {column} IN_LIST(:ids)", ids=ids)

    def _upsert_visits(self, rows: list[tuple[Any, ...]], *, replace: bool) -> None:
        if not rows:
            return
        columns = (
            "company_id, key, carer_id, client_id, arrival_punch_id, departure_punch_id,"
            " start_at, end_at, day"
        )
        action = (
            "DO UPDATE SET carer_id = excluded.carer_id, client_id = excluded.client_id,"
            " arrival_punch_id = excluded.arrival_punch_id,"
            " departure_punch_id = excluded.departure_punch_id, start_at = excluded.start_at,"
            " end_at = excluded.end_at, day = excluded.day"
            if replace
            else "DO NOTHING"
        )
        if self._bulk(rows):
            self.sql.copy_into_temp(
                "tg_visits",
                "company_id int, key text, carer_id int, client_id int, arrival_punch_id int,"
                " departure_punch_id int, start_at timestamptz, end_at timestamptz, day date",
                rows,
            )
            self.sql.execute(
                f"INSERT INTO visits ({columns}) SELECT {columns} FROM tg_visits"
                f" ON CONFLICT (company_id, key) {action}"
            )
            return
        names = ("company_id", "key", "carer", "client", "arrival", "departure", "s", "e", "day")
        self.sql.executemany(
            f"INSERT INTO visits ({columns}) VALUES (:company_id, :key, :carer, :client,"
            f" :arrival, :departure, :s, :e, :day) ON CONFLICT (company_id, key) {action}",
            [dict(zip(names, row, strict=True)) for row in rows],
        )

    def _upsert_matches(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        action = (
            "ON CONFLICT (intervention_id) DO UPDATE SET visit_id = excluded.visit_id,"
            " start_at = excluded.start_at, end_at = excluded.end_at, how = excluded.how"
        )
        if self._bulk(rows):
            self.sql.copy_into_temp(
                "tg_matches",
                "company_id int, intervention_id int, visit_key text, start_at timestamptz,"
                " end_at timestamptz, how text",
                rows,
            )
            self.sql.execute(
                "INSERT INTO visit_matches (visit_id, intervention_id, start_at, end_at, how)"
                " SELECT v.id, t.intervention_id, t.start_at, t.end_at, t.how FROM tg_matches t"
                " JOIN visits v ON v.company_id = t.company_id AND v.key = t.visit_key"
                f" {action}"
            )
            return
        names = ("company_id", "planned", "key", "s", "e", "how")
        self.sql.executemany(
            "INSERT INTO visit_matches (visit_id, intervention_id, start_at, end_at, how)"
            " VALUES ((SELECT id FROM visits WHERE company_id = :company_id AND key = :key),"
            f" :planned, :s, :e, :how) {action}",
            [dict(zip(names, row, strict=True)) for row in rows],
        )

    def _update_core(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._bulk(rows):
            self.sql.copy_into_temp(
                "tg_realised",
                "id int, status text, realised_start timestamptz, realised_end timestamptz,"
                " realised_minutes int, realised_carer_id int",
                rows,
            )
            self.sql.execute(
                "UPDATE interventions SET status = t.status, realised_start = t.realised_start,"
                " realised_end = t.realised_end, realised_minutes = t.realised_minutes,"
                " realised_carer_id = t.realised_carer_id, updated_at = :now"
                " FROM tg_realised t WHERE interventions.id = t.id",
                now=self.now,
            )
            return
        names = ("id", "status", "s", "e", "minutes", "carer")
        self.sql.executemany(
            "UPDATE interventions SET status = :status, realised_start = :s, realised_end = :e,"
            " realised_minutes = :minutes, realised_carer_id = :carer, updated_at = :now"
            " WHERE id = :id",
            [{**dict(zip(names, row, strict=True)), "now": self.now} for row in rows],
        )

    def _upsert_anomalies(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns = (
            "key, company_id, code, severity, status, carer_id, client_id, intervention_id,"
            " punch_id, at, detail, owner_carer_id, owner_day"
        )
        update = (
            "ON CONFLICT (key) DO UPDATE SET company_id = excluded.company_id,"
            " code = excluded.code, severity = excluded.severity, status = excluded.status,"
            " carer_id = excluded.carer_id, client_id = excluded.client_id,"
            " intervention_id = excluded.intervention_id, punch_id = excluded.punch_id,"
            " at = excluded.at, detail = excluded.detail,"
            " owner_carer_id = excluded.owner_carer_id, owner_day = excluded.owner_day,"
            " updated_at = excluded.updated_at"
        )
        if self._bulk(rows):
            self.sql.copy_into_temp(
                "tg_anomalies",
                "key text, company_id int, code text, severity text, status text, carer_id int,"
                " client_id int, intervention_id int, punch_id int, at timestamptz, detail text,"
                " owner_carer_id int, owner_day date",
                rows,
            )
            self.sql.execute(
                f"INSERT INTO anomalies ({columns}, created_at, updated_at)"
                " SELECT key, company_id, code, severity, status, carer_id, client_id,"
                " intervention_id, punch_id, at, detail::json, owner_carer_id, owner_day,"
                " :now, :now FROM tg_anomalies"
                f" {update}",
                now=self.now,
            )
            return
        names = (
            "key",
            "company_id",
            "code",
            "severity",
            "status",
            "carer_id",
            "client_id",
            "intervention_id",
            "punch_id",
            "at",
            "detail",
            "owner_carer_id",
            "owner_day",
        )
        self.sql.executemany(
            f"INSERT INTO anomalies ({columns}, created_at, updated_at) VALUES ("
            + ", ".join(f":{n}" for n in names)
            + f", :now, :now) {update}",
            [{**dict(zip(names, row, strict=True)), "now": self.now} for row in rows],
        )


def _core_values(state: CoreState) -> tuple[Any, ...]:
    return (
        state.status,
        state.realised_start,
        state.realised_end,
        state.realised_minutes,
        state.realised_carer_id,
    )
