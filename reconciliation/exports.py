"""The three exports of SPEC.md section 6 (``realised``, ``payroll``, ``billing``) as CSV and JSON.

Rendering is a pure function of the rows: rows are sorted on a total order, times are written
in the company's local time with their offset, to the second, and nothing depends on the
machine's locale, time zone or dict order. The same data gives the same bytes, and a correction
changes only the lines it is about, so a re-export can be diffed.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from reconciliation.model import PlannedIn, RealisedStatus, Result
from reconciliation.scope import zone

ExportKind = Literal["realised", "payroll", "billing"]
ExportFormat = Literal["csv", "json"]
Cell = str | int | None

REALISED_COLUMNS = (
    "company_code",
    "intervention_ref",
    "client_ref",
    "carer_ref",
    "planned_start",
    "planned_end",
    "realised_start",
    "realised_end",
    "realised_minutes",
    "status",
)
PAYROLL_COLUMNS = (
    "company_code",
    "carer_ref",
    "date",
    "intervention_ref",
    "client_ref",
    "service",
    "realised_start",
    "realised_end",
    "minutes",
)
BILLING_COLUMNS = (
    "company_code",
    "client_ref",
    "financer",
    "service",
    "month",
    "minutes",
    "interventions",
)


@dataclass(frozen=True, slots=True)
class InterventionRow:
    """One planned intervention with what reconciliation concluded, in the references people use.

    ``carer_ref`` is the carer who did the intervention when it is realised (a substitute is paid,
    not the planned carer), otherwise the planned carer. ``timezone`` is the company's.
    """

    company_code: str
    intervention_ref: str
    client_ref: str
    carer_ref: str
    planned_start: datetime
    planned_end: datetime
    status: RealisedStatus
    realised_start: datetime | None
    realised_end: datetime | None
    realised_minutes: int | None
    service: str
    financer: str
    timezone: str


def intervention_rows(
    result: Result,
    planned: Iterable[PlannedIn],
    *,
    company_codes: Mapping[int, str],
    timezones: Mapping[int, str],
    intervention_refs: Mapping[int, str],
    client_refs: Mapping[int, str],
    carer_refs: Mapping[int, str],
) -> list[InterventionRow]:
    """Rows for the planned interventions given, from a reconciliation result and id→ref maps."""
    rows = []
    for item in planned:
        realised = result.realised[item.id]
        carer = (
            realised.done_by_carer_id if realised.done_by_carer_id is not None else item.carer_id
        )
        rows.append(
            InterventionRow(
                company_code=company_codes[item.company_id],
                intervention_ref=intervention_refs[item.id],
                client_ref=client_refs[item.client_id],
                carer_ref=carer_refs[carer],
                planned_start=item.start,
                planned_end=item.end,
                status=realised.status,
                realised_start=realised.realised_start,
                realised_end=realised.realised_end,
                realised_minutes=realised.realised_minutes,
                service=item.service,
                financer=item.financer,
                timezone=timezones[item.company_id],
            )
        )
    return rows


def local_iso(at: datetime | None, timezone: str) -> str | None:
    """ISO 8601 local time with its offset, to the second: ``2026-03-29T09:00:00+02:00``."""
    if at is None:
        return None
    return at.astimezone(zone(timezone)).isoformat(timespec="seconds")


def _local_date(at: datetime, timezone: str) -> str:
    return at.astimezone(zone(timezone)).date().isoformat()


def realised_records(rows: Iterable[InterventionRow]) -> list[tuple[Cell, ...]]:
    """One record per planned intervention; realised fields are empty unless realised."""
    ordered = sorted(rows, key=lambda r: (r.company_code, r.planned_start, r.intervention_ref))
    records = []
    for row in ordered:
        done = row.status == "realised"
        records.append(
            (
                row.company_code,
                row.intervention_ref,
                row.client_ref,
                row.carer_ref,
                local_iso(row.planned_start, row.timezone),
                local_iso(row.planned_end, row.timezone),
                local_iso(row.realised_start, row.timezone) if done else None,
                local_iso(row.realised_end, row.timezone) if done else None,
                row.realised_minutes if done else None,
                row.status,
            )
        )
    return records


def _done(rows: Iterable[InterventionRow]) -> list[InterventionRow]:
    return [
        r
        for r in rows
        if r.status == "realised"
        and r.realised_start is not None
        and r.realised_end is not None
        and r.realised_minutes is not None
    ]


def payroll_records(rows: Iterable[InterventionRow]) -> list[tuple[Cell, ...]]:
    """Realised interventions per carer and local day (the day the realised time starts)."""
    done = _done(rows)
    done.sort(key=lambda r: (r.company_code, r.carer_ref, r.realised_start, r.intervention_ref))
    records: list[tuple[Cell, ...]] = []
    for row in done:
        assert row.realised_start is not None
        records.append(
            (
                row.company_code,
                row.carer_ref,
                _local_date(row.realised_start, row.timezone),
                row.intervention_ref,
                row.client_ref,
                row.service,
                local_iso(row.realised_start, row.timezone),
                local_iso(row.realised_end, row.timezone),
                row.realised_minutes,
            )
        )
    return records


def billing_records(rows: Iterable[InterventionRow]) -> list[tuple[Cell, ...]]:
    """Realised minutes and intervention counts per client, financer, service and local month."""
    totals: dict[tuple[str, str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in _done(rows):
        assert row.realised_start is not None and row.realised_minutes is not None
        month = _local_date(row.realised_start, row.timezone)[:7]
        total = totals[(row.company_code, row.client_ref, row.financer, row.service, month)]
        total[0] += row.realised_minutes
        total[1] += 1
    return [(*key, minutes, count) for key, (minutes, count) in sorted(totals.items())]


def to_csv(columns: Sequence[str], records: Iterable[Sequence[Cell]]) -> bytes:
    """UTF-8, header row, CRLF line ends (RFC 4180), empty cell for a missing value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow("" if cell is None else cell for cell in record)
    return buffer.getvalue().encode("utf-8")


def to_json(columns: Sequence[str], records: Iterable[Sequence[Cell]]) -> bytes:
    """A UTF-8 JSON array of objects, keys in column order, null for a missing value."""
    objects = [dict(zip(columns, record, strict=True)) for record in records]
    return (json.dumps(objects, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def render(kind: ExportKind, rows: Iterable[InterventionRow], fmt: ExportFormat = "csv") -> bytes:
    """The bytes of one export, as ``telegestion export KIND --format FMT`` writes them."""
    if kind == "realised":
        columns, records = REALISED_COLUMNS, realised_records(rows)
    elif kind == "payroll":
        columns, records = PAYROLL_COLUMNS, payroll_records(rows)
    elif kind == "billing":
        columns, records = BILLING_COLUMNS, billing_records(rows)
    else:
        raise ValueError(f"unknown export {kind!r}: choose realised, payroll or billing")
    if fmt == "csv":
        return to_csv(columns, records)
    if fmt == "json":
        return to_json(columns, records)
    raise ValueError(f"unknown export format {fmt!r}: choose csv or json")
