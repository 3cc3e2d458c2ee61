"""``telegestion trace`` as support runs it, on calls placed through the real call program."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support_world import DUBOIS, SHARED, Place

from telegestion.cli import main

pytestmark = pytest.mark.db

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """``run(*args)`` -> (exit status, stdout, stderr) of ``telegestion ARGS`` on the test DB."""
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_trace_prints_diagnosis_punches_and_journal(run: Run, place: Place) -> None:
    """The calls around --at, each with its header, diagnosis, punches and whole journal."""
    assert place(7, 58, DUBOIS, "042 54321 12345") == "punch_recorded"
    code, out, err = run("trace", "--caller", "01 45 67 89 12", "--at", "2026-11-24 08:00")
    assert (code, err) == (0, "")
    assert out.startswith(
        "1 call(s) from 01 45 67 89 12 within 30 min of 2026-11-24 08:00 (Europe/Paris, of the "
        "company these numbers belong to):"
    )
    assert "  keyed     company code 042, carer code 12345 (I-01 Fatou Diallo)" in out
    assert "  outcome   punch_recorded" in out
    assert "  - Punch recorded: arrival at 07:58 (Europe/Paris) for Fatou Diallo (I-01)" in out
    assert "  punch 1: arrival at 07:58, recorded, source landline, client C-0001" in out
    journal = out.split("Journal:\n", 1)[1].splitlines()
    assert journal[0].split()[:4] == ["1", "07:58:00.000", "lookup", "what=called_number"]
    assert any("reason=unknown_or_inactive_carer_code value=54321 attempt=1" in j for j in journal)
    assert any(j.split()[2:4] == ["prompt", "prompt=goodbye"] for j in journal)


def test_ticket(run: Run, place: Place) -> None:
    """--ticket prints the 'Anomalie télégestion' ticket of each call found."""
    assert place(8, 0, DUBOIS, "042 23465 23465 23465") == "carer_code_failed"
    code, out, _ = run(
        "trace", "--caller", "+33145678912", "--called", SHARED, "--at", "2026-11-24 08:05",
        "--ticket",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Anomalie télégestion"
    assert "Day:             Tuesday 2026-11-24" in lines
    assert "Time:            08:00:00 (Europe/Paris, UTC+01:00)" in lines
    assert "Caller number:   01 45 67 89 12  [01 45 67 89 12]" in lines
    assert "Carer code:      23465" in lines
    assert (
        "  - Carer code 23465 is not a carer of company 042 (3 attempts): no carer of any "
        "company has this code (a typo, or a carer not yet imported)." in lines
    )
    assert lines[-1].startswith("Call reference:  node1/")


def test_timezone_option_and_window(run: Run, place: Place) -> None:
    """--timezone places --at in that zone; --window narrows the search."""
    place(7, 58, DUBOIS, "042 12345")
    found = run(
        "trace", "--caller", DUBOIS, "--at", "2026-11-24 06:55", "--timezone", "UTC",
        "--window", "5",
    )  # fmt: skip
    assert found[0] == 0 and "(UTC, given)" in found[1]
    missed = run("trace", "--caller", DUBOIS, "--at", "2026-11-24 08:10", "--window", "5")
    assert missed[0] == 1


def test_no_call_found_exits_1_with_the_nearest(run: Run, place: Place) -> None:
    """Nothing in the window: a clear message, the nearest calls of that number, status 1."""
    place(7, 58, DUBOIS, "042 12345")
    code, out, err = run("trace", "--caller", DUBOIS, "--at", "2026-11-24 14:00")
    assert (code, err) == (1, "")
    assert out.splitlines()[0] == (
        "No call from 01 45 67 89 12 between 2026-11-24 13:30 and 2026-11-24 14:30 "
        "(Europe/Paris, of the company these numbers belong to)."
    )
    assert (
        "  nearest call from that number: 2026-11-24 07:58:00 (Europe/Paris), outcome "
        "punch_recorded, call 1" in out
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--at", "2026-11-24"], "has no time of day"),
        (["--at", "24/11/2026 08:00"], "is not a time"),
        (["--at", "2026-03-29 02:30"], "does not exist in Europe/Paris"),
        (["--at", "2026-11-24 08:00", "--window", "0"], "--window must be between"),
        (["--at", "2026-11-24 08:00", "--timezone", "Mars/Olympus"], "unknown time zone"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    run: Run, examples: object, args: list[str], fragment: str
) -> None:
    """Bad times, windows or zones: one line on stderr, exit status 2."""
    code, out, err = run("trace", "--caller", DUBOIS, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err
