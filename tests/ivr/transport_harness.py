"""Test harness: the same calls over FastAGI (in memory) and the classic AGI script (a process).

:class:`AgiScriptWorker` runs each call as Asterisk runs ``AGI(telegestion.agi,…)``: the
installed ``telegestion-agi`` console script as a child process, on the test database, driven
over its stdin/stdout by the simulated Asterisk (SIGHUP on hang-up), in real time with shortened
prompts. Before each run it plays the very same calls over FastAGI, in memory, on a *twin*: a
SQLite copy of the test database taken just before the calls. Then it checks that both
transports left the same punches and the same journal (:func:`journal_snapshot` says what may
differ), that the script exited 0 with nothing on stderr unless the call ended in ``error``,
and hands back the records like the FastAGI :class:`~ivr_harness.Worker`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import pprint
import sqlite3
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ivr_harness import Worker
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.asterisk_sim import CallRecord, KeyPace, SimulatedCall, accelerated, next_uniqueid
from ivr.asterisk_sim_process import ScriptRun, run_agi_scripts
from ivr.call_store import CallStore
from ivr.flow_tuning import flow_settings
from telegestion import migrate
from telegestion.db import make_engine, make_session_factory
from telegestion.model import Anomaly, Call, CallEvent, CodeFailure, Punch
from telegestion.model.base import Base
from telegestion.settings import load_settings

TRANSPORTS = ("fastagi", "agi")

#: The flow's waits for this suite, on both transports, so that a subprocess call spends little
#: real time waiting (a readback nobody answers) while the rules stay those of production.
FLOW_ENV = {
    "TELEGESTION_FLOW_CODE_TIMEOUT_S": "2",
    "TELEGESTION_FLOW_ARRIVAL_READBACK_WAIT_S": "0.2",
    "TELEGESTION_FLOW_DEPARTURE_READBACK_WAIT_S": "0.2",
    "TELEGESTION_FLOW_TASK_CODES_TIMEOUT_S": "1",
}
TEST_FLOW = flow_settings(load_settings(environ=FLOW_ENV, config_path=None))

#: For the script in real time, prompts (and the caller's pauses) go this many times faster...
PROMPT_SPEEDUP = 20.0
#: ...and keys this many times faster. Not more: after a key cuts a prompt short, the script
#: has (120 + 250 ms) / KEY_SPEEDUP to ask for the next key before it is typed, and Asterisk
#: keeps no key typed in between. The FastAGI twin gets the very same accelerated call, so a key
#: lands in the same prompt on both (every prompt typed over lasts longer than a key and its gap).
KEY_SPEEDUP = 10.0

VENV_BIN = Path(sys.executable).parent
SCRIPT = VENV_BIN / "telegestion-agi"
#: How Asterisk starts the script: through the console script installed in the venv.
SCRIPT_ARGV = (
    [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "agi_scripts.telegestion_agi"]
)

DEAD_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/none"


def real_time(call: SimulatedCall) -> SimulatedCall:
    """The call for a subprocess run: the same script, shorter prompts, quicker keys."""
    fast = accelerated(call, PROMPT_SPEEDUP)
    return dataclasses.replace(
        fast, pace=KeyPace(call.pace.tone / KEY_SPEEDUP, call.pace.gap / KEY_SPEEDUP)
    )


def script_env(database_url: str, node: str) -> dict[str, str]:
    """The script's environment: this one without any TELEGESTION_ setting, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    env.update(FLOW_ENV, TELEGESTION_DATABASE_URL=database_url, TELEGESTION_NODE=node)
    return env


# ---------------------------------------------------------------------------------------------
# What both transports must leave alike
# ---------------------------------------------------------------------------------------------

