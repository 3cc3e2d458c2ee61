"""Reading what reconciliation needs from the database, a few set-based queries per run.

:mod:`reconciliation.scope` says what one carer-day depends on: its carer's punches and
planning around the day, everything at the clients involved, the other carers seen there, and
the resolutions about all of it. :meth:`Loader.neighbourhood` loads that for many carers and a
range of days at once, with one query per kind of row instead of one per carer-day: loading
more than a carer-day needs never changes what it owns, so one load serves a whole chunk.

:class:`Loader` also answers :class:`reconciliation.scope.InputSource`, so the scope's refresh
functions (which carer-days a new punch can change) run against the database directly.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from reconciliation.model import (
    CompanyRules,
    PlannedIn,
    PunchIn,
    ResolutionIn,
    parse_anomaly_key,
)
from reconciliation.scope import _link_sides as link_sides
from reconciliation.scope import range_window
from reconciliation.sql_access import Row, Sql

log = logging.getLogger(__name__)

_PUNCH = """
SELECT p.id, p.company_id, p.carer_id, p.client_id, p.kind, p.at, p.source, p.caller_withheld,
       p.caller_e164, p.caller_raw, p.location_verified, p.status,
       (SELECT 1 FROM client_landlines l WHERE l.client_id = p.client_id LIMIT 1)
FROM punches p
"""
_PLANNED = """
SELECT i.id, i.company_id, i.client_id, i.carer_id, i.planned_start, i.planned_end, i.service,
       i.financer, i.status, i.realised_start, i.realised_end, i.realised_minutes,
       i.realised_carer_id
