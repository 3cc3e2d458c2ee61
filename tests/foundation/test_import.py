"""CSV import: upserts by reference, every bad line reported, nothing written on error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from telegestion.importing import ImportFileError, ImportRejected, import_file
from telegestion.model import (
    Carer,
    Client,
    ClientLandline,
    Company,
    PlannedIntervention,
    Punch,
    ServiceNumber,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ORDER = ("companies", "numbers", "clients", "carers", "planning", "punches")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def load_examples(sessions: sessionmaker[Session]) -> None:
    for kind in ORDER:
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")


def rejected_lines(sessions: sessionmaker[Session], kind: str, path: Path) -> dict[int, str]:
    with pytest.raises(ImportRejected) as info:
        import_file(sessions, kind, path)
    return {e.line: e.message for e in info.value.errors}


def test_examples_load_and_reload_changes_nothing(sessions: sessionmaker[Session]) -> None:
    """The example data set imports, and importing it again reports everything unchanged."""
    load_examples(sessions)
    assert (count(sessions, Company), count(sessions, Client), count(sessions, Carer)) == (2, 10, 7)
    assert count(sessions, PlannedIntervention) == 13
    assert count(sessions, Punch) == 4
    for kind in ORDER:
        report = import_file(sessions, kind, EXAMPLES / f"{kind}.csv")
        assert report.inserted == 0 and report.updated == 0
        assert report.unchanged == report.rows > 0


def test_planning_is_stored_in_utc_from_company_local_time(sessions: sessionmaker[Session]) -> None:
    """08:00 in Paris on 24 November is 07:00 UTC."""
    load_examples(sessions)
    with sessions() as s:
        p = s.scalars(
            select(PlannedIntervention).where(PlannedIntervention.intervention_ref == "P-1001")
        ).one()
        assert p.planned_start == dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
        assert p.status == "planned"
        night = s.scalars(
            select(PlannedIntervention).where(PlannedIntervention.intervention_ref == "J-5006")
        ).one()
        assert night.planned_end - night.planned_start == dt.timedelta(hours=10)


def test_landlines_in_every_written_form_are_e164(sessions: sessionmaker[Session]) -> None:
    """Landlines written with dots, spaces, +33 or 0033 are stored in E.164, raw text kept."""
    load_examples(sessions)
    with sessions() as s:
        rows = dict(s.execute(select(ClientLandline.number_raw, ClientLandline.number_e164)).all())
    assert rows["01.43.21.65.87"] == "+33143216587"
    assert rows["0033 1 39 50 12 34"] == "+33139501234"
    assert rows["+33 1 48 75 12 34"] == "+33148751234"
    assert len(rows) == 9


def test_upsert_updates_by_reference(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """A changed name or a moved landline updates the existing client, no duplicate."""
    load_examples(sessions)
    path = write(
        tmp_path,
        "c.csv",
        "company_code,client_ref,name,landlines\n"
        "042,C-0001,Mme Jeanne Dubois-Martin,\n"
        "042,C-0005,Mme Odette Moreau,01 45 67 89 12\n",
    )
    report = import_file(sessions, "clients", path)
    assert (report.inserted, report.updated, report.unchanged) == (0, 2, 0)
    with sessions() as s:
        c1 = s.scalars(select(Client).where(Client.client_ref == "C-0001")).one()
        c5 = s.scalars(select(Client).where(Client.client_ref == "C-0005")).one()
        assert c1.name == "Mme Jeanne Dubois-Martin" and c1.landlines == []
        assert [ll.number_e164 for ll in c5.landlines] == ["+33145678912"]
    assert count(sessions, Client) == 10


def test_carers_can_swap_codes_in_one_file(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Two carers exchanging their codes in one file is accepted."""
    load_examples(sessions)
    path = write(
        tmp_path,
        "k.csv",
        "company_code,carer_ref,carer_code,name,mobile,active\n"
        "042,I-01,23456,Fatou Diallo,06 12 34 56 78,true\n"
        "042,I-02,12345,Marie Lambert,06 23 45 67 89,oui\n",
    )
    report = import_file(sessions, "carers", path)
    assert report.updated == 2
    with sessions() as s:
        codes = dict(s.execute(select(Carer.carer_ref, Carer.carer_code)).all())
    assert codes["I-01"] == "23456" and codes["I-02"] == "12345"


