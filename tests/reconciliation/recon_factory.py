"""Builders shared by the reconciliation tests: local times in, plain records out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reconciliation.engine import reconcile
from reconciliation.model import (
    AnomalyOut,
    CompanyRules,
    PlannedIn,
    PunchIn,
    ResolutionIn,
    Result,
    parse_anomaly_key,
)

PARIS = ZoneInfo("Europe/Paris")
RULES: dict[int, CompanyRules] = {1: CompanyRules()}


def at(local: str, tz: ZoneInfo = PARIS) -> datetime:
    """'2026-05-04 09:00' in the company's zone, as an aware UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=tz).astimezone(UTC)


def punch(
    pid: int,
    carer: int,
    client: int | None,
    kind: str,
    local: str,
    *,
    company: int = 1,
    tz: ZoneInfo = PARIS,
    **extra: object,
) -> PunchIn:
    return PunchIn(pid, company, carer, client, kind, at(local, tz), **extra)  # type: ignore[arg-type]


def plan(
    pid: int,
    carer: int,
    client: int,
    start: str,
    end: str,
    *,
    company: int = 1,
    tz: ZoneInfo = PARIS,
    service: str = "aide",
    financer: str = "APA",
) -> PlannedIn:
    return PlannedIn(pid, company, client, carer, at(start, tz), at(end, tz), service, financer)


def run(
    punches: Iterable[PunchIn] = (),
    planned: Iterable[PlannedIn] = (),
    resolutions: Iterable[ResolutionIn] = (),
    *,
    now: str = "2026-12-31 00:00",
    rules: Mapping[int, CompanyRules] = RULES,
) -> Result:
    return reconcile(rules, list(punches), list(planned), list(resolutions), at(now))


def keys(result: Result) -> set[str]:
    return {a.key for a in result.anomalies}


def anomaly(result: Result, key: str) -> AnomalyOut:
    found = [a for a in result.anomalies if a.key == key]
    assert found, f"{key} not raised; raised: {sorted(keys(result))}"
    return found[0]


class MemoryStore:
    """An in-memory :class:`reconciliation.scope.InputSource`, playing the database layer."""

    def __init__(
        self,
        punches: Iterable[PunchIn] = (),
        planned: Iterable[PlannedIn] = (),
        resolutions: Iterable[ResolutionIn] = (),
    ) -> None:
        self.punches = {p.id: p for p in punches}
        self.planned = {p.id: p for p in planned}
        self.resolutions = list(resolutions)

    def punches_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> list[PunchIn]:
        return [
            p
            for p in self.punches.values()
            if p.company_id == company_id and p.carer_id == carer_id and start <= p.at < end
        ]

    def punches_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> list[PunchIn]:
        return [
            p
            for p in self.punches.values()
            if p.company_id == company_id and p.client_id == client_id and start <= p.at < end
        ]

    def planned_of_carer(
        self, company_id: int, carer_id: int, start: datetime, end: datetime
    ) -> list[PlannedIn]:
        return [
            p
            for p in self.planned.values()
            if p.company_id == company_id and p.carer_id == carer_id and start <= p.start < end
        ]

    def planned_at_client(
        self, company_id: int, client_id: int, start: datetime, end: datetime
    ) -> list[PlannedIn]:
        return [
            p
            for p in self.planned.values()
            if p.company_id == company_id and p.client_id == client_id and start <= p.start < end
        ]

    def punches_by_id(self, ids: Iterable[int]) -> list[PunchIn]:
        return [self.punches[i] for i in ids if i in self.punches]

    def planned_by_id(self, ids: Iterable[int]) -> list[PlannedIn]:
        return [self.planned[i] for i in ids if i in self.planned]

    def resolutions_about(
        self, punch_ids: Iterable[int], planned_ids: Iterable[int]
    ) -> list[ResolutionIn]:
        punch_set, planned_set = set(punch_ids), set(planned_ids)
        found: list[ResolutionIn] = []
        for res in self.resolutions:
            subjects = parse_anomaly_key(res.anomaly_key)
            if (
                set(subjects.punch_ids) & punch_set
                or subjects.planned_id in planned_set
                or res.link_target in planned_set
            ):
                found.append(res)
        return found
