"""The realised, payroll and billing exports: columns, local times, determinism."""

from __future__ import annotations

import json

import pytest
from recon_factory import at, plan, punch, run

from reconciliation.exports import InterventionRow, intervention_rows, render
from reconciliation.model import ResolutionIn


def row(ref: str, start: str, end: str, minutes: int | None, **extra: object) -> InterventionRow:
    fields: dict[str, object] = {
        "company_code": "042",
        "intervention_ref": ref,
        "client_ref": "C1",
        "carer_ref": "K1",
        "planned_start": at(start),
        "planned_end": at(end),
        "status": "realised" if minutes is not None else "planned",
        "realised_start": at(start) if minutes is not None else None,
        "realised_end": at(end) if minutes is not None else None,
        "realised_minutes": minutes,
        "service": "aide",
        "financer": "APA",
        "timezone": "Europe/Paris",
    }
    fields.update(extra)
    return InterventionRow(**fields)  # type: ignore[arg-type]


ROWS = [
    row("I2", "2026-10-25 09:00", "2026-10-25 10:00", 60),
    row("I1", "2026-03-29 09:00", "2026-03-29 10:30", 90),
    row("I3", "2026-10-25 14:00", "2026-10-25 15:00", None),
]


def test_realised_csv_has_the_spec_columns_and_local_offsets() -> None:
    """The realised CSV has the SPEC columns, local times with their offsets, empty fields."""
    # Header as in SPEC.md section 6; March 29 is +02:00 (summer), October 25 afternoon +01:00;
    # realised fields are empty for a row that is not realised.
    lines = render("realised", ROWS, "csv").decode("utf-8").split("\r\n")
    assert lines[0] == (
        "company_code,intervention_ref,client_ref,carer_ref,planned_start,planned_end,"
        "realised_start,realised_end,realised_minutes,status"
    )
    assert lines[1] == (
        "042,I1,C1,K1,2026-03-29T09:00:00+02:00,2026-03-29T10:30:00+02:00,"
        "2026-03-29T09:00:00+02:00,2026-03-29T10:30:00+02:00,90,realised"
    )
    assert lines[3] == "042,I3,C1,K1,2026-10-25T14:00:00+01:00,2026-10-25T15:00:00+01:00,,,,planned"
    assert lines[4] == ""


def test_payroll_lists_realised_interventions_per_carer_and_local_day() -> None:
    """Payroll has one line per realised intervention with its local date, minutes as integers."""
    data = json.loads(render("payroll", ROWS, "json"))
    assert [d["intervention_ref"] for d in data] == ["I1", "I2"]
    assert list(data[0]) == [
        "company_code",
        "carer_ref",
        "date",
        "intervention_ref",
        "client_ref",
        "service",
        "realised_start",
        "realised_end",
        "minutes",
    ]
    assert (data[0]["date"], data[0]["minutes"]) == ("2026-03-29", 90)


def test_billing_sums_minutes_per_client_financer_service_and_month() -> None:
    """Two October interventions of 60 min (one APA, one PCH) and March 90 min: three lines."""
    rows = [*ROWS, row("I4", "2026-10-26 09:00", "2026-10-26 10:00", 60, financer="PCH")]
    rows.append(row("I5", "2026-10-27 09:00", "2026-10-27 09:45", 45))
    lines = render("billing", rows, "csv").decode("utf-8").split("\r\n")
    assert lines[0] == "company_code,client_ref,financer,service,month,minutes,interventions"
    # October APA: I2 (60) + I5 (45) = 105 minutes over 2 interventions.
    assert lines[1:4] == [
        "042,C1,APA,aide,2026-03,90,1",
        "042,C1,APA,aide,2026-10,105,2",
        "042,C1,PCH,aide,2026-10,60,1",
    ]


def test_exports_are_byte_identical_whatever_the_row_order() -> None:
    """Same rows in another order give the same bytes, in both formats."""
    for kind in ("realised", "payroll", "billing"):
        for fmt in ("csv", "json"):
            assert render(kind, ROWS, fmt) == render(kind, list(reversed(ROWS)), fmt)  # type: ignore[arg-type]


def test_json_uses_null_for_empty_fields() -> None:
    """A planned (not realised) intervention has null realised fields in JSON."""
    data = json.loads(render("realised", ROWS, "json"))
    assert data[2]["realised_start"] is None
    assert data[2]["status"] == "planned"


def test_a_correction_changes_only_its_own_line() -> None:
    """Changing one intervention's minutes changes exactly one CSV line."""
    before = render("realised", ROWS, "csv").split(b"\r\n")
    fixed = [ROWS[0], row("I1", "2026-03-29 09:00", "2026-03-29 10:15", 75), ROWS[2]]
    after = render("realised", fixed, "csv").split(b"\r\n")
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1


def test_rows_come_from_a_reconciliation_result() -> None:
    """intervention_rows pays the substitute: carer 8 did carer 7's visit, resolved."""
    result = run(
        [
            punch(1, 8, 100, "arrival", "2026-05-04 09:00"),
            punch(2, 8, 100, "departure", "2026-05-04 10:00"),
        ],
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
        [ResolutionIn("SUBSTITUTE_CARER:i50:v1", "dismiss", {}, 1)],
    )
    rows = intervention_rows(
        result,
        [plan(50, 7, 100, "2026-05-04 09:00", "2026-05-04 10:00")],
        company_codes={1: "042"},
        timezones={1: "Europe/Paris"},
        intervention_refs={50: "I50"},
        client_refs={100: "C100"},
        carer_refs={7: "K7", 8: "K8"},
    )
    assert [(r.carer_ref, r.status, r.realised_minutes) for r in rows] == [("K8", "realised", 60)]


def test_unknown_export_kind_is_refused() -> None:
    """An export name outside realised/payroll/billing is a clear error."""
    with pytest.raises(ValueError, match="realised, payroll or billing"):
        render("salaries", ROWS)  # type: ignore[arg-type]