_CALL_FIELDS = (
    "origin",
    "call_key",
    "called_raw",
    "called_e164",
    "caller_raw",
    "caller_e164",
    "caller_presentation",
    "company_id",
    "carer_id",
    "client_id",
    "company_code_keyed",
    "carer_code_keyed",
    "outcome",
    "hangup_step",
)
_PUNCH_FIELDS = (
    "origin",
    "call_key",
    "company_id",
    "carer_id",
    "client_id",
    "kind",
    "original_kind",
    "status",
    "source",
    "location_verified",
    "caller_raw",
    "caller_e164",
    "caller_withheld",
    "called_raw",
    "called_e164",
    "task_codes",
)
#: Journal details that hold a time of day: the same call placed a few seconds later may say
#: another minute.
_CLOCK_DETAILS = ("local_time", "say_time")


def _detail(detail: dict[str, Any], punch_numbers: dict[int, int]) -> dict[str, Any]:
    """A journal detail with what legitimately differs between two runs replaced."""
    out = dict(detail)
    for key in _CLOCK_DETAILS:
        if key in out:
            out[key] = "HH:MM"
    if isinstance(out.get("punch_id"), int):
        out["punch_id"] = f"punch#{punch_numbers.setdefault(out['punch_id'], len(punch_numbers))}"
    return out


def journal_snapshot(sessions: sessionmaker[Session], uniqueids: Iterable[str]) -> dict[str, Any]:
    """Per call: its journal row and events, its punch, and what it raised or counted.

    Left out, because they legitimately differ between transports or runs: the transport name,
    row ids (punch ids become ``punch#n`` in order of appearance), instants and times of day.
    """
    punch_numbers: dict[int, int] = {}
    snapshot: dict[str, Any] = {}
    with sessions() as s:
        for key in uniqueids:
            calls = s.scalars(select(Call).where(Call.call_key == key).order_by(Call.origin)).all()
            entry: dict[str, Any] = {"calls": []}
            for call in calls:
                events = s.scalars(
                    select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.seq)
                ).all()
                entry["calls"].append(
                    {
                        **{name: getattr(call, name) for name in _CALL_FIELDS},
                        "ended": call.ended_at is not None,
                        "events": [
                            (e.seq, e.kind, _detail(e.detail, punch_numbers)) for e in events
                        ],
                        "code_failures": sorted(
                            s.scalars(
                                select(CodeFailure.what).where(CodeFailure.call_id == call.id)
                            ).all()
                        ),
                    }
                )
            punches = s.scalars(
                select(Punch).where(Punch.call_key == key).order_by(Punch.origin)
            ).all()
            entry["punches"] = [{name: getattr(p, name) for name in _PUNCH_FIELDS} for p in punches]
            entry["anomalies"] = sorted(
                (a.code, a.severity, a.status, a.carer_id, a.client_id)
                for p in punches
                for a in s.scalars(select(Anomaly).where(Anomaly.punch_id == p.id))
            )
            snapshot[key] = entry
        snapshot["code_failures_by_caller"] = sorted(
            s.execute(select(CodeFailure.caller_e164, CodeFailure.what)).all()
        )
        snapshot["brute_force"] = sorted(
            (a.code, a.detail.get("caller_number"))
            for a in s.scalars(select(Anomaly).where(Anomaly.code == "CODE_BRUTE_FORCE"))
        )
    return snapshot


def same_journal(agi: dict[str, Any], fastagi: dict[str, Any]) -> None:
    """Fail with what differs, line by line, when the two transports disagree."""
    if agi == fastagi:
        return
    diff = difflib.unified_diff(
        pprint.pformat(fastagi, width=100).splitlines(),
        pprint.pformat(agi, width=100).splitlines(),
        "fastagi",
        "agi",
        lineterm="",
        n=2,
    )
    raise AssertionError("the AGI script and FastAGI disagree:\n" + "\n".join(diff))


# ---------------------------------------------------------------------------------------------
# The twin database
# ---------------------------------------------------------------------------------------------


