"""Incremental equals batch on the database (hypothesis): rows arriving one at a time, each
reconciled at once through the same functions the IVR and the import use, leave the same visits,
matches, anomalies and realised interventions as one ``reconcile`` over the range.

The generated days straddle the Paris daylight-saving Sundays of 2026 or an ordinary day, and
hold night interventions over midnight, back-to-back chains, late and missing punches,
duplicates, substitutes, withheld and unknown callers, absence reports, and a second company in
another time zone whose carer is the same person as one of the first company's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recon_db_world import World, forget_results, state
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.store import reconcile_after_planned, reconcile_after_punches, reconcile_range
from telegestion.model import Base

ANCHORS = [date(2026, 3, 28), date(2026, 10, 24), date(2026, 5, 4)]
ZONES = {"042": "Europe/Paris", "117": "America/Cayenne"}
NOW = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PlanEvent:
    company: str
    ref: str
    client: int
    carer: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class PunchEvent:
    company: str
    carer: int
    client: int | None
    kind: str
    at: datetime
    withheld: bool
    source: str
    absent: bool


@st.composite
def days(draw: st.DrawFn) -> tuple[date, list[PlanEvent | PunchEvent]]:
    anchor = draw(st.sampled_from(ANCHORS))
    events: list[PlanEvent | PunchEvent] = []
    crowded = draw(st.booleans())
    for n in range(draw(st.integers(1, 5))):
        company = draw(st.sampled_from(["042", "042", "117"]))
        carer = draw(st.integers(0, 2 if company == "042" else 1))
        client = 0 if crowded else draw(st.integers(0, 2 if company == "042" else 1))
        start = datetime.combine(anchor, datetime.min.time()).replace(tzinfo=UTC) + timedelta(
            minutes=15 * draw(st.integers(0, 2 * 96))
        )
        for link in range(draw(st.sampled_from([1, 1, 2, 3]))):
            end = start + timedelta(minutes=draw(st.sampled_from([30, 60, 120, 480, 600])))
            item = PlanEvent(company, f"P{n}-{link}", client, carer, start, end)
            events.append(item)
            start = end
    for item in [e for e in events if isinstance(e, PlanEvent)]:
        if not draw(st.integers(0, 3)):
            continue
        carer = item.carer if draw(st.integers(0, 4)) else draw(st.integers(0, 1))
        client = item.client if draw(st.integers(0, 5)) else None
        withheld = client is None and draw(st.booleans())
        source = draw(st.sampled_from(["landline", "landline", "callback"]))
        for kind, at in (("arrival", item.start), ("departure", item.end)):
            if draw(st.integers(0, 7)):
                shifted = at + timedelta(minutes=draw(st.integers(-40, 40)))
                absent = kind == "arrival" and not draw(st.integers(0, 12))
                repeats = draw(st.sampled_from([1, 1, 1, 2]))
                for k in range(repeats):
                    events.append(
                        PunchEvent(
                            item.company,
                            carer,
                            client,
                            kind,
                            shifted + timedelta(minutes=4 * k),
                            withheld,
                            source,
                            absent,
                        )
                    )
    for _ in range(draw(st.integers(0, 3))):
        company = draw(st.sampled_from(["042", "117"]))
        events.append(
            PunchEvent(
                company,
                draw(st.integers(0, 1)),
                draw(st.sampled_from([0, 1, None])),
                draw(st.sampled_from(["arrival", "departure"])),
                datetime.combine(anchor, datetime.min.time()).replace(tzinfo=UTC)
                + timedelta(minutes=draw(st.integers(0, 3 * 1440))),
                False,
                "landline",
                False,
            )
        )
    order = draw(st.permutations(list(range(len(events)))))
    return anchor, [events[i] for i in order]


def wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(delete(table))


class Agency:
    """Two companies; carer 0 of company 117 is the same person as carer 0 of company 042."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.world = World(sessions)
        self.companies = {code: self.world.company(code, tz) for code, tz in ZONES.items()}
        self.clients: dict[tuple[str, int], int] = {}
        self.carers: dict[tuple[str, int], int] = {}
        for code, company in self.companies.items():
            for n in range(3):
                landline = f"+33100000{company}{n}" if n != 2 else None
                self.clients[(code, n)] = self.world.client(company, f"C{n}", landline)
                self.carers[(code, n)] = self.world.carer(company, f"I{n}")

    def add(self, event: PlanEvent | PunchEvent) -> tuple[str, int]:
        company = self.companies[event.company]
        tz = ZONES[event.company]
        if isinstance(event, PlanEvent):
            return "planned", self.world.plan(
                company,
                event.ref,
                self.clients[(event.company, event.client)],
                self.carers[(event.company, event.carer)],
                _local(event.start, tz),
                _local(event.end, tz),
            )
        return "punch", self.world.punch(
            company,
            self.carers[(event.company, event.carer)],
            None if event.client is None else self.clients[(event.company, event.client)],
            event.kind,
            _local(event.at, tz),
            source=event.source,
            withheld=event.withheld,
            caller=None if event.withheld or event.client is not None else "+33199999999",
            status="client_absent" if event.absent else "recorded",
        )


def _local(at: datetime, timezone: str) -> str:
    """The wall-clock text World.local turns back into ``at`` (offset kept: no DST guessing)."""
    return at.isoformat()


def current(sessions: sessionmaker[Session]) -> dict[str, list[tuple[object, ...]]]:
    """The state without closed anomalies: history the incremental path leaves behind."""
    found = state(sessions)
    found["anomalies"] = [a for a in found["anomalies"] if a[3] != "closed"]
    return found


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=days())
def test_incremental_equals_batch(
    engine: Engine,
    sessions: sessionmaker[Session],
    case: tuple[date, list[PlanEvent | PunchEvent]],
) -> None:
    """Each row reconciled as it arrives, in any order, ends where a batch over the range
    starts from nothing: same visits, matches, open anomalies and realised interventions."""
    anchor, events = case
    wipe(engine)
    agency = Agency(sessions)
    for event in events:
        kind, row_id = agency.add(event)
        if kind == "punch":
            reconcile_after_punches(engine, [row_id], now=NOW)
        else:
            reconcile_after_planned(engine, [row_id], now=NOW)
    incremental = current(sessions)
    forget_results(sessions)
    reconcile_range(engine, anchor - timedelta(days=6), anchor + timedelta(days=7), now=NOW)
    assert current(sessions) == incremental
