"""A synthetic month of a home-care network, written to PostgreSQL with COPY.

October 2026 (31 days; Paris falls back on the 25th) for ``carers`` carers in companies of 500
(one company in La Réunion's time zone), in teams of 10 sharing 40 clients. Every carer has 8
planned interventions a day (some back-to-back at one client), except 2 % who work one night a
day (21:00 to 07:00): about 1.2 million interventions for 5,000 carers. The punches follow the
plan with the noise of real life, about 2.4 million:

- on time within 6 min (most), late by 16 to 45 min (4 %);
- no arrival (2 %), no departure (2 %), no visit at all (2 %);
- the same punch twice within 10 min (1 %);
- done by another carer of the team (2 %);
- from an unknown number (1 %) or a withheld one (0.5 %); call-back punches (3 %, and every
  punch at the 20 % of clients without a landline);
- a stray visit at a team client outside any plan (0.5 % of carer-days).

Rows get their ids here (the sequences are moved past them after), so the generator needs no
round trip per row. The same seed gives the same month.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

FIRST = date(2026, 10, 1)
DAYS = 31
SLOTS = [(7, 30), (8, 45), (10, 0), (11, 15), (13, 30), (14, 45), (16, 0), (17, 15)]
TEAM = 10
CLIENTS_PER_TEAM = 40
CARERS_PER_COMPANY = 500
CREATED = datetime(2026, 9, 30, tzinfo=UTC)
SERVICES = [
    ("aide au lever", "APA"),
    ("aide à la toilette", "APA"),
    ("courses", "CESU"),
    ("préparation des repas", "PCH"),
    ("aide au ménage", "privé"),
]
COMPANY_COLUMNS = (
    "id, code, name, timezone, region, language, task_codes_enabled, arrival_tolerance_min,"
    " departure_tolerance_min, match_window_min, max_visit_hours, min_visit_min,"
    " late_alert_min, rounding_rule, rounding_step_min, rounding_direction, created_at,"
    " updated_at"
)
PUNCH_COLUMNS = (
    "id, origin, call_key, company_id, carer_id, client_id, kind, at, source, status,"
    " location_verified, caller_raw, caller_e164, caller_withheld, created_at, updated_at"
)
PLANNED_COLUMNS = (
    "id, company_id, intervention_ref, client_id, carer_id, planned_start, planned_end,"
    " service, financer, status, created_at, updated_at"
)


@dataclass
class Month:
    """What was generated, for the benchmark's incremental phase."""

    planned: int
    punches: int
    #: (company, carer, client, caller number, planned start) of interventions of the last day
    #: nobody punched: the incremental phase punches them, as carers calling late would.
    missing: list[tuple[int, int, int, str, datetime]]


