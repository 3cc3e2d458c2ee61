"""The classic AGI script as Asterisk runs it: hang-ups at every step (with those that
``test_ivr_calls.py`` plays on both transports), a dead database, stderr, exit statuses, odd
environments.

Each call is the installed ``telegestion-agi`` console script in a child process on a SQLite
database, driven over its stdin/stdout by the simulated Asterisk (``transport_harness``), which
also checks every call against the same call over FastAGI unless a test says the two legitimately
differ. The backends are covered by ``test_ivr_calls.py``; signals and exits do not depend on them.
"""

from __future__ import annotations

import datetime as dt
import os
import pty
import sqlite3
import subprocess
from pathlib import Path

import pytest
from ivr_harness import FATOU, MME_DUBOIS, SHARED, load_examples
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from transport_harness import SCRIPT_ARGV, AgiScriptWorker, migrated_template, script_env

from ivr.asterisk_sim import (
    Action,
    CallRecord,
    HangUp,
    Keys,
    SimulatedCall,
    WaitForInput,
    WaitForPrompt,
    accelerated,
    parse_keys,
)
from ivr.asterisk_sim_process import run_agi_script
from ivr.prompt_ids import ALL_PROMPT_IDS
from telegestion.db import make_engine, make_session_factory
from telegestion.model import Call, CallEvent, Carer, Client, Company, Punch

pytestmark = pytest.mark.slow

#: From the caller's hang-up to the script's exit: the journal is written, then the process
#: leaves. Generous for a loaded test machine; a normal exit takes a fraction of it.
QUICK_EXIT_S = 3.0


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("agi-script") / "template.db")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> tuple[sessionmaker[Session], str]:
    """A SQLite database with the examples loaded, and its URL for the script."""
    path = tmp_path / "telegestion.db"
    with sqlite3.connect(template) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    url = f"sqlite:///{path}"
    sessions = make_session_factory(make_engine(url))
    load_examples(sessions)
    return sessions, url


@pytest.fixture
def worker(
    db: tuple[sessionmaker[Session], str], template: Path, tmp_path: Path
) -> AgiScriptWorker:
    sessions, url = db
    return AgiScriptWorker(sessions, url, template=template, workdir=tmp_path)


def call_row(sessions: sessionmaker[Session], uniqueid: str) -> Call:
    with sessions() as s:
        return s.scalars(select(Call).where(Call.call_key == uniqueid)).one()


def events(sessions: sessionmaker[Session], call: Call) -> list[CallEvent]:
    with sessions() as s:
        return list(
            s.scalars(select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.seq))
        )


def open_arrival_with_task_codes(sessions: sessionmaker[Session]) -> None:
    """Fatou arrived at Mme Dubois an hour ago and company 042 asks for task codes: this call
    is a departure that reaches the task-code step."""
    now = dt.datetime.now(dt.UTC)
    with sessions() as s, s.begin():
        company = s.scalars(select(Company).where(Company.code == "042")).one()
        company.task_codes_enabled = True
        carer = s.scalars(select(Carer).where(Carer.carer_code == FATOU)).one()
        client = s.scalars(select(Client).where(Client.client_ref == "C-0001")).one()
        s.add(
            Punch(
                origin="test",
                call_key="earlier-arrival",
                company_id=company.id,
                carer_id=carer.id,
                client_id=client.id,
                kind="arrival",
                at=now - dt.timedelta(hours=1),
                source="landline",
                caller_raw=MME_DUBOIS,
                caller_e164="+33145678912",
            )
        )


THROUGH_CODES: tuple[Action, ...] = (WaitForInput(), Keys("042"), WaitForInput(), Keys(FATOU))

