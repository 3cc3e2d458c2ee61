"""Writing checked import records: one transaction per file, all or nothing.

Every row is parsed and checked before the first write, so a file with one bad line changes
nothing and the operator sees every bad line at once. Writes are upserts keyed by the natural
references of SPEC.md section 6, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..model import (
    Carer,
    Client,
    ClientLandline,
    Company,
    PlannedIntervention,
    Punch,
    ServiceNumber,
)
from . import records as r
from .csvfile import Row, read_rows


@dataclasses.dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportRejected(Exception):
    """The file has bad rows; nothing was written."""

    def __init__(self, path: str, errors: list[LineError]) -> None:
        super().__init__(f"{path}: {len(errors)} bad row(s), nothing imported")
        self.path = path
        self.errors = errors


@dataclasses.dataclass
class ImportReport:
    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.rows} row(s): {self.inserted} new, {self.updated} updated,"
            f" {self.unchanged} unchanged"
        )


def load_directory(session: Session) -> r.Directory:
    d = r.Directory()
    code_by_id: dict[int, str] = {}
    for c in session.scalars(select(Company)):
        d.companies[c.code] = r.CompanyRef(c.id, c.code, c.timezone, c.region)
        code_by_id[c.id] = c.code
    client_ref_by_id: dict[int, str] = {}
    for cid, company_id, ref in session.execute(
        select(Client.id, Client.company_id, Client.client_ref)
    ):
        d.clients[(code_by_id[company_id], ref)] = cid
        client_ref_by_id[cid] = ref
    for company_id, client_id, e164 in session.execute(
        select(ClientLandline.company_id, ClientLandline.client_id, ClientLandline.number_e164)
    ):
        d.landlines[(code_by_id[company_id], e164)] = client_ref_by_id[client_id]
    for cid, company_id, ref, code in session.execute(
        select(Carer.id, Carer.company_id, Carer.carer_ref, Carer.carer_code)
    ):
        d.carers[(code_by_id[company_id], ref)] = cid
        d.carer_codes[(code_by_id[company_id], code)] = ref
    for e164, kind in session.execute(select(ServiceNumber.number_e164, ServiceNumber.kind)):
        d.numbers[e164] = kind
    return d


def _assign(obj: Any, fields: dict[str, Any]) -> bool:
    changed = False
    for name, value in fields.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _upsert(
    session: Session, report: ImportReport, existing: Any, model: type, fields: dict[str, Any]
) -> Any:
    if existing is None:
        obj = model(**fields)
        session.add(obj)
        report.inserted += 1
        return obj
    if _assign(existing, fields):
        report.updated += 1
    else:
        report.unchanged += 1
    return existing


def _company_ids(session: Session) -> dict[str, int]:
    return {code: cid for code, cid in session.execute(select(Company.code, Company.id))}


def write_companies(session: Session, recs: list[r.CompanyRecord], report: ImportReport) -> None:
    existing = {c.code: c for c in session.scalars(select(Company))}
    for rec in recs:
        fields = {
            "code": rec.code,
            "name": rec.name,
            "timezone": rec.timezone,
            "region": rec.region,
            "language": rec.language,
            **rec.settings,
        }
        _upsert(session, report, existing.get(rec.code), Company, fields)


def write_numbers(session: Session, recs: list[r.NumberRecord], report: ImportReport) -> None:
    ids = _company_ids(session)
    existing = {n.number_e164: n for n in session.scalars(select(ServiceNumber))}
    for rec in recs:
        fields = {
            "number_e164": rec.number_e164,
            "number_raw": rec.number_raw,
            "kind": rec.kind,
            "company_id": ids[rec.company_code] if rec.company_code else None,
        }
        _upsert(session, report, existing.get(rec.number_e164), ServiceNumber, fields)


def write_clients(session: Session, recs: list[r.ClientRecord], report: ImportReport) -> None:
    ids = _company_ids(session)
    existing = {(c.company_id, c.client_ref): c for c in session.scalars(select(Client))}
    wanted = {(ids[rec.company_code], rec.client_ref): rec for rec in recs}
    # Numbers leave their old owners first, so that moving a landline between two clients of
    # the same file never trips the one-landline-per-company constraint half-way.
    lost_a_number: set[tuple[int, str]] = set()
    for key, rec in wanted.items():
        client = existing.get(key)
        if client is None:
            continue
        keep = {e164 for e164, _ in rec.landlines}
        for line in list(client.landlines):
            if line.number_e164 not in keep:
                client.landlines.remove(line)
                lost_a_number.add(key)
    session.flush()
    for key, rec in wanted.items():
        company_id = key[0]
        client = existing.get(key)
        if client is None:
            client = Client(company_id=company_id, client_ref=rec.client_ref, name=rec.name)
            client.landlines = [
                ClientLandline(company_id=company_id, number_e164=e164, number_raw=raw)
                for e164, raw in rec.landlines
            ]
            session.add(client)
            report.inserted += 1
            continue
        changed = _assign(client, {"name": rec.name}) or key in lost_a_number
        have = {ll.number_e164: ll for ll in client.landlines}
        for e164, raw in rec.landlines:
            if e164 in have:
                changed = _assign(have[e164], {"number_raw": raw}) or changed
            else:
                client.landlines.append(
                    ClientLandline(company_id=company_id, number_e164=e164, number_raw=raw)
                )
                changed = True
        if changed:
            report.updated += 1
        else:
            report.unchanged += 1


def _parking_code(carer_id: int) -> str:
    """A 5-character code no carer can key (it starts with ``#``), unique per carer id.

    Ids that differ by a multiple of 36**4 (1,679,616) would share one; no agency is that big.
    """
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
    n, out = carer_id, ""
    for _ in range(4):
        n, digit = divmod(n, 36)
        out = alphabet[digit] + out
    return "#" + out


def write_carers(session: Session, recs: list[r.CarerRecord], report: ImportReport) -> None:
    ids = _company_ids(session)
    existing = {(c.company_id, c.carer_ref): c for c in session.scalars(select(Carer))}
    # Carers whose code changes park on a code nobody can key first, so two carers can swap
    # codes in one file without tripping the unique constraint half-way.
    for rec in recs:
        carer = existing.get((ids[rec.company_code], rec.carer_ref))
        if carer is not None and carer.carer_code != rec.carer_code:
            carer.carer_code = _parking_code(carer.id)
    session.flush()
    for rec in recs:
        company_id = ids[rec.company_code]
        _upsert(
            session,
            report,
            existing.get((company_id, rec.carer_ref)),
            Carer,
            {
                "company_id": company_id,
                "carer_ref": rec.carer_ref,
                "carer_code": rec.carer_code,
                "name": rec.name,
                "mobile_e164": rec.mobile_e164,
                "mobile_raw": rec.mobile_raw,
                "active": rec.active,
            },
        )


def write_planning(
    session: Session, recs: list[r.PlanningRecord], report: ImportReport, d: r.Directory
) -> None:
    ids = _company_ids(session)
    existing = {
        (p.company_id, p.intervention_ref): p for p in session.scalars(select(PlannedIntervention))
    }
    for rec in recs:
        company_id = ids[rec.company_code]
        _upsert(
            session,
            report,
            existing.get((company_id, rec.intervention_ref)),
            PlannedIntervention,
            {
                "company_id": company_id,
                "intervention_ref": rec.intervention_ref,
                "client_id": d.clients[(rec.company_code, rec.client_ref)],
                "carer_id": d.carers[(rec.company_code, rec.carer_ref)],
                "planned_start": rec.start,
                "planned_end": rec.end,
                "service": rec.service,
                "financer": rec.financer,
            },
        )


def punch_origin(company_code: str) -> str:
    """Imported punches are keyed by their file ``ref`` within the company."""
    return f"import:{company_code}"


def write_punches(
    session: Session, recs: list[r.PunchRecord], report: ImportReport, d: r.Directory
) -> None:
    ids = _company_ids(session)
    origins = {punch_origin(code) for code in {rec.company_code for rec in recs}}
    existing = {
        (p.origin, p.call_key): p
        for p in session.scalars(select(Punch).where(Punch.origin.in_(origins)))
    }
    for rec in recs:
        origin = punch_origin(rec.company_code)
        _upsert(
            session,
            report,
            existing.get((origin, rec.ref)),
            Punch,
            {
                "origin": origin,
                "call_key": rec.ref,
                "company_id": ids[rec.company_code],
                "carer_id": d.carers[(rec.company_code, rec.carer_ref)],
                "client_id": d.clients[(rec.company_code, rec.client_ref)]
                if rec.client_ref
                else None,
                "kind": rec.kind,
                "at": rec.at,
                "source": rec.source,
                "caller_raw": rec.caller_raw,
                "caller_e164": rec.caller_e164,
                "caller_withheld": rec.caller_withheld,
                "location_verified": rec.source != "callback",
            },
        )


@dataclasses.dataclass(frozen=True)
class Kind:
    columns: tuple[str, ...]
    optional: tuple[str, ...]
    parse: Callable[[dict[str, str], r.Directory], Any]
    check: Callable[[list[tuple[Row, Any]], r.Directory], dict[int, str]]
    write: Callable[..., None]
    needs_directory: bool = False


def _unique(
    key: Callable[[Any], tuple[str, ...]], what: str
) -> Callable[[list[tuple[Row, Any]], r.Directory], dict[int, str]]:
    return lambda rows, _d: r.check_unique(rows, key, what)


KINDS: dict[str, Kind] = {
    "companies": Kind(
        r.COMPANY_COLUMNS,
        r.COMPANY_OPTIONAL,
        r.parse_company,
        _unique(lambda x: (x.code,), "code"),
        write_companies,
    ),
    "numbers": Kind(
        r.NUMBER_COLUMNS,
        (),
        r.parse_number,
        _unique(lambda x: (x.number_e164,), "number"),
        write_numbers,
    ),
    "clients": Kind(r.CLIENT_COLUMNS, (), r.parse_client, r.check_clients, write_clients),
    "carers": Kind(r.CARER_COLUMNS, (), r.parse_carer, r.check_carers, write_carers),
    "planning": Kind(
        r.PLANNING_COLUMNS,
        (),
        r.parse_planning,
        _unique(lambda x: (x.company_code, x.intervention_ref), "intervention_ref"),
        write_planning,
        needs_directory=True,
    ),
    "punches": Kind(
        r.PUNCH_COLUMNS,
        (),
        r.parse_punch,
        _unique(lambda x: (x.company_code, x.ref), "ref"),
        write_punches,
        needs_directory=True,
    ),
}


def import_file(factory: sessionmaker[Session], kind: str, path: str | Path) -> ImportReport:
    """Import one CSV file of ``kind``; raises ImportRejected (nothing written) on bad rows."""
    spec = KINDS[kind]
    rows = read_rows(path, spec.columns, spec.optional)
    with factory() as session, session.begin():
        directory = load_directory(session)
        parsed: list[tuple[Row, Any]] = []
        errors: dict[int, str] = {}
        for row in rows:
            if "__error__" in row.values:
                errors[row.line] = row.values["__error__"]
                continue
            try:
                parsed.append((row, spec.parse(row.values, directory)))
            except r.RowError as exc:
                errors[row.line] = str(exc)
        errors.update(spec.check(parsed, directory))
        if errors:
            raise ImportRejected(str(path), [LineError(n, errors[n]) for n in sorted(errors)])
        report = ImportReport(kind, rows=len(parsed))
        recs = [rec for _, rec in parsed]
        if spec.needs_directory:
            spec.write(session, recs, report, directory)
        else:
            spec.write(session, recs, report)
        return report