def _cell(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Copier:
    """Rows buffered as COPY text and sent every ``batch`` rows."""

    def __init__(self, cursor: Any, table: str, columns: str, batch: int = 200_000) -> None:
        self.cursor = cursor
        self.statement = f"COPY {table} ({columns}) FROM STDIN"
        self.batch = batch
        self.buffer = io.StringIO()
        self.pending = 0
        self.count = 0

    def add(self, *values: Any) -> None:
        self.buffer.write("\t".join([_cell(v) for v in values]))
        self.buffer.write("\n")
        self.pending += 1
        if self.pending >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.buffer.seek(0)
            self.cursor.copy_expert(self.statement, self.buffer)
            self.count += self.pending
            self.buffer = io.StringIO()
            self.pending = 0


@dataclass
class Directory:
    zones: dict[int, str]
    company_of_carer: dict[int, int]
    team_clients: dict[int, list[int]]
    landline: dict[int, str | None]


def _directory(cursor: Any, rnd: random.Random, carers: int) -> Directory:
    companies = max(1, (carers + CARERS_PER_COMPANY - 1) // CARERS_PER_COMPANY)
    zones = {
        cid: "Indian/Reunion" if cid == companies and cid > 1 else "Europe/Paris"
        for cid in range(1, companies + 1)
    }
    rows = Copier(cursor, "companies", COMPANY_COLUMNS)
    for cid, zone in zones.items():
        step = 15 if cid % 3 == 0 else 0  # some companies round to the quarter hour
        direction = "company" if step else "nearest"
        rows.add(
            *(cid, f"{200 + cid}", f"Réseau {cid}", zone, "FR", "fr", False),
            *(15, 15, 120, 12, 3, 15, "keep_planned_within_tolerance", step, direction),
            *(CREATED, CREATED),
        )
    rows.flush()
    clients = Copier(cursor, "clients", "id, company_id, client_ref, name, created_at, updated_at")
    lines = Copier(cursor, "client_landlines", "id, company_id, client_id, number_e164, number_raw")
    carer_rows = Copier(
        cursor,
        "carers",
        "id, company_id, carer_ref, carer_code, name, mobile_e164, mobile_raw, active,"
        " created_at, updated_at",
    )
    directory = Directory(zones, {}, {}, {})
    client_id = line_id = 0
    for carer in range(1, carers + 1):
        company = (carer - 1) // CARERS_PER_COMPANY + 1
        directory.company_of_carer[carer] = company
        team = (carer - 1) // TEAM
        if team not in directory.team_clients:
            directory.team_clients[team] = []
            for _ in range(CLIENTS_PER_TEAM):
                client_id += 1
                name = f"Client {client_id}"
                clients.add(client_id, company, f"C{client_id:06d}", name, CREATED, CREATED)
                number = None
                if rnd.random() < 0.8:
                    line_id += 1
                    number = f"+3314{client_id:07d}"
                    lines.add(line_id, company, client_id, number, number)
                directory.landline[client_id] = number
                directory.team_clients[team].append(client_id)
        mobile = f"+336{carer:08d}"
        code = f"{10000 + carer % 90000:05d}"
        carer_rows.add(
            carer, company, f"I{carer:05d}", code, f"Carer {carer}", mobile, mobile, True,
            CREATED, CREATED,
        )  # fmt: skip
    for copier in (clients, lines, carer_rows):
        copier.flush()
    return directory


def _slots(
    rnd: random.Random, day: date, tz: ZoneInfo, own: list[int], pool: list[int], nights: bool
) -> list[tuple[datetime, datetime, int]]:
    """One carer's planned (start, end, client) of one day, local times."""
    if nights:  # 21:00 to 07:00 at one client: over midnight, and over the DST night
        after = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, 21, 0, tzinfo=tz)
        return [(start, datetime(after.year, after.month, after.day, 7, 0, tzinfo=tz), own[0])]
    slots: list[tuple[datetime, datetime, int]] = []
    for k, (hour, minute) in enumerate(SLOTS):
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        length = rnd.choice((45, 60, 60))  # 15 min or more to get to the next client
        client = rnd.choice(own) if rnd.random() < 0.9 else rnd.choice(pool)
        if slots and k in (1, 5) and rnd.random() < 0.1:
            # back-to-back at the same client: the previous slot runs up to this one
            previous_start, _, previous_client = slots[-1]
            slots[-1] = (previous_start, start, previous_client)
            client = previous_client
        slots.append((start, start + timedelta(minutes=length), client))
    return slots


def generate(raw_connection: Any, carers: int = 5000, seed: int = 2026) -> Month:
    """Write the month into the (migrated, empty) schema of ``raw_connection`` and commit."""
    rnd = random.Random(seed)
    cursor = raw_connection.cursor()
    directory = _directory(cursor, rnd, carers)
    planned = Copier(cursor, "interventions", PLANNED_COLUMNS)
    punches = Copier(cursor, "punches", PUNCH_COLUMNS)
    counter = {"planned": 0, "punch": 0}
    missing: list[tuple[int, int, int, str, datetime]] = []
    last_day = FIRST + timedelta(days=DAYS - 1)

    def punch(
        company: int,
        carer: int,
        client: int | None,
        kind: str,
        at: datetime,
        source: str,
        caller: str | None,
        withheld: bool,
    ) -> None:
        counter["punch"] += 1
        n = counter["punch"]
        punches.add(
            n, "bench", f"b{n}", company, carer, client, kind, at, source, "recorded",
            source != "callback", caller, caller, withheld, at, at,
        )  # fmt: skip

    for carer in range(1, carers + 1):
        company = directory.company_of_carer[carer]
        tz = ZoneInfo(directory.zones[company])
        team = (carer - 1) // TEAM
        pool = directory.team_clients[team]
        index = (carer - 1) % TEAM
        own = [pool[(4 * index + k) % len(pool)] for k in range(4)]
        mates = [c for c in range(team * TEAM + 1, min(carers, (team + 1) * TEAM) + 1)]
        mates = [c for c in mates if c != carer]
        nights = rnd.random() < 0.02
        for n in range(DAYS):
            day = FIRST + timedelta(days=n)
            for start, end, client in _slots(rnd, day, tz, own, pool, nights):
                start, end = start.astimezone(UTC), end.astimezone(UTC)
                counter["planned"] += 1
                pid = counter["planned"]
                service, financer = SERVICES[pid % len(SERVICES)]
                planned.add(
                    pid, company, f"R{pid:08d}", client, carer, start, end, service, financer,
                    "planned", CREATED, CREATED,
                )  # fmt: skip
                roll = rnd.random()
                if roll < 0.02:  # nobody came
                    if day == last_day:
                        number = directory.landline[client] or ""
                        missing.append((company, carer, client, number, start))
                    continue
                who = rnd.choice(mates) if roll < 0.04 and mates else carer
                source, caller = "landline", directory.landline[client]
                withheld, punched_client = False, client
                noise = rnd.random()
                if caller is None or noise < 0.03:
                    # no landline there (the call-back is the way), or the carer used it anyway
                    source, caller = "callback", f"+336{who:08d}"
                elif noise < 0.04:
                    punched_client, caller = None, f"+339{rnd.randrange(10**8):08d}"
                elif noise < 0.045:
                    punched_client, caller, withheld = None, None, True
                shift = rnd.randint(16, 45) if rnd.random() < 0.04 else rnd.randint(-6, 5)
                arrival = start + timedelta(minutes=shift, seconds=rnd.randint(0, 59))
                leave = end + timedelta(minutes=rnd.randint(-6, 5), seconds=rnd.randint(0, 59))
                who_where = (company, who, punched_client)
                gap = rnd.random()
                if gap >= 0.02:
                    punch(*who_where, "arrival", arrival, source, caller, withheld)
                    if rnd.random() < 0.01:
                        again = arrival + timedelta(minutes=rnd.randint(1, 9))
                        punch(*who_where, "arrival", again, source, caller, withheld)
                if gap < 0.02 or gap >= 0.04:
                    punch(*who_where, "departure", leave, source, caller, withheld)
            if rnd.random() < 0.005:  # a visit nobody planned
                client = rnd.choice(pool)
                number = directory.landline[client]
                source = "landline" if number else "callback"
                at = datetime(day.year, day.month, day.day, 19, 30, tzinfo=tz).astimezone(UTC)
                punch(company, carer, client, "arrival", at, source, number, False)
                later = at + timedelta(minutes=40)
                punch(company, carer, client, "departure", later, source, number, False)
    planned.flush()
    punches.flush()
    for table in ("companies", "clients", "client_landlines", "carers", "interventions"):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('punches', 'id'),"
        " (SELECT COALESCE(MAX(id), 1) FROM punches))"
    )
    raw_connection.commit()
    cursor.execute("ANALYZE")
    raw_connection.commit()
    cursor.close()
    return Month(planned.count, punches.count, missing)