#: (name, caller script, step journaled, outcome): one hang-up per step a caller can leave at.
HANG_UPS = [
    ("welcome", (WaitForPrompt("welcome"), HangUp(0.05)), "welcome", "caller_hung_up"),
    (
        "company_code",
        (WaitForInput(), Keys("999"), WaitForPrompt("invalid-company-code"), HangUp()),
        "company_code",
        "caller_hung_up",
    ),
    (
        "carer_code",
        (WaitForInput(), Keys("042"), WaitForPrompt("enter-carer-code"), Keys("12"), HangUp(0.3)),
        "carer_code",
        "caller_hung_up",
    ),
    (
        "readback",
        (*THROUGH_CODES, WaitForPrompt("arrival-recorded"), HangUp(0.2)),
        "readback",
        "punch_recorded",
    ),
    (
        "absence",
        (*THROUGH_CODES, WaitForInput(), Keys("9"), WaitForPrompt("absence-recorded"), HangUp()),
        "absence",
        "punch_recorded",
    ),
    (
        "task_codes",
        (*THROUGH_CODES, WaitForPrompt("enter-task-codes"), HangUp(0.1)),
        "task_codes",
        "punch_recorded",
    ),
    ("goodbye", (*THROUGH_CODES, WaitForPrompt("goodbye"), HangUp()), "goodbye", "punch_recorded"),
]


#: Steps whose hang-up ``test_ivr_calls.py`` already plays through the script (and FastAGI).
ON_BOTH_TRANSPORTS = ("welcome", "carer_code", "readback")


def hang_up_call(script: tuple[Action, ...], **kw: object) -> SimulatedCall:
    return SimulatedCall(called=SHARED, caller=MME_DUBOIS, script=script, **kw)  # type: ignore[arg-type]


def assert_ended_cleanly(
    worker: AgiScriptWorker, record: CallRecord, step: str, outcome: str
) -> None:
    sessions = worker.sessions
    row = call_row(sessions, record.uniqueid)
    assert (row.outcome, row.hangup_step) == (outcome, step)
    assert any(e.kind == "hangup" for e in events(sessions, row))
    assert record.hung_up_by == "caller"
    assert (record.agistatus, record.exit_status) == ("HANGUP", 0)
    assert worker.runs[0].stderr == b""
    assert record.hung_up_at is not None
    assert record.ended_at - record.hung_up_at < QUICK_EXIT_S


@pytest.mark.parametrize(
    ("script", "step", "outcome"),
    [c[1:] for c in HANG_UPS if c[0] not in ON_BOTH_TRANSPORTS],
    ids=[c[0] for c in HANG_UPS if c[0] not in ON_BOTH_TRANSPORTS],
)
def test_sighup_at_each_step_ends_the_script_cleanly(
    worker: AgiScriptWorker, script: tuple[Action, ...], step: str, outcome: str
) -> None:
    """A hang-up (SIGHUP) at any step: the right outcome and step journaled, exit 0, quickly."""
    if step == "task_codes":
        open_arrival_with_task_codes(worker.sessions)
    record = worker.call(hang_up_call(script))
    assert any(e.kind == "signal" and e.text == "SIGHUP" for e in record.dialogue)
    assert_ended_cleanly(worker, record, step, outcome)


@pytest.mark.parametrize(
    ("script", "step", "outcome"),
    [c[1:] for c in HANG_UPS if c[0] in ("carer_code", "goodbye")],
    ids=["carer_code", "goodbye"],
)
def test_without_sighup_the_511_tells(
    worker: AgiScriptWorker, script: tuple[Action, ...], step: str, outcome: str
) -> None:
    """AGISIGHUP=no: no signal ever comes; result=-1 and 511 alone end the call the same way."""
    record = worker.call(hang_up_call(script, variables={"AGISIGHUP": "no"}))
    assert not any(e.kind == "signal" for e in record.dialogue)
    assert_ended_cleanly(worker, record, step, outcome)