BAD_ROWS = [
    (
        "companies",
        "code,name,timezone,region,language\n42,Short code,Europe/Paris,FR,fr\n",
        "exactly 3 digits",
    ),
    (
        "companies",
        "code,name,timezone,region,language\n099,Bad zone,Europe/Lyon,FR,fr\n",
        "unknown time zone",
    ),
    (
        "companies",
        "code,name,timezone,region,language\n099,Bad region,Europe/Paris,XX,fr\n",
        "unknown phone region",
    ),
    (
        "companies",
        "code,name,timezone,region,language\n099,Bad lang,Europe/Paris,FR,de\n",
        "language",
    ),
    ("numbers", "number,kind,company_code\n0800 999 999,dedicated,999\n", "unknown company 999"),
    ("numbers", "number,kind,company_code\n0800 999 999,shared,042\n", "belongs to no company"),
    ("numbers", "number,kind,company_code\n0800 99,callback,\n", "not a valid phone number"),
    ("clients", "company_code,client_ref,name,landlines\n042,C-9,X,01 45 67\n", "landline"),
    (
        "clients",
        "company_code,client_ref,name,landlines\n042,C-9,X,01 45 67 89 12\n",
        "already belongs to client C-0001",
    ),
    (
        "carers",
        "company_code,carer_ref,carer_code,name,mobile,active\n042,I-9,1234,X,,true\n",
        "exactly 5 digits",
    ),
    (
        "carers",
        "company_code,carer_ref,carer_code,name,mobile,active\n042,I-9,12345,X,,true\n",
        "already belongs to carer I-01",
    ),
    (
        "carers",
        "company_code,carer_ref,carer_code,name,mobile,active\n042,I-9,99999,X,06 12,true\n",
        "mobile",
    ),
    (
        "carers",
        "company_code,carer_ref,carer_code,name,mobile,active\n042,I-9,99999,X,,maybe\n",
        "true or false",
    ),
    (
        "planning",
        "company_code,intervention_ref,client_ref,carer_ref,start,end,service,financer\n"
        "042,P-9,C-0001,I-01,2026-11-24T10:00,2026-11-24T09:00,s,APA\n",
        "not after start",
    ),
    (
        "planning",
        "company_code,intervention_ref,client_ref,carer_ref,start,end,service,financer\n"
        "042,P-9,C-0001,I-01,2026-03-29T02:15,2026-03-29T04:00,s,APA\n",
        "does not exist",
    ),
    (
        "planning",
        "company_code,intervention_ref,client_ref,carer_ref,start,end,service,financer\n"
        "042,P-9,C-0001,I-01,2026-10-25T02:15,2026-10-25T04:00,s,APA\n",
        "happens twice",
    ),
    (
        "planning",
        "company_code,intervention_ref,client_ref,carer_ref,start,end,service,financer\n"
        "042,P-9,C-9999,I-01,2026-11-24T08:00,2026-11-24T09:00,s,APA\n",
        "unknown client C-9999",
    ),
    (
        "punches",
        "company_code,carer_ref,client_ref,caller_number,kind,at,source,ref\n"
        "042,I-01,C-0001,,lunch,2026-11-24T08:00,manual,r1\n",
        "arrival or departure",
    ),
    (
        "punches",
        "company_code,carer_ref,client_ref,caller_number,kind,at,source,ref\n"
        "042,I-01,C-0001,,arrival,2026-11-24T08:00,fax,r1\n",
        "source",
    ),
    (
        "punches",
        "company_code,carer_ref,client_ref,caller_number,kind,at,source,ref\n"
        "042,I-01,C-0002,01 45 67 89 12,arrival,2026-11-24T08:00,manual,r1\n",
        "landline of client C-0001",
    ),
]


