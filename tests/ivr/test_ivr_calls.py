"""Whole landline calls on a real database, over both AGI transports.

``fastagi``: the simulated Asterisk drives our FastAGI protocol in memory, in virtual time.
``agi``: it drives the classic AGI script (``telegestion-agi``) as a child process over its
stdin/stdout, in real time, and the harness checks that the same calls over FastAGI leave the
same punches and journal (``transport_harness``). Every test runs on both, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ivr_harness import (
    AMINATA,
    DEDICATED_117,
    FATOU,
    MME_DUBOIS,
    MME_FOURNIER,
    SHARED,
    SOPHIE_INACTIVE,
    load_examples,
    real_durations,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from transport_harness import (
    TRANSPORTS,
    AgiScriptWorker,
    FastAGIWorker,
    Runner,
    migrated_template,
)

from ivr.asterisk_sim import HangUp, Keys, SimulatedCall, WaitForInput, WaitForPrompt, parse_keys
from ivr.prompt_ids import ALL_PROMPT_IDS
from telegestion.model import Anomaly, Call, CallEvent, Carer, Client, CodeFailure, Punch

NewWorker = Callable[..., Runner]


@pytest.fixture
def db(transport: str, sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """The examples loaded; after the transport, whose choice may skip the test before that."""
    load_examples(sessions)
    return sessions


@pytest.fixture(scope="session")
def twin_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated empty SQLite file, copied for each FastAGI twin of an AGI script run."""
    return migrated_template(tmp_path_factory.mktemp("twin") / "template.db")


#: The script runs on PostgreSQL where the database engine is part of what is tested: several
#: processes writing at once, and the punch key's uniqueness across processes and nodes.
#: Elsewhere it would repeat its SQLite run (the same CallStore code), at a process per call.
AGI_ON_POSTGRESQL = frozenset(
    {
        "test_replaying_a_call_never_makes_a_second_punch",
        "test_concurrent_calls_do_not_mix",
    }
)


@pytest.fixture(
    params=[pytest.param(t, marks=[pytest.mark.slow] if t == "agi" else []) for t in TRANSPORTS]
)
def transport(request: pytest.FixtureRequest, db_url: str) -> str:
    """The AGI transport under test; decided before the database is migrated and loaded."""
    name = request.function.__name__
    if request.param == "agi" and db_url.startswith("postgresql") and name not in AGI_ON_POSTGRESQL:
        pytest.skip("the script on PostgreSQL only where the database matters (AGI_ON_POSTGRESQL)")
    return str(request.param)


@pytest.fixture
def new_worker(
    transport: str,
    db: sessionmaker[Session],
    db_url: str,
    twin_template: Path,
    tmp_path: Path,
) -> NewWorker:
    """Makes a worker (a node) of the transport under test on the test database."""

    def make(node: str = "node1") -> Runner:
        if transport == "fastagi":
            return FastAGIWorker(db, node=node)
        return AgiScriptWorker(db, db_url, template=twin_template, workdir=tmp_path, node=node)

    return make


def shared_call(caller: str | None, keys: str, **kw: object) -> SimulatedCall:
    return SimulatedCall(
        called=SHARED,
        caller=caller,
        script=tuple(parse_keys(keys)),
        durations=real_durations(),
        **kw,
    )  # type: ignore[arg-type]


def punches(db: sessionmaker[Session]) -> list[Punch]:
    with db() as s:
        return list(s.scalars(select(Punch).where(Punch.source == "landline").order_by(Punch.id)))


def call_row(db: sessionmaker[Session], uniqueid: str) -> Call:
    with db() as s:
        return s.scalars(select(Call).where(Call.call_key == uniqueid)).one()


def events(db: sessionmaker[Session], call_id: int) -> list[CallEvent]:
    with db() as s:
        return list(
            s.scalars(select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.seq))
        )