def test_a_hang_up_at_the_answer_is_journaled(worker: AgiScriptWorker) -> None:
    """The script answers before it loads; a caller gone by then is journaled, exit 0."""
    worker.compare = False  # FastAGI answers after its lookups: its journal legitimately differs
    record = worker.call(hang_up_call((), hang_up_after=0.0))
    row = call_row(worker.sessions, record.uniqueid)
    assert row.outcome == "caller_hung_up"
    hangups = [e.detail for e in events(worker.sessions, row) if e.kind == "hangup"]
    assert hangups[0]["during"] == "Answer"
    assert (record.exit_status, worker.runs[0].stderr) == (0, b"")


def test_a_normal_call_writes_nothing_on_stderr_whatever_the_caller_name(
    worker: AgiScriptWorker,
) -> None:
    """Asterisk prints a script's stderr on its console: a punch writes nothing there, even with
    a caller name in Latin-1 and cut in the middle of a UTF-8 character."""
    record = worker.call(
        SimulatedCall(
            called=SHARED,
            caller=MME_DUBOIS,
            caller_name=b"DUPONT Ren\xe9 \xc3",
            script=tuple(parse_keys(">042>12345")),
        )
    )
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert (worker.runs[0].stderr, record.exit_status, record.agistatus) == (b"", 0, "HANGUP")


def test_a_dead_database_is_technical_problem_exit_1_and_one_line(worker: AgiScriptWorker) -> None:
    """Database down: technical-problem, outcome error, one line on stderr naming it, exit 1."""
    worker.use_dead_database()
    record = worker.call(hang_up_call(tuple(parse_keys(">042>12345"))))
    assert "telegestion/technical-problem" in record.prompts
    assert record.variables["TELEGESTION_STATUS"] == "error"
    assert record.exit_status == 1
    assert record.agistatus == "HANGUP"  # the script hung up after its apology
    lines = worker.runs[0].stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"telegestion.agi: call {record.uniqueid}: outcome error")
    assert "not journaled" in lines[0] and "OperationalError" in lines[0]


def test_a_missing_prompt_is_exit_1_with_the_prompt_named(worker: AgiScriptWorker) -> None:
    """A sound missing on the Asterisk server: outcome error, exit 1, the line names the sound."""
    present = [f"telegestion/{p}" for p in ALL_PROMPT_IDS if p != "enter-carer-code"]
    record = worker.call(hang_up_call(tuple(parse_keys(">042>12345")), known_sounds=present))
    assert record.variables["TELEGESTION_STATUS"] == "error"
    assert record.exit_status == 1
    (line,) = worker.runs[0].stderr.decode().splitlines()
    assert "enter-carer-code" in line and "not journaled" not in line


def test_bad_settings_exit_2_before_answering(tmp_path: Path) -> None:
    """A setting that cannot be read: nothing said, exit 2, AGISTATUS=FAILURE for the dialplan."""
    env = script_env("sqlite:///unused.db", "node1")
    env["TELEGESTION_STATEMENT_TIMEOUT_MS"] = "soon"
    run = run_agi_script(SCRIPT_ARGV, accelerated(hang_up_call(()), 10), env=env, cwd=str(tmp_path))
    assert run.record.commands == []
    assert (run.record.exit_status, run.record.agistatus) == (2, "FAILURE")
    (line,) = run.stderr.decode().splitlines()
    assert line.startswith("telegestion.agi: not started:")
    assert "TELEGESTION_STATEMENT_TIMEOUT_MS" in line


def test_run_by_hand_on_a_terminal_it_explains_itself(tmp_path: Path) -> None:
    """Started from a shell (stdin a terminal) it says what it is for and exits 2."""
    parent, child = pty.openpty()
    try:
        done = subprocess.run(
            SCRIPT_ARGV,
            stdin=child,
            capture_output=True,
            env=script_env("sqlite:///unused.db", "node1"),
            cwd=tmp_path,
            timeout=30,
        )
    finally:
        os.close(parent)
        os.close(child)
    assert done.returncode == 2
    assert b"AGI(telegestion.agi" in done.stderr and done.stdout == b""