def migrated_template(path: Path) -> Path:
    """An empty SQLite database at the head revision, copied for each twin."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


def twin_of(source: sessionmaker[Session], template: Path, workdir: Path) -> sessionmaker[Session]:
    """A SQLite copy of ``source`` (SQLite or PostgreSQL) as it is now: every row, same ids."""
    path = workdir / f"twin-{uuid.uuid4().hex[:8]}.db"
    with sqlite3.connect(template) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    plain = create_engine(f"sqlite:///{path}")  # foreign keys off while rows arrive in bulk
    with source.kw["bind"].connect() as conn, plain.begin() as out:
        for table in Base.metadata.sorted_tables:
            rows = [dict(row._mapping) for row in conn.execute(select(table))]
            if rows:
                out.execute(table.insert(), rows)
    plain.dispose()
    return make_session_factory(make_engine(f"sqlite:///{path}"))


# ---------------------------------------------------------------------------------------------
# The classic AGI script as a worker
# ---------------------------------------------------------------------------------------------


class AgiScriptWorker:
    """Calls through the ``telegestion-agi`` script, one process per call, on the database of
    ``sessions`` (named by ``database_url`` for the scripts)."""

    transport = "agi"

    def __init__(
        self,
        sessions: sessionmaker[Session],
        database_url: str,
        *,
        template: Path,
        workdir: Path,
        node: str = "node1",
    ) -> None:
        self.sessions = sessions
        self.template = template
        self.workdir = workdir
        self.node = node
        #: the URL the sessions were made from (an engine's own URL may have lost options,
        #: such as PostgreSQL's search_path, to its connect arguments)
        self.database_url = database_url
        self.compare = True
        #: the last calls' script runs (exit status, stderr, start-up time)
        self.runs: list[ScriptRun] = []
        #: the last calls' records from the FastAGI twin run
        self.twin_records: list[CallRecord] = []

    def use_dead_database(self) -> None:
        """Point the script at a closed port; no journal to compare then."""
        self.database_url = DEAD_DATABASE_URL
        self.compare = False

    def calls(self, calls: Sequence[SimulatedCall], stagger: float = 0.0) -> list[CallRecord]:
        calls = [
            real_time(c if c.uniqueid else dataclasses.replace(c, uniqueid=next_uniqueid()))
            for c in calls
        ]
        stagger /= PROMPT_SPEEDUP
        ids = [c.uniqueid or "" for c in calls]
        expected = None
        if self.compare:
            twin = twin_of(self.sessions, self.template, self.workdir)
            fastagi = Worker(twin, node=self.node, flow_settings=TEST_FLOW)
            self.twin_records = fastagi.calls(calls, stagger=stagger)
            expected = journal_snapshot(twin, ids)
            twin.kw["bind"].dispose()
        self.runs = run_agi_scripts(
            SCRIPT_ARGV,
            calls,
            env=script_env(self.database_url, self.node),
            cwd=str(self.workdir),
            stagger=stagger,
        )
        records = [run.record for run in self.runs]
        for run in self.runs:
            status = run.record.variables.get("TELEGESTION_STATUS")
            if status != "error":
                assert run.stderr == b"", run.stderr
                assert run.record.exit_status == 0, (status, run.stderr)
        if expected is not None:
            same_journal(journal_snapshot(self.sessions, ids), expected)
        return records

    def call(self, call: SimulatedCall) -> CallRecord:
        return self.calls([call])[0]


class FastAGIWorker(Worker):
    """The in-memory FastAGI worker of ``ivr_harness``, with the suite's flow waits."""

    transport = "fastagi"

    def __init__(self, sessions: sessionmaker[Session], *, node: str = "node1") -> None:
        super().__init__(sessions, node=node, flow_settings=TEST_FLOW)

    def use_dead_database(self) -> None:
        self.handler.store = CallStore(
            make_session_factory(make_engine(DEAD_DATABASE_URL)), default_region="FR"
        )


Runner = FastAGIWorker | AgiScriptWorker
