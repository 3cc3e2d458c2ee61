"""The reconciliation commands as a coordinator runs them: outputs, formats, one-line errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from recon_db_world import World
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from telegestion.cli import main
from telegestion.model import Anomaly

Run = Callable[..., tuple[int, str, str]]
COLUMNS = "id,company_code,code,status,carer_ref,client_ref,intervention_ref,at,detail"


@pytest.fixture
def run(
    engine: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> Run:
    """``run(*args)`` -> (exit status, stdout, stderr) of ``telegestion ARGS`` on the test DB."""
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
        out, err = capsysbinary.readouterr()
        return code, out.decode(), err.decode()

    return invoke


@pytest.fixture
def missed(sessions: sessionmaker[Session]) -> World:
    """A planned visit in May 2026 that nobody made (NO_PUNCH whatever the clock says now)."""
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.plan(company, "P1", client, carer, "2026-05-04 09:00", "2026-05-04 10:00")
    return w


def one_line_error(result: tuple[int, str, str], fragment: str) -> None:
    code, _, err = result
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err


def test_reconcile_then_list_in_every_format(run: Run, missed: World) -> None:
    """`reconcile` reports what it did; `anomalies` prints a table, CSV with the spec's columns
    and JSON with the detail as an object."""
    code, out, _ = run("reconcile", "--from", "2026-05-04", "--to", "2026-05-04")
    assert code == 0 and out.startswith("reconcile: 1 carer-day(s) reconciled")
    code, table, _ = run("anomalies")
    assert code == 0 and table.splitlines()[0].split() == COLUMNS.split(",")
    assert "NO_PUNCH" in table.splitlines()[1]
    code, text, _ = run("anomalies", "--format", "csv", "--status", "open", "--code", "NO_PUNCH")
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == COLUMNS
    assert (row["company_code"], row["carer_ref"], row["intervention_ref"], row["at"]) == (
        "042",
        "I1",
        "P1",
        "2026-05-04T09:00:00+02:00",
    )
    code, text, _ = run("anomalies", "--format", "json", "--company", "042")
    assert json.loads(text)[0]["detail"] == {}
    code, text, _ = run("anomalies", "--format", "csv", "--status", "resolved")
    assert text.splitlines() == [COLUMNS]


def test_resolve_from_the_command_line(
    run: Run, missed: World, sessions: sessionmaker[Session]
) -> None:
    """`anomalies resolve ID --action use_planned` realises P1; the JSON listing shows the
    decision in the anomaly's audit trail."""
    run("reconcile", "--from", "2026-05-04", "--to", "2026-05-04")
    with sessions() as s:
        anomaly_id = s.scalars(select(Anomaly.id)).one()
    code, out, err = run(
        "anomalies", "resolve", str(anomaly_id), "--action", "use_planned",
        "--reason", "carer_forgot_to_call", "--note", "confirmed by phone",
    )  # fmt: skip
    assert code == 0, err
    assert "NO_PUNCH:i" in out and "1 intervention(s) updated" in out
    code, out, _ = run("export", "payroll", "--from", "2026-05-04", "--to", "2026-05-04")
    assert out.splitlines()[1].endswith(",60")
    code, out, _ = run("anomalies", "--format", "json")
    (listed,) = json.loads(out)
    assert listed["status"] == "resolved"
    assert [(r["action"], r["reason"], r["note"]) for r in listed["resolutions"]] == [
        ("use_planned", "carer_forgot_to_call", "confirmed by phone")
    ]


ERRORS = [
    (("reconcile", "--from", "2026-05-04"), "give both --from DATE and --to DATE"),
    (("reconcile", "--from", "2026-05-04", "--to", "2026-05-01"), "is before --from"),
    (("reconcile", "--from", "4/5/2026", "--to", "2026-05-04"), "is not a date"),
    (("reconcile", "--company", "999"), "unknown company code '999'"),
    (("reconcile", "--as-of", "yesterday"), "--as-of"),
    (("export", "payroll", "--from", "2026-05-04"), "give both --from DATE and --to DATE"),
    (("export", "pets", "--from", "2026-05-04", "--to", "2026-05-04"), "invalid choice"),
    (("export", "billing", "--from", "2026-05-04", "--to", "2026-05-04", "--company", "9"),
     "unknown company code"),
    (("anomalies", "--status", "sleeping"), "invalid choice"),
    (("anomalies", "resolve", "4242", "--action", "dismiss", "--reason", "other"),
     "no anomaly with id 4242"),
    (("anomalies", "resolve", "1", "--action", "dismiss", "--reason", "bored"), "invalid choice"),
]  # fmt: skip


def test_errors_are_one_line_and_exit_2(run: Run, missed: World) -> None:
    """Bad dates, unknown companies or anomalies and bad choices: one line on stderr, exit 2."""
    for args, fragment in ERRORS:
        one_line_error(run(*args), fragment)


def test_resolution_needing_more_says_what(
    run: Run, missed: World, sessions: sessionmaker[Session]
) -> None:
    """set_times without times, and a link to an unknown intervention, are refused plainly."""
    run("reconcile", "--from", "2026-05-04", "--to", "2026-05-04")
    with sessions() as s:
        anomaly_id = str(s.scalars(select(Anomaly.id)).one())
    one_line_error(
        run("anomalies", "resolve", anomaly_id, "--action", "set_times", "--reason", "other"),
        "set_times needs --start and --end",
    )
    one_line_error(
        run(
            "anomalies", "resolve", anomaly_id, "--action", "set_times", "--reason", "other",
            "--start", "2026-05-04 09:00", "--end", "2026-05-04 08:00",
        ),
        "--end is before --start",
    )  # fmt: skip
    one_line_error(
        run(
            "anomalies", "resolve", anomaly_id, "--action", "link_to_intervention",
            "--reason", "other", "--intervention", "P1",
        ),
        "needs an anomaly about a visit or a punch",
    )  # fmt: skip


def test_import_of_punches_reconciles_at_once(run: Run, missed: World, tmp_path: Path) -> None:
    """`import punches` reconciles the carers' days it touched: the visit is matched before any
    `reconcile` is run."""
    (tmp_path / "p.csv").write_text(
        "company_code,carer_ref,client_ref,caller_number,kind,at,source,ref\n"
        "042,I1,C1,,arrival,2026-05-04T09:01,manual,a\n"
        "042,I1,C1,,departure,2026-05-04T09:59,manual,b\n",
        encoding="utf-8",
    )
    code, out, _ = run("import", "punches", str(tmp_path / "p.csv"))
    assert code == 0 and "reconcile: " in out
    code, out, _ = run("export", "realised", "--from", "2026-05-04", "--to", "2026-05-04")
    assert out.splitlines()[1].endswith(",60,realised")
    code, out, _ = run("import", "punches", str(tmp_path / "p.csv"))
    assert "reconcile" not in out