@pytest.mark.parametrize(("kind", "text", "reason"), BAD_ROWS)
def test_a_bad_row_is_reported_and_nothing_is_written(
    sessions: sessionmaker[Session], tmp_path: Path, kind: str, text: str, reason: str
) -> None:
    """A bad row is reported with its line number and reason, and the file writes nothing."""
    load_examples(sessions)
    before = {
        m: count(sessions, m)
        for m in (Company, ServiceNumber, Client, ClientLandline, Carer, PlannedIntervention, Punch)
    }
    good_first = text.splitlines()[0] + "\n"
    lines = rejected_lines(sessions, kind, write(tmp_path, "bad.csv", text))
    assert list(lines) == [2]
    assert reason in lines[2]
    after = {m: count(sessions, m) for m in before}
    assert after == before
    assert good_first  # the header alone is a valid file
    assert import_file(sessions, kind, write(tmp_path, "empty.csv", good_first)).rows == 0


def test_every_bad_line_is_reported_and_good_rows_are_not_written(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """A file with good and bad rows lists every bad line and writes none of the good ones."""
    load_examples(sessions)
    path = write(
        tmp_path,
        "k.csv",
        "company_code,carer_ref,carer_code,name,mobile,active\n"
        "042,I-10,11111,Good One,,true\n"
        "777,I-11,22222,Unknown Company,,true\n"
        "042,I-12,33333,Good Two,,true\n"
        "042,I-13,abcde,Bad Code,,true\n"
        "042,I-14,11111,Same Code As Line 2,,true\n",
    )
    lines = rejected_lines(sessions, "carers", path)
    assert sorted(lines) == [3, 5, 6]
    assert "unknown company 777" in lines[3]
    assert "line 2" in lines[6]
    assert count(sessions, Carer) == 7


def test_semicolon_separated_file_with_bom(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """A spreadsheet export (BOM, `;` separator) imports like a plain CSV."""
    path = tmp_path / "companies.csv"
    path.write_bytes(
        "\ufeffcode;name;timezone;region;language\n201;Aide Réunion;Indian/Reunion;RE;fr\n".encode()
    )
    assert import_file(sessions, "companies", path).inserted == 1
    clients = write(
        tmp_path,
        "cl.csv",
        "company_code;client_ref;name;landlines\n"
        '201;R-1;Mme Hoarau;"0262 16 12 34;0692 12 34 56"\n',
    )
    assert import_file(sessions, "clients", clients).inserted == 1
    with sessions() as s:
        numbers = sorted(s.scalars(select(ClientLandline.number_e164)))
    assert numbers == ["+262262161234", "+262692123456"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"code,name\n001,x\n", "missing column"),
        (b"code,name,timezone,region,language,colour\n", "unknown column"),
        (
            b"code,name,timezone,region,language\n001,Soci\xe9t\xe9,Europe/Paris,FR,fr\n",
            "not UTF-8",
        ),
    ],
)
def test_unreadable_files(
    sessions: sessionmaker[Session], tmp_path: Path, content: bytes, message: str
) -> None:
    """A file that is not a readable CSV of the right kind is refused as a whole."""
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_file(sessions, "companies", path)


def test_punches_reimport_is_idempotent_and_resolves_clients(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Punches are keyed by ref per company; a caller number names the client; none is withheld."""
    load_examples(sessions)
    path = write(
        tmp_path,
        "p.csv",
        "company_code,carer_ref,client_ref,caller_number,kind,at,source,ref\n"
        "042,I-01,,01 45 67 89 12,arrival,2026-11-24T08:02,import,x-1\n"
        "042,I-01,,,departure,2026-11-24T09:01,manual,x-2\n"
        "042,I-01,,01 99 99 99 99,arrival,2026-11-24T09:35,import,x-3\n"
        "117,J-A,J-101,,arrival,2026-11-24T09:35,callback,x-1\n",
    )
    assert import_file(sessions, "punches", path).inserted == 4
    assert import_file(sessions, "punches", path).unchanged == 4
    with sessions() as s:
        punches = {(p.origin, p.call_key): p for p in s.scalars(select(Punch))}
        c1 = s.scalars(select(Client).where(Client.client_ref == "C-0001")).one()
    assert punches[("import:042", "x-1")].client_id == c1.id
    assert punches[("import:042", "x-2")].caller_withheld is True
    unknown = punches[("import:042", "x-3")]
    assert unknown.client_id is None and unknown.caller_e164 == "+33199999999"
    assert unknown.caller_withheld is False
    assert punches[("import:117", "x-1")].location_verified is False
