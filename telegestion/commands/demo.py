"""``telegestion demo``: a database with a demo morning, to see the product work in a minute.

It builds, on an empty database: two demo companies (042 on the shared toll-free number, 117 on
its own dedicated number) with clients, carers and a morning of planned interventions; then a
morning of calls placed through the real call program (the FastAGI worker, driven by the
simulated Asterisk in virtual time, see ``telegestion.support.simulated_phone``), with the
mistakes support and coordinators meet every day: a wrong company code, a wrong carer code, a
withheld number, a carer calling from her mobile, a late arrival, a departure forgotten the
evening before, a client absent, a hang-up, a missed visit; then reconciliation, a demo login
for the pages, and where to look next.

It never writes into a database that holds anything but the demo: a database with other data
is refused. Run again on the demo database, it changes nothing but the demo login's password
(printed again); ``--fresh`` rebuilds a demo SQLite file from scratch for today.

The morning is today's once it is over (from 12:30, Paris time); before that, yesterday's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import secrets
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .context import UsageError

TIMEZONE = "Europe/Paris"
DEMO_SUFFIX = " (démo)"
DEMO_LOGIN = "demo"
MORNING_OVER = dt.time(12, 30)
SHARED = "0800 123 456"
DEDICATED_117 = "0800 117 117"

COMPANIES_CSV = f"""code,name,timezone,region,language
042,Aide à Domicile du Val de Marne{DEMO_SUFFIX},Europe/Paris,FR,fr
117,Les Jardins de l'Âge{DEMO_SUFFIX},Europe/Paris,FR,fr
"""
NUMBERS_CSV = """number,kind,company_code
0800 123 456,shared,
0800 117 117,dedicated,117
09 70 80 90 00,callback,
"""
CLIENTS_CSV = """company_code,client_ref,name,landlines
042,C-0001,Mme Jeanne Dubois,01 45 67 89 12
042,C-0002,M. René Martin,01.43.21.65.87
042,C-0003,Mme Simone Lefèvre,+33 1 48 75 12 34
042,C-0004,M. et Mme Bernard,01 46 58 23 71;01 46 58 23 72
042,C-0005,Mme Odette Moreau,
117,J-101,Mme Lucienne Petit,0033 1 39 50 12 34
117,J-102,M. Marcel Roux,01 39 51 66 78
117,J-103,Mme Huguette Fournier,01 39 52 44 10
117,J-104,M. André Girard,01 39 53 20 01
117,J-105,Léo Garnier (garde d'enfant),
"""
CARERS_CSV = """company_code,carer_ref,carer_code,name,mobile,active
042,I-01,12345,Fatou Diallo,06 12 34 56 78,true
042,I-02,23456,Marie Lambert,06 23 45 67 89,true
042,I-03,34567,Nadia Benali,07 34 56 78 90,true
042,I-04,45678,Sophie Caron,06 45 67 89 01,false
117,J-A,54321,Aminata Traoré,06 54 32 10 98,true
117,J-B,65432,Isabelle Robert,07 65 43 21 09,true
117,J-C,76543,Chantal Mercier,06 76 54 32 10,true
"""
#: (company, ref, client, carer, day offset, start, end, service, financer)
PLANNING = (
    ("042", "P-0999", "C-0004", "I-03", -1, "17:00", "18:00", "aide au ménage", "privé"),
    ("042", "P-1001", "C-0001", "I-01", 0, "08:00", "09:00", "aide au lever", "APA"),
    ("042", "P-1002", "C-0002", "I-01", 0, "09:30", "10:30", "aide à la toilette", "APA"),
    ("042", "P-1003", "C-0003", "I-01", 0, "11:00", "12:00", "préparation des repas", "PCH"),
    ("042", "P-1004", "C-0004", "I-02", 0, "08:30", "10:00", "aide au ménage", "privé"),
    ("042", "P-1005", "C-0001", "I-02", 0, "10:30", "11:30", "aide au repas", "APA"),
    ("042", "P-1006", "C-0005", "I-03", 0, "09:00", "11:00", "courses", "CESU"),
    ("117", "J-5001", "J-101", "J-A", 0, "07:30", "08:30", "aide au lever", "APA"),
    ("117", "J-5002", "J-102", "J-A", 0, "09:00", "10:00", "aide à la toilette", "PCH"),
    ("117", "J-5003", "J-103", "J-B", 0, "08:00", "09:30", "aide au ménage", "APA"),
    ("117", "J-5004", "J-104", "J-B", 0, "10:00", "11:00", "aide au repas", "APA"),
)


@dataclass(frozen=True)
class DemoCall:
    """One call of the demo morning: when (day offset, local time), from, to, what is keyed."""

    day: int
    time: str
    caller: str | None
    called: str
    keys: str
    story: str
    hang_up_after: float | None = None


MORNING = (
    DemoCall(-1, "17:02", "01 46 58 23 71", SHARED, "042 34567",
             "Nadia arrives at the Bernards' (yesterday) and forgets the departure"),
    DemoCall(0, "07:28", "0033 1 39 50 12 34", DEDICATED_117, "54321",
             "Aminata arrives at Mme Petit's (company 117, dedicated number)"),
    DemoCall(0, "07:58", "01 45 67 89 12", SHARED, "024 042 12345",
             "Fatou keys company 024 by mistake, then 042: arrival at Mme Dubois'"),
    DemoCall(0, "08:26", "01 46 58 23 72", SHARED, "042 23465 23465 23465",
             "Marie keys her carer code wrongly three times"),
    DemoCall(0, "08:28", "01 46 58 23 72", SHARED, "042 23456",
             "Marie calls again: arrival at the Bernards'"),
    DemoCall(0, "08:31", "0033 1 39 50 12 34", DEDICATED_117, "54321",
             "Aminata leaves Mme Petit's"),
    DemoCall(0, "09:02", "01 39 51 66 78", DEDICATED_117, "54321",
             "Aminata arrives at M. Roux's"),
    DemoCall(0, "09:03", "01 45 67 89 12", SHARED, "042 12345", "Fatou leaves Mme Dubois'"),
    DemoCall(0, "09:04", "07 34 56 78 90", SHARED, "042 34567",
             "Nadia calls from her own mobile at Mme Moreau's (no landline)"),
    DemoCall(0, "09:51", "01.43.21.65.87", SHARED, "042 12345",
             "Fatou arrives late at M. Martin's (planned 09:30)"),
    DemoCall(0, "09:58", "01 46 58 23 71", SHARED, "042 23456", "Marie leaves the Bernards'"),
    DemoCall(0, "10:01", "01 39 51 66 78", DEDICATED_117, "54321", "Aminata leaves M. Roux's"),
    DemoCall(0, "10:04", "01 39 53 20 01", DEDICATED_117, "65432",
             "Isabelle arrives at M. Girard's (she missed Mme Fournier at 08:00)"),
    DemoCall(0, "10:31", "01.43.21.65.87", SHARED, "042 12345", "Fatou leaves M. Martin's"),
    DemoCall(0, "10:33", "01 45 67 89 12", SHARED, "042 23456 9",
             "Marie finds nobody at Mme Dubois' and presses 9 (client absent)"),
    DemoCall(0, "10:58", "07 34 56 78 90", SHARED, "042 34567",
             "Nadia leaves Mme Moreau's, from her mobile again"),
    DemoCall(0, "11:01", "01 39 53 20 01", DEDICATED_117, "", "Isabelle hangs up at once",
             hang_up_after=2.0),
    DemoCall(0, "11:02", "01 39 53 20 01", DEDICATED_117, "65432", "Isabelle leaves M. Girard's"),
    DemoCall(0, "11:04", None, SHARED, "042 12345",
             "Fatou arrives at Mme Lefèvre's, whose line withholds its number"),
    DemoCall(0, "11:58", None, SHARED, "042 12345", "Fatou leaves Mme Lefèvre's (withheld)"),
)  # fmt: skip


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="a demo database: demo companies, a simulated morning of calls, reconciliation",
        description="Fill an empty database with two demo companies, a morning of calls placed "
        "through the real call program (with the usual mistakes), reconciliation and a demo "
        "login for the pages, then say where to look. The database is --database (a file "
        "path or a URL), else TELEGESTION_DATABASE_URL (default ./telegestion.db). A database "
        "holding anything but the demo is refused; on the demo database the command only "
        "prints a new demo password.",
    )
    parser.add_argument(
        "--database", metavar="PATH_OR_URL", help="SQLite file or database URL to fill"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="rebuild an existing demo SQLite file from scratch (only a demo database)",
    )
    parser.set_defaults(func=run)


def database_url(option: str | None, configured: str) -> str:
    if not option:
        return configured
    if "://" in option:
        return option
    return f"sqlite:///{Path(option).expanduser().resolve()}"


def demo_day(now: dt.datetime) -> dt.date:
    """Today once the morning is over in Paris, else yesterday."""
    local = now.astimezone(ZoneInfo(TIMEZONE))
    return local.date() if local.time() >= MORNING_OVER else local.date() - dt.timedelta(days=1)


# --- what is in the database --------------------------------------------------------------------


@dataclass(frozen=True)
class Contents:
    schema: bool
    companies: tuple[tuple[str, str], ...]
    rows: int
    """Companies, calls, punches, planned interventions and users together."""

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def is_demo(self) -> bool:
        return bool(self.companies) and all(
            name.endswith(DEMO_SUFFIX) for _code, name in self.companies
        )


def contents(engine: Any) -> Contents:
    from sqlalchemy import func, inspect, select

    from ..model import Call, Company, PlannedIntervention, Punch, User

    tables = set(inspect(engine).get_table_names())
    if "companies" not in tables:
        return Contents(bool(tables), (), 1 if tables - {"alembic_version"} else 0)
    with engine.connect() as conn:
        companies = tuple(
            (code, name) for code, name in conn.execute(select(Company.code, Company.name))
        )
        rows = sum(
            conn.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Company, Call, Punch, PlannedIntervention, User)
            if model.__tablename__ in tables
        )
    return Contents(True, companies, rows)


def _sqlite_file(engine: Any) -> Path | None:
    if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(engine.url.database)


# --- building the demo -----------------------------------------------------------------------


def _write_files(folder: Path, day: dt.date) -> dict[str, Path]:
    planning = ["company_code,intervention_ref,client_ref,carer_ref,start,end,service,financer"]
    for company, ref, client, carer, offset, start, end, service, financer in PLANNING:
        date = (day + dt.timedelta(days=offset)).isoformat()
        planning.append(
            f"{company},{ref},{client},{carer},{date}T{start},{date}T{end},{service},{financer}"
        )
    texts = {
        "companies": COMPANIES_CSV,
        "numbers": NUMBERS_CSV,
        "clients": CLIENTS_CSV,
        "carers": CARERS_CSV,
        "planning": "\n".join(planning) + "\n",
    }
    paths = {}
    for kind, text in texts.items():
        path = folder / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        paths[kind] = path
    return paths


def _at(day: dt.date, call: DemoCall) -> dt.datetime:
    hour, minute = (int(part) for part in call.time.split(":"))
    date = day + dt.timedelta(days=call.day)
    return dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=ZoneInfo(TIMEZONE))


def place_morning(sessions: Any, day: dt.date, region: str) -> list[tuple[DemoCall, str]]:
    """Every call of :data:`MORNING` through the real call program; their outcomes."""
    from ..support.simulated_phone import SimulatedPhone

    start = _at(day, MORNING[0]) - dt.timedelta(minutes=5)
    phone = SimulatedPhone(sessions, start=start, node="demo", region=region)
    done = []
    quiet = logging.getLogger("ivr")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the demo's lock-outs and absences are not news
    try:
        for call in MORNING:
            record = phone.call(
                at=_at(day, call),
                caller=call.caller,
                called=call.called,
                keys=call.keys,
                hang_up_after=call.hang_up_after,
            )
            done.append((call, record.variables.get("TELEGESTION_STATUS") or "none"))
    finally:
        quiet.setLevel(level)
    return done


def demo_login(sessions: Any) -> str:
    """Create the demo coordinator, or give it a new password; returns the password."""
    from sqlalchemy import select

    from ..model import User
    from ..web.accounts import add_user
    from ..web.security import hash_password

    password = secrets.token_urlsafe(12)
    with sessions() as session, session.begin():
        user = session.scalar(select(User).where(User.login == DEMO_LOGIN))
        if user is None:
            add_user(session, DEMO_LOGIN, "coordinator", ["042", "117"], password)
        else:
            user.password_hash = hash_password(password)
            user.active = True
            user.disabled_at = None
    return password


def build(engine: Any, sessions: Any, day: dt.date, region: str) -> list[tuple[DemoCall, str]]:
    from reconciliation.store import reconcile_range

    from .. import migrate
    from ..importing import import_file

    migrate.upgrade(engine)
    with tempfile.TemporaryDirectory(prefix="telegestion-demo-") as folder:
        for kind, path in _write_files(Path(folder), day).items():
            import_file(sessions, kind, path)
    calls = place_morning(sessions, day, region)
    reconcile_range(engine, day - dt.timedelta(days=1), day)
    return calls


# --- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from reconciliation.anomaly_list import list_anomalies

    from ..db import make_engine, make_session_factory
    from ..settings import load_settings

    settings = load_settings()
    url = database_url(args.database, settings.database_url)
    engine = make_engine(url, statement_timeout_ms=settings.statement_timeout_ms)
    where = engine.url.render_as_string(hide_password=True)
    found = contents(engine)
    day = demo_day(dt.datetime.now(dt.UTC))
    calls: list[tuple[DemoCall, str]] = []
    if not found.empty and not found.is_demo:
        raise UsageError(
            f"{where} already holds data that is not the demo's ({found.rows} rows); the demo "
            "never writes into it. Give another database: telegestion demo --database demo.db"
        )
    if found.is_demo and args.fresh:
        path = _sqlite_file(engine)
        if path is None:
            raise UsageError(
                f"--fresh rebuilds SQLite files only; drop and recreate {where} yourself"
            )
        engine.dispose()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(url, statement_timeout_ms=settings.statement_timeout_ms)
        found = contents(engine)
    sessions = make_session_factory(engine)
    if found.is_demo:
        from ..migrate import current_revision, head_revision

        if current_revision(engine) != head_revision():
            raise UsageError(f"{where} has an old schema; run: telegestion db upgrade")
        print(f"{where} already holds the demo; nothing changed but the demo password.")
        print("(telegestion demo --fresh rebuilds it for today.)")
    else:
        calls = build(engine, sessions, day, settings.default_region)
    password = demo_login(sessions)
    anomalies = list_anomalies(engine, status="open")
    engine.dispose()
    if calls:
        _print_built(where, day, calls)
    counts: dict[str, int] = {}
    for line in anomalies:
        counts[line.code] = counts.get(line.code, 0) + 1
    listed = ", ".join(f"{code} {n}" for code, n in sorted(counts.items()))
    print(f"\nOpen anomalies: {len(anomalies)} ({listed or 'none'}).")
    _print_next(where if args.database else None, day, settings.http_port, password)
    return 0


def _print_built(where: str, day: dt.date, calls: list[tuple[DemoCall, str]]) -> None:
    print(f"Demo database: {where}")
    print(
        f"Demo morning: {day:%A %Y-%m-%d} ({TIMEZONE}); companies 042 (shared number {SHARED}) "
        f"and 117 (dedicated number {DEDICATED_117}), 10 clients, 7 carers, "
        f"{len(PLANNING)} planned interventions."
    )
    print("\nCalls placed through the real call program (FastAGI, simulated Asterisk):")
    for call, outcome in calls:
        date = day + dt.timedelta(days=call.day)
        print(
            f"  {date:%d/%m} {call.time}  {call.caller or 'withheld':<18} "
            f"keys {call.keys or '-':<22} {outcome:<18} {call.story}"
        )
    print("\nReconciliation: done (visits, matches, anomalies, realised interventions).")


def _print_next(database: str | None, day: dt.date, http_port: int, password: str) -> None:
    prefix = f"TELEGESTION_DATABASE_URL={shlex.quote(database)} " if database else ""
    print("\nWhere to look next:")
    print(f"  {prefix}telegestion anomalies")
    print(f'  {prefix}telegestion trace --caller "01 46 58 23 72" --at "{day} 08:26"')
    print(
        f'  {prefix}telegestion trace --caller anonymous --called "{SHARED}" '
        f'--at "{day} 11:04" --ticket'
    )
    print(f"  {prefix}telegestion serve")
    print(f"    then open http://localhost:{http_port}/ and log in as {DEMO_LOGIN} / {password}")
    print("    (coordinator of companies 042 and 117)")