FROM interventions i
"""
_RESOLUTION = """
SELECT r.id, a.key, r.action, r.params
FROM anomaly_resolutions r JOIN anomalies a ON a.id = r.anomaly_id
"""


@dataclass(frozen=True, slots=True)
class CoreState:
    """What the core model says now about one planned intervention (written by the last run)."""

    status: str
    realised_start: datetime | None
    realised_end: datetime | None
    realised_minutes: int | None
    realised_carer_id: int | None


@dataclass(slots=True)
class Snapshot:
    """The inputs of one run, and the core-model state of the planned interventions loaded."""

    punches: dict[int, PunchIn] = field(default_factory=dict)
    planned: dict[int, PlannedIn] = field(default_factory=dict)
    state: dict[int, CoreState] = field(default_factory=dict)
    resolutions: dict[int, ResolutionIn] = field(default_factory=dict)


def company_rules(row: Row) -> CompanyRules:
    """``row`` is the tail of :data:`COMPANY_COLUMNS` after id and code."""
    (tz, arrival, departure, window, max_hours, min_visit, late, rule, step, direction) = row
    return CompanyRules(
        timezone=tz,
        arrival_tolerance_min=arrival,
        departure_tolerance_min=departure,
        match_window_min=window,
        max_visit_hours=max_hours,
        min_visit_min=min_visit,
        late_alert_min=late,
        rounding_rule=rule,
        rounding_step_min=step,
        rounding_direction=direction,
    )


COMPANY_COLUMNS = (
    "id, code, timezone, arrival_tolerance_min, departure_tolerance_min, match_window_min,"
    " max_visit_hours, min_visit_min, late_alert_min, rounding_rule, rounding_step_min,"
    " rounding_direction"
)


@dataclass(frozen=True, slots=True)
class Companies:
    rules: dict[int, CompanyRules]
    codes: dict[int, str]

    def id_of(self, code: str) -> int | None:
        return next((cid for cid, c in self.codes.items() if c == code), None)


def load_companies(sql: Sql, ids: Collection[int] | None = None) -> Companies:
    query = f"SELECT {COMPANY_COLUMNS} FROM companies"
    rows = sql.fetch(query + " WHERE id IN_LIST(:ids)", ids=list(ids)) if ids else sql.fetch(query)
    return Companies(
        rules={r[0]: company_rules(r[2:]) for r in rows}, codes={r[0]: r[1] for r in rows}
    )


class Loader:
    """Set-based reads over one connection; also an :class:`~reconciliation.scope.InputSource`."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    # --- rows into plain records --------------------------------------------------------------

    def _punch(self, row: Row) -> PunchIn:
        (pid, company, carer, client, kind, at, source, withheld, e164, raw, verified, status) = (
            row[:12]
        )
        withheld = bool(withheld)
        instant = self.sql.instant(at)
        assert instant is not None
        return PunchIn(
            id=pid,
            company_id=company,
            carer_id=carer,
            client_id=client,
            kind=kind,
            at=instant,
            source=source,
            caller_withheld=withheld,
            # A number was presented and named no client. The call-back's "not listed" comes
            # from the carer's own mobile: nothing unknown about the number there.
            caller_unknown=client is None
            and not withheld
            and source != "callback"
            and bool(e164 or raw),
            location_verified=bool(verified),
            client_has_landline=bool(row[12]) if client is not None else False,
            status=status,
        )

    def _planned(self, row: Row, state: dict[int, CoreState] | None = None) -> PlannedIn:
        start, end = self.sql.instant(row[4]), self.sql.instant(row[5])
        assert start is not None and end is not None
        item = PlannedIn(row[0], row[1], row[2], row[3], start, end, row[6] or "", row[7] or "")
        if state is not None:
            state[item.id] = CoreState(
                row[8], self.sql.instant(row[9]), self.sql.instant(row[10]), row[11], row[12]
            )
        return item

    def _resolution(self, row: Row) -> ResolutionIn | None:
        rid, key, action, raw_params = row
        params: dict[str, Any] = {}
        try:
            stored = self.sql.document(raw_params)
            for name in ("start", "end"):
                if stored.get(name):
                    params[name] = datetime.fromisoformat(str(stored[name]))
            if stored.get("planned_id") is not None:
                params["planned_id"] = int(stored["planned_id"])
            parse_anomaly_key(key)
            return ResolutionIn(key, action, params, rid)
        except (TypeError, ValueError) as exc:
            log.warning("resolution %s on %s ignored: %s", rid, key, exc)
            return None

    # --- set-based reads ----------------------------------------------------------------------

    def punches_of_carers(
        self,
        carers: Collection[int],
        start: datetime,
        end: datetime,
    ) -> list[PunchIn]:
        if not carers:
            return []
        rows = self.sql.fetch(
            _PUNCH + " WHERE p.carer_id IN_LIST(:carers) AND p.at >= :start AND p.at < :end",
            carers=list(carers),
            start=start,
            end=end,
        )
        return [self._punch(r) for r in rows]

    def punches_at_clients(
        self,
        clients: Collection[int],
        start: datetime,
        end: datetime,
        *,
        except_carers: Collection[int] = (),
    ) -> list[PunchIn]:
        if not clients:
            return []
        query = _PUNCH + " WHERE p.client_id IN_LIST(:clients) AND p.at >= :start AND p.at < :end"
        params: dict[str, Any] = {"clients": list(clients), "start": start, "end": end}
        if except_carers:
            query += " AND NOT (p.carer_id IN_LIST(:carers))"
            params["carers"] = list(except_carers)
        return [self._punch(r) for r in self.sql.fetch(query, **params)]

    def planned_of_carers(
        self,
        carers: Collection[int],
        start: datetime,
        end: datetime,
        state: dict[int, CoreState] | None = None,
    ) -> list[PlannedIn]:
        if not carers:
            return []
        rows = self.sql.fetch(
            _PLANNED
            + " WHERE i.carer_id IN_LIST(:carers) AND i.planned_start >= :start"
            + " AND i.planned_start < :end",
            carers=list(carers),
            start=start,
            end=end,
        )
        return [self._planned(r, state) for r in rows]

    def planned_at_clients(
        self,
        clients: Collection[int],
        start: datetime,
        end: datetime,
        state: dict[int, CoreState] | None = None,
        *,
        except_carers: Collection[int] = (),
    ) -> list[PlannedIn]:
        if not clients:
            return []
        query = (
            _PLANNED
            + " WHERE i.client_id IN_LIST(:clients) AND i.planned_start >= :start"
            + " AND i.planned_start < :end"
        )
        params: dict[str, Any] = {"clients": list(clients), "start": start, "end": end}
        if except_carers:
            query += " AND NOT (i.carer_id IN_LIST(:carers))"
            params["carers"] = list(except_carers)
        return [self._planned(r, state) for r in self.sql.fetch(query, **params)]

    def punches_by_id(self, ids: Iterable[int]) -> list[PunchIn]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        rows = self.sql.fetch(_PUNCH + " WHERE p.id IN_LIST(:ids)", ids=wanted)
        return [self._punch(r) for r in rows]

    def planned_by_id(
        self, ids: Iterable[int], state: dict[int, CoreState] | None = None
    ) -> list[PlannedIn]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        rows = self.sql.fetch(_PLANNED + " WHERE i.id IN_LIST(:ids)", ids=wanted)
        return [self._planned(r, state) for r in rows]

    def resolutions_about(
        self, punch_ids: Iterable[int], planned_ids: Iterable[int]
    ) -> list[ResolutionIn]:
        """Every resolution (the whole audit trail: the engine keeps the latest per key) about
        these punches, the visits they open, these planned interventions, or linking to them."""
        punches, planned = sorted(set(punch_ids)), sorted(set(planned_ids))
        clauses, params = [], {}
        if punches:
            clauses.append("r.subject_punch_id IN_LIST(:punches)")
            params["punches"] = punches
        if planned:
            clauses.append("r.subject_planned_id IN_LIST(:planned)")
            clauses.append("r.link_planned_id IN_LIST(:planned)")
            params["planned"] = planned
        if not clauses:
            return []
        rows = self.sql.fetch(_RESOLUTION + " WHERE " + " OR ".join(clauses), **params)
        return [res for res in map(self._resolution, rows) if res is not None]

    def resolutions_of_company(self, company_id: int) -> list[ResolutionIn]:
        rows = self.sql.fetch(_RESOLUTION + " WHERE a.company_id = :company", company=company_id)
        return [res for res in map(self._resolution, rows) if res is not None]

    # --- reconciliation.scope.InputSource -------------------------------------------------------

    def punches_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> list[PunchIn]:
        return [
            p for p in self.punches_of_carers([carer_id], start, end) if p.company_id == company_id
        ]

    def punches_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> list[PunchIn]:
        return [
            p
            for p in self.punches_at_clients([client_id], start, end)
            if p.company_id == company_id
        ]

    def planned_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> list[PlannedIn]:
        return [
            p for p in self.planned_of_carers([carer_id], start, end) if p.company_id == company_id
        ]

    def planned_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> list[PlannedIn]:
        return [
            p
            for p in self.planned_at_clients([client_id], start, end)
            if p.company_id == company_id
        ]

    # --- the neighbourhood of many carer-days ----------------------------------------------

    def neighbourhood(
        self,
        company_id: int,
        carers: Collection[int],
        first: date,
        last: date,
        rules_by_company: Mapping[int, CompanyRules],
        *,
        company_resolutions: list[ResolutionIn] | None = None,
    ) -> Snapshot:
        """Everything the carer-days of ``carers`` from ``first`` to ``last`` depend on.

        The union, over those carer-days, of the loading contract of :mod:`reconciliation.scope`,
        read with the widest windows, in two queries (the database follows carers to clients to
        other carers itself): punches and planning of the carers, everything at the clients they
        punched at or are planned at, the punches of the other carers seen there; then the
        resolutions and the far side of links. ``company_resolutions`` (all the company's, for a
        batch) saves the per-run resolution query.
        """
        window = range_window(first, last, rules_by_company[company_id])
        params = {
            "company": company_id,
            "carers": sorted(carers),
            "p_from": window.punches_from,
            "p_to": window.punches_to,
            "o_from": window.other_carers_from,
            "o_to": window.other_carers_to,
            "i_from": window.planned_from,
            "i_to": window.planned_to,
        }
        snap = Snapshot()
        punches_sql, planned_sql = _neighbourhood_sql(self.sql.postgres)
        for row in self.sql.fetch(punches_sql, **params):
            snap.punches[row[0]] = self._punch(row)
        for row in self.sql.fetch(planned_sql, **params):
            snap.planned[row[0]] = self._planned(row, snap.state)
        self._resolutions(snap, rules_by_company, company_resolutions)
        return snap

    def _resolutions(
        self,
        snap: Snapshot,
        rules_by_company: Mapping[int, CompanyRules],
        company_resolutions: list[ResolutionIn] | None,
    ) -> None:
        if company_resolutions is not None:
            found = [r for r in company_resolutions if _about(r, snap.punches, snap.planned)]
        else:
            found = self.resolutions_about(snap.punches, snap.planned)
        snap.resolutions.update((r.seq, r) for r in found)
        if not any(r.link_target is not None for r in found):
            return
        # The far side of each link, exactly as the scope's own loader reads it.
        new_punches, new_planned = link_sides(
            found, snap.punches, snap.planned, rules_by_company, self
        )
        if not new_punches and not new_planned:
            return
        snap.punches.update(new_punches)
        # No core-model state for these: a run writes only the interventions its carer-days
        # own, which the neighbourhood query loaded with their state.
        snap.planned.update(new_planned)
        if company_resolutions is not None:
            more = [r for r in company_resolutions if _about(r, new_punches, new_planned)]
        else:
            more = self.resolutions_about(new_punches, new_planned)
        snap.resolutions.update((r.seq, r) for r in more)