def client_id(db: sessionmaker[Session], ref: str) -> int:
    with db() as s:
        return s.scalars(select(Client.id).where(Client.client_ref == ref)).one()


def test_shared_number_arrival_then_departure(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """Company code, carer code, client from the landline: an arrival, then a departure."""
    worker = new_worker()
    first = worker.call(shared_call(MME_DUBOIS, ">042>12345"))
    second = worker.call(shared_call(MME_DUBOIS, ">042>12345"))
    assert first.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert second.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert "telegestion/arrival-recorded" in first.prompts
    assert "telegestion/departure-recorded" in second.prompts
    rows = punches(db)
    assert [p.kind for p in rows] == ["arrival", "departure"]
    assert all(p.client_id == client_id(db, "C-0001") for p in rows)
    assert rows[0].caller_e164 == "+33145678912" and rows[0].called_e164 == "+33800123456"
    assert (rows[0].origin, rows[0].call_key) == ("node1", first.uniqueid)
    assert rows[0].location_verified is True
    row = call_row(db, first.uniqueid)
    assert (row.outcome, row.transport, row.company_code_keyed, row.carer_code_keyed) == (
        "punch_recorded",
        worker.transport,
        "042",
        "12345",
    )
    assert row.hangup_step is None and row.ended_at is not None
    assert rows[0].call_id == row.id
    kinds = [e.kind for e in events(db, row.id)]
    assert "prompt" in kinds and "input" in kinds and "punch" in kinds
    assert [e.seq for e in events(db, row.id)] == list(range(1, len(kinds) + 1))


def test_dedicated_number_needs_no_company_code(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """On a dedicated number the carer keys only the carer code."""
    record = new_worker().call(
        SimulatedCall(
            called=DEDICATED_117, caller=MME_FOURNIER, script=tuple(parse_keys(">" + AMINATA))
        )
    )
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert "telegestion/enter-company-code" not in record.prompts
    (punch,) = punches(db)
    assert punch.client_id == client_id(db, "J-103")


@pytest.mark.parametrize(
    ("caller", "withheld"), [(None, True), ("anonymous", True), ("0199999999", False)]
)
def test_unknown_or_withheld_caller_still_punches(
    db: sessionmaker[Session], new_worker: NewWorker, caller: str | None, withheld: bool
) -> None:
    """A carer's time is never refused: no client, but the punch is recorded."""
    record = new_worker().call(shared_call(caller, ">042>12345"))
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    (punch,) = punches(db)
    assert punch.client_id is None
    assert punch.caller_withheld is withheld
    assert (punch.caller_e164 is None) is withheld


def test_number_present_with_restricted_presentation_names_the_client(
    db: sessionmaker[Session],
    new_worker: NewWorker,
) -> None:
    """A restricted presentation with the number present still names the client (transcript d2)."""
    record = new_worker().call(shared_call(MME_DUBOIS, ">042>12345", withheld=True))
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    (punch,) = punches(db)
    assert punch.client_id == client_id(db, "C-0001")
    assert call_row(db, record.uniqueid).caller_presentation == "35"


def test_replaying_a_call_never_makes_a_second_punch(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """The same agi_uniqueid on the same node is the same punch, whatever is keyed again."""
    worker = new_worker()
    first = worker.call(shared_call(MME_DUBOIS, ">042>12345", uniqueid="1795333838.1"))
    again = worker.call(shared_call(MME_DUBOIS, ">042>12345", uniqueid="1795333838.1"))
    assert again.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert len(punches(db)) == 1
    assert (
        "telegestion/arrival-recorded" in first.prompts
        and "telegestion/arrival-recorded" in again.prompts
    )
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 1
    other_node = new_worker(node="node2").call(
        shared_call(MME_DUBOIS, ">042>12345", uniqueid="1795333838.1")
    )
    assert other_node.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert len(punches(db)) == 2


def test_inactive_carer_three_attempts(db: sessionmaker[Session], new_worker: NewWorker) -> None:
    """An inactive carer's code is refused three times, then the call ends carer_code_failed."""
    record = new_worker().call(shared_call(MME_DUBOIS, ">042" + (">" + SOPHIE_INACTIVE) * 3))
    assert record.variables["TELEGESTION_STATUS"] == "carer_code_failed"
    assert record.prompts.count("telegestion/invalid-carer-code") == 2
    assert "telegestion/too-many-attempts" in record.prompts
    assert punches(db) == []
    row = call_row(db, record.uniqueid)
    assert row.carer_code_keyed == SOPHIE_INACTIVE and row.outcome == "carer_code_failed"
    detail = [
        e.detail for e in events(db, row.id) if e.kind == "input" and e.detail.get("valid") is False
    ]
    assert len(detail) == 3


@pytest.mark.parametrize(
    ("script", "step", "outcome"),
    [
        ((WaitForPrompt("enter-company-code"), HangUp()), "welcome", "caller_hung_up"),
        (
            (
                WaitForInput(),
                Keys("042"),
                WaitForPrompt("enter-carer-code"),
                Keys("12"),
                HangUp(0.3),
            ),
            "carer_code",
            "caller_hung_up",
        ),
        (
            (
                WaitForInput(),
                Keys("042"),
                WaitForInput(),
                Keys(FATOU),
                WaitForPrompt("arrival-recorded"),
                HangUp(0.2),
            ),
            "readback",
            "punch_recorded",
        ),
    ],
)
def test_hang_up_at_a_step_is_journaled(
    db: sessionmaker[Session], new_worker: NewWorker, script: tuple, step: str, outcome: str
) -> None:
    """A caller hanging up ends the call cleanly, journaled with the step; a stored punch stays."""
    worker = new_worker()
    record = worker.call(
        SimulatedCall(called=SHARED, caller=MME_DUBOIS, script=script, durations=real_durations())
    )
    assert record.hung_up_by == "caller"
    assert record.server_closed
    if worker.transport == "agi":  # told by SIGHUP, and gone soon after (exit 0: the harness)
        assert any(e.kind == "signal" for e in record.dialogue)
        assert record.hung_up_at is not None and record.ended_at - record.hung_up_at < 3.0
    row = call_row(db, record.uniqueid)
    assert (row.outcome, row.hangup_step) == (outcome, step)
    assert any(e.kind == "hangup" for e in events(db, row.id))
    assert len(punches(db)) == (1 if outcome == "punch_recorded" else 0)


def test_correction_flips_the_punch(db: sessionmaker[Session], new_worker: NewWorker) -> None:
    """Pressing 2 at the readback turns the arrival into a departure, keeping the original kind."""
    record = new_worker().call(shared_call(MME_DUBOIS, ">042>12345>2"))
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert "telegestion/correction-recorded" in record.prompts
    (punch,) = punches(db)
    assert (punch.kind, punch.original_kind) == ("departure", "arrival")


def test_client_absent_is_reported_at_once(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """Pressing 9 at an arrival makes it a client_absent report and raises CLIENT_ABSENT."""
    record = new_worker().call(shared_call(MME_DUBOIS, ">042>12345>9"))
    assert "telegestion/absence-recorded" in record.prompts
    (punch,) = punches(db)
    assert punch.status == "client_absent"
    with db() as s:
        anomaly = s.scalars(select(Anomaly).where(Anomaly.code == "CLIENT_ABSENT")).one()
    assert (anomaly.punch_id, anomaly.severity, anomaly.status) == (punch.id, "B", "open")


def test_lock_out_after_repeated_wrong_codes(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """More than 5 wrong codes from one number in an hour lock it out and raise CODE_BRUTE_FORCE."""
    worker = new_worker()
    for _ in range(2):
        record = worker.call(shared_call("0611223344", ">999>998>997"))
        assert record.variables["TELEGESTION_STATUS"] in ("company_code_failed", "locked_out")
    with db() as s:
        assert s.scalar(select(func.count()).select_from(CodeFailure)) == 6
        brute = s.scalars(select(Anomaly).where(Anomaly.code == "CODE_BRUTE_FORCE")).all()
    assert len(brute) == 1 and brute[0].detail["caller_number"] == "+33611223344"
    locked = worker.call(shared_call("0611223344", ">042>12345"))
    assert locked.variables["TELEGESTION_STATUS"] == "locked_out"
    assert "telegestion/service-unavailable" in locked.prompts
    assert "telegestion/enter-company-code" not in locked.prompts
    other = worker.call(shared_call(MME_DUBOIS, ">042>12345"))
    assert other.variables["TELEGESTION_STATUS"] == "punch_recorded"


def test_english_company_switches_the_channel_language(
    db: sessionmaker[Session], new_worker: NewWorker, tmp_path: object
) -> None:
    """Prompts of an English-speaking company come from the `en` sound folder."""
    with db() as s, s.begin():
        from telegestion.model import Company

        s.scalars(select(Company).where(Company.code == "117")).one().language = "en"
    record = new_worker().call(
        SimulatedCall(
            called=DEDICATED_117, caller=MME_FOURNIER, script=tuple(parse_keys(">" + AMINATA))
        )
    )
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert "SET VARIABLE CHANNEL(language) en" in record.commands


def test_missing_prompt_is_an_error_not_a_hang_up(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """A sound missing on the Asterisk server ends the call as `error`, journaled as such."""
    present = [f"telegestion/{p}" for p in ALL_PROMPT_IDS if p != "enter-carer-code"]
    record = new_worker().call(shared_call(MME_DUBOIS, ">042>12345", known_sounds=present))
    assert record.variables["TELEGESTION_STATUS"] == "error"
    row = call_row(db, record.uniqueid)
    assert row.outcome == "error" and row.hangup_step is None
    errors = [e.detail for e in events(db, row.id) if e.kind == "error"]
    assert errors and errors[0]["error"] == "missing_prompt"
    assert punches(db) == []


def test_unknown_called_number(db: sessionmaker[Session], new_worker: NewWorker) -> None:
    """A number that is no service of ours: number-not-in-service, outcome unknown_called_number."""
    record = new_worker().call(SimulatedCall(called="0899123456", caller=MME_DUBOIS))
    assert record.variables["TELEGESTION_STATUS"] == "unknown_called_number"
    assert record.prompts[-1] == "telegestion/number-not-in-service"


def test_a_dead_database_gives_a_clear_answer(
    db: sessionmaker[Session], new_worker: NewWorker
) -> None:
    """With the database unreachable the carer hears technical-problem and the call ends `error`."""
    worker = new_worker()
    worker.use_dead_database()
    record = worker.call(shared_call(MME_DUBOIS, ">042>12345"))
    assert record.variables["TELEGESTION_STATUS"] == "error"
    assert "telegestion/technical-problem" in record.prompts
    assert record.hung_up_by == "server"


def test_concurrent_calls_do_not_mix(db: sessionmaker[Session], new_worker: NewWorker) -> None:
    """Interleaved calls from different carers each record their own punch."""
    with db() as s:
        codes = list(
            s.scalars(select(Carer.carer_code).where(Carer.active.is_(True), Carer.company_id == 1))
        )
    worker = new_worker()
    # Forty in virtual time; each script call is a process on a small test machine.
    count = 40 if worker.transport == "fastagi" else 4
    calls = [
        shared_call(MME_DUBOIS if i % 2 else None, f">042>{codes[i % len(codes)]}")
        for i in range(count)
    ]
    records = worker.calls(calls, stagger=0.05)
    assert [r.variables.get("TELEGESTION_STATUS") for r in records] == ["punch_recorded"] * count
    assert len({p.call_key for p in punches(db)}) == count
