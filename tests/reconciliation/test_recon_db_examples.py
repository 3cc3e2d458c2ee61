"""End to end through the command line: the examples/ CSV files and a day of hand-written punches,
imported, reconciled and exported; then a coordinator's resolution and the re-export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from telegestion.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Tuesday 24 November 2026, Paris is UTC+1. Worked examples, with the default settings
# (tolerances 15 min, keep the planned time within tolerance, no rounding):
PUNCHES = """company_code,carer_ref,client_ref,caller_number,kind,at,source,ref
042,I-01,C-0001,,arrival,2026-11-24T07:58,landline,r01
042,I-01,C-0001,,departure,2026-11-24T09:04,landline,r02
042,I-01,C-0002,,arrival,2026-11-24T09:52,landline,r03
042,I-01,C-0002,,departure,2026-11-24T10:31,landline,r04
042,I-02,C-0004,,arrival,2026-11-24T08:31,landline,r05
042,I-02,C-0004,,departure,2026-11-24T09:58,landline,r06
042,I-03,C-0001,,arrival,2026-11-24T12:01,landline,r07
042,I-03,C-0001,,departure,2026-11-24T13:00,landline,r08
042,I-03,C-0005,,arrival,2026-11-24T09:00,callback,r09
042,I-03,C-0005,,departure,2026-11-24T11:00,callback,r10
042,I-03,,,arrival,2026-11-24T14:05,landline,r11
042,I-03,,,departure,2026-11-24T15:00,landline,r12
117,J-A,J-101,,arrival,2026-11-24T07:30,landline,r13
117,J-A,J-101,,departure,2026-11-24T08:30,landline,r14
117,J-B,J-103,,arrival,2026-11-24T08:00,landline,r15
117,J-B,J-103,,departure,2026-11-24T09:30,landline,r16
117,J-C,J-103,,arrival,2026-11-24T21:05,landline,r17
117,J-C,J-103,,departure,2026-11-25T07:02,landline,r18
"""
AS_OF = "2026-11-25T11:00:00+00:00"


def cli(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsysbinary.readouterr()
    return code, out.decode("utf-8"), err.decode("utf-8")


@pytest.fixture
def agency(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> pytest.CaptureFixture[bytes]:
    """The examples' directory and planning, the punches above, reconciled as of AS_OF."""
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    assert cli(capsysbinary, "db", "upgrade")[0] == 0
    for kind in ("companies", "numbers", "clients", "carers", "planning"):
        assert cli(capsysbinary, "import", kind, str(EXAMPLES / f"{kind}.csv"))[0] == 0
    (tmp_path / "day.csv").write_text(PUNCHES, encoding="utf-8")
    code, out, _ = cli(capsysbinary, "import", "punches", str(tmp_path / "day.csv"))
    assert code == 0 and "reconcile: " in out
    code, out, err = cli(
        capsysbinary, "reconcile", "--from", "2026-11-23", "--to", "2026-11-25", "--as-of", AS_OF
    )
    assert code == 0, err
    return capsysbinary


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def check_payroll(agency: pytest.CaptureFixture[bytes]) -> None:
    """Payroll pays each realised visit with the company rule applied: 7:58-9:04 for 8:00-9:00
    is 60 min, a 22-min late arrival keeps its punched start (38 min), the night 21:05-07:02
    over midnight is 600 min on the day it started; blocked visits (substitute, withheld
    caller) are not paid yet."""
    code, out, _ = cli(agency, "export", "payroll", "--from", "2026-11-24", "--to", "2026-11-24")
    assert code == 0
    got = [
        (r["company_code"], r["carer_ref"], r["date"], r["intervention_ref"], r["minutes"])
        for r in rows(out)
    ]
    assert got == [
        ("042", "I-01", "2026-11-24", "P-1001", "60"),
        ("042", "I-01", "2026-11-24", "P-1002", "38"),
        ("042", "I-02", "2026-11-24", "P-1004", "90"),
        ("042", "I-03", "2026-11-24", "P-1006", "120"),
        ("117", "J-A", "2026-11-24", "J-5001", "60"),
        ("117", "J-B", "2026-11-24", "J-5003", "90"),
        ("117", "J-C", "2026-11-24", "J-5006", "600"),
    ]
    night = rows(out)[-1]
    assert (night["realised_start"], night["realised_end"]) == (
        "2026-11-24T21:00:00+01:00",
        "2026-11-25T07:00:00+01:00",
    )