# The contract's points 1 to 4 in one statement each: the carers' own rows, the clients those
# rows name, everything at those clients, and (punches) the other carers met there. On
# PostgreSQL the sets in between become arrays (``= ANY(ARRAY(…))``), which the planner reads
# through the (carer, time) and (client, time) indexes whatever their size.
_OWN_CLIENTS = """
own_clients AS (
    SELECT client_id FROM punches
    WHERE carer_id IN_LIST(:carers) AND at >= :p_from AND at < :p_to AND company_id = :company
      AND client_id IS NOT NULL
    UNION
    SELECT client_id FROM interventions
    WHERE carer_id IN_LIST(:carers) AND planned_start >= :i_from AND planned_start < :i_to
      AND company_id = :company
)"""


@lru_cache(maxsize=2)
def _neighbourhood_sql(postgres: bool) -> tuple[str, str]:
    def among(query: str) -> str:
        return f"= ANY(ARRAY({query}))" if postgres else f"IN ({query})"

    clients = among("SELECT client_id FROM own_clients")
    punches = f"""
WITH {_OWN_CLIENTS},
seen AS (
    SELECT DISTINCT carer_id FROM punches
    WHERE client_id {clients} AND at >= :p_from AND at < :p_to
      AND company_id = :company AND NOT (carer_id IN_LIST(:carers))
)
{_PUNCH} WHERE p.carer_id IN_LIST(:carers) AND p.at >= :p_from AND p.at < :p_to
  AND p.company_id = :company
UNION ALL
{_PUNCH} WHERE p.client_id {clients} AND p.at >= :p_from AND p.at < :p_to
  AND p.company_id = :company AND NOT (p.carer_id IN_LIST(:carers))
UNION ALL
{_PUNCH} WHERE p.carer_id {among("SELECT carer_id FROM seen")}
  AND p.at >= :o_from AND p.at < :o_to AND p.company_id = :company
"""
    planned = f"""
WITH {_OWN_CLIENTS}
{_PLANNED} WHERE i.carer_id IN_LIST(:carers) AND i.planned_start >= :i_from
  AND i.planned_start < :i_to AND i.company_id = :company
UNION ALL
{_PLANNED} WHERE i.client_id {clients} AND i.planned_start >= :i_from
  AND i.planned_start < :i_to AND i.company_id = :company AND NOT (i.carer_id IN_LIST(:carers))
"""
    return punches, planned


def _about(
    resolution: ResolutionIn, punches: Mapping[int, object], planned: Mapping[int, object]
) -> bool:
    subjects = parse_anomaly_key(resolution.anomaly_key)
    if any(p in punches for p in subjects.punch_ids):
        return True
    if subjects.planned_id is not None and subjects.planned_id in planned:
        return True
    return resolution.link_target is not None and resolution.link_target in planned
