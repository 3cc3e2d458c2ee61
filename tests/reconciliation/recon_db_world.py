"""A small agency built row by row through the ORM, and the database state read back by reference.

The state is read through the ORM (not through reconciliation's own SQL), so that the tests check
the rows as every other part of the product sees them.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import (
    Anomaly,
    AnomalyResolution,
    Carer,
    Client,
    ClientLandline,
    Company,
    PlannedIntervention,
    Punch,
    Visit,
    VisitMatch,
)


def local(text: str, timezone: str = "Europe/Paris") -> datetime:
    """'2026-05-04 09:00' on the wall clock of ``timezone`` (unless the text has an offset),
    as an aware UTC instant."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.astimezone(UTC)


class World:
    """Companies, clients, carers, planning and punches, each added in its own transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.timezones: dict[int, str] = {}
        #: Ids a test wants to name later ("arrival", "company", ...).
        self.ids: dict[str, int] = {}
        self._calls = itertools.count(1)
        self._codes = itertools.count(10001)

    def _add(self, row: Any) -> int:
        with self.sessions() as session, session.begin():
            session.add(row)
            session.flush()
            return int(row.id)

    def company(self, code: str = "042", timezone: str = "Europe/Paris", **settings: Any) -> int:
        cid = self._add(Company(code=code, name=f"Company {code}", timezone=timezone, **settings))
        self.timezones[cid] = timezone
        return cid

    def client(self, company: int, ref: str, landline: str | None = None) -> int:
        client = Client(company_id=company, client_ref=ref, name=f"Client {ref}")
        if landline:
            client.landlines = [
                ClientLandline(company_id=company, number_e164=landline, number_raw=landline)
            ]
        return self._add(client)

    def carer(self, company: int, ref: str) -> int:
        code = str(next(self._codes))
        return self._add(Carer(company_id=company, carer_ref=ref, carer_code=code, name=ref))

    def plan(
        self,
        company: int,
        ref: str,
        client: int,
        carer: int,
        start: str,
        end: str,
        *,
        service: str = "aide",
        financer: str = "APA",
    ) -> int:
        tz = self.timezones[company]
        return self._add(
            PlannedIntervention(
                company_id=company,
                intervention_ref=ref,
                client_id=client,
                carer_id=carer,
                planned_start=local(start, tz),
                planned_end=local(end, tz),
                service=service,
                financer=financer,
            )
        )

    def punch(
        self,
        company: int,
        carer: int,
        client: int | None,
        kind: str,
        at: str,
        *,
        source: str = "landline",
        withheld: bool = False,
        caller: str | None = None,
        status: str = "recorded",
    ) -> int:
        tz = self.timezones[company]
        return self._add(
            Punch(
                origin="test",
                call_key=f"call-{next(self._calls)}",
                company_id=company,
                carer_id=carer,
                client_id=client,
                kind=kind,
                at=local(at, tz),
                source=source,
                status=status,
                location_verified=source != "callback",
                caller_raw=caller,
                caller_e164=caller,
                caller_withheld=withheld,
            )
        )


def state(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every reconciliation output, by natural key and reference, sorted: comparable across runs
    and databases (ids of visits and anomalies are left out, they depend on write order)."""
    with sessions() as s:
        refs = {
            pid: ref
            for pid, ref in s.execute(
                select(PlannedIntervention.id, PlannedIntervention.intervention_ref)
            )
        }
        visits = sorted(
            (v.company_id, v.key, v.carer_id, v.client_id, v.arrival_punch_id,
             v.departure_punch_id, v.start_at, v.end_at, v.day)
            for v in s.scalars(select(Visit))
        )  # fmt: skip
        matches = sorted(
            (refs[m.intervention_id], key, m.start_at, m.end_at, m.how)
            for m, key in s.execute(select(VisitMatch, Visit.key).join(Visit))
        )
        anomalies = sorted(
            (a.key, a.code, a.severity, a.status, a.carer_id, a.client_id,
             refs.get(a.intervention_id), a.punch_id, a.at, sorted(a.detail.items()),
             a.owner_carer_id, a.owner_day)
            for a in s.scalars(select(Anomaly))
        )  # fmt: skip
        realised = sorted(
            (i.intervention_ref, i.status, i.realised_start, i.realised_end, i.realised_minutes,
             i.realised_carer_id)
            for i in s.scalars(select(PlannedIntervention))
        )  # fmt: skip
    return {"visits": visits, "matches": matches, "anomalies": anomalies, "realised": realised}


def open_codes(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Anomaly key -> status, for the anomalies that are not closed."""
    with sessions() as s:
        return {
            key: status
            for key, status in s.execute(select(Anomaly.key, Anomaly.status))
            if status != "closed"
        }


def intervention(sessions: sessionmaker[Session], ref: str) -> PlannedIntervention:
    with sessions() as s:
        found = s.scalars(
            select(PlannedIntervention).where(PlannedIntervention.intervention_ref == ref)
        ).one()
        s.expunge(found)
        return found


def forget_results(sessions: sessionmaker[Session]) -> None:
    """Erase what reconciliation wrote (keeping the coordinators' resolutions' anomalies)."""
    with sessions() as s, s.begin():
        s.execute(delete(VisitMatch))
        s.execute(delete(Visit))
        resolved = select(AnomalyResolution.anomaly_id)
        s.execute(delete(Anomaly).where(Anomaly.id.not_in(resolved)))
        s.execute(
            update(PlannedIntervention).values(
                status="planned",
                realised_start=None,
                realised_end=None,
                realised_minutes=None,
                realised_carer_id=None,
            )
        )