def check_anomalies(agency: pytest.CaptureFixture[bytes]) -> None:
    """The open anomalies are exactly the day's problems, with references and local times."""
    code, out, _ = cli(agency, "anomalies", "--status", "open", "--format", "csv")
    assert code == 0
    got = sorted((r["code"], r["carer_ref"], r["intervention_ref"]) for r in rows(out))
    assert got == sorted(
        [
            ("LATE_ARRIVAL", "I-01", "P-1002"),
            ("NO_PUNCH", "I-01", "P-1003"),
            ("SUBSTITUTE_CARER", "I-03", "P-1005"),
            ("CALLER_ID_WITHHELD", "I-03", "P-1007"),
            ("CALLER_ID_WITHHELD", "I-03", "P-1007"),
            ("NO_PUNCH", "J-A", "J-5002"),
            ("NO_PUNCH", "J-B", "J-5004"),
            ("NO_PUNCH", "J-C", "J-5005"),
        ]
    )
    late = next(r for r in rows(out) if r["code"] == "LATE_ARRIVAL")
    assert late["at"] == "2026-11-24T09:52:00+01:00"
    assert json.loads(late["detail"]) == {"minutes_late": 22}


def test_resolution_changes_only_its_row_of_the_export(
    agency: pytest.CaptureFixture[bytes],
) -> None:
    """Dismissing the substitute realises P-1005 for I-03 who came; the re-export differs from
    the first only by that line, and exporting again gives the same bytes."""
    before = cli(agency, "export", "realised", "--from", "2026-11-24", "--to", "2026-11-24")[1]
    assert cli(agency, "export", "realised", "--from", "2026-11-24", "--to", "2026-11-24")[1] == (
        before
    )
    _, listing, _ = cli(agency, "anomalies", "--code", "SUBSTITUTE_CARER", "--format", "json")
    (substitute,) = json.loads(listing)
    code, _, err = cli(
        agency,
        "anomalies",
        "resolve",
        str(substitute["id"]),
        "--action",
        "dismiss",
        "--reason",
        "replacement_carer",
        "--note",
        "I-02 off sick",
    )
    assert code == 0, err
    after = cli(agency, "export", "realised", "--from", "2026-11-24", "--to", "2026-11-24")[1]
    changed = set(after.splitlines()) ^ set(before.splitlines())
    assert sorted(changed) == [
        "042,P-1005,C-0001,I-02,2026-11-24T12:00:00+01:00,2026-11-24T13:00:00+01:00,,,,planned",
        "042,P-1005,C-0001,I-03,2026-11-24T12:00:00+01:00,2026-11-24T13:00:00+01:00,"
        "2026-11-24T12:00:00+01:00,2026-11-24T13:00:00+01:00,60,realised",
    ]


def check_billing(agency: pytest.CaptureFixture[bytes]) -> None:
    """Billing adds realised minutes per client, financer, service and local month."""
    code, out, _ = cli(
        agency,
        "export",
        "billing",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--company",
        "117",
    )
    assert code == 0
    assert [tuple(r.values()) for r in rows(out)] == [
        ("117", "J-101", "APA", "aide au lever", "2026-11", "60", "1"),
        ("117", "J-103", "APA", "aide au ménage", "2026-11", "90", "1"),
        ("117", "J-103", "PCH", "garde de nuit", "2026-11", "600", "1"),
    ]


def test_worked_day(agency: pytest.CaptureFixture[bytes]) -> None:
    """The worked day's payroll, open anomalies and billing, as the helpers above state them."""
    check_payroll(agency)
    check_anomalies(agency)
    check_billing(agency)
