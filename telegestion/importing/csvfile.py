"""Reading an import file into numbered rows, before anything is interpreted.

Agencies export from spreadsheets: files come with a byte-order mark, with ``;`` as the
separator (French Excel), with spaces around values. Those are accepted; a missing column or a
file that is not UTF-8 is refused as a whole, since no row of it can be trusted.

Hostile files get one clear line too: a NUL byte (a binary file, and PostgreSQL text cannot hold
one), a quote never closed, a field or a file too large, too many rows (the whole file is held in
memory and every bad row is listed: two million rows took minutes and gigabytes to say so).
A cell that a spreadsheet would run as a formula (``=``, ``@``, or ``+``/``-`` followed by more
than a number) is refused on its line: names, services and financers go out again in the
exports, which payroll and billing open in spreadsheets, and the exports write cells as stored.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path


class ImportFileError(ValueError):
    """The file as a whole cannot be read; nothing from it is written."""


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


MAX_FILE_BYTES = 200 * 1024 * 1024
#: Data rows in one file: a month of planning of a large agency is under 100 000.
MAX_ROWS = 250_000
#: ``+`` or ``-`` followed by anything but a number or a phone number's punctuation.
_FORMULA = re.compile(r"[=@]|[+-].*[^0-9 .,()/+\-]", re.DOTALL)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def formula_cell(value: str) -> bool:
    """Whether a spreadsheet would read ``value`` as a formula (CSV injection)."""
    return _FORMULA.match(value) is not None


def read_rows(
    path: str | Path, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[Row]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    if data.startswith(_UTF16_BOMS):
        raise ImportFileError(f"{path}: UTF-16 text; save it as CSV UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"{path}: line {line}: not UTF-8 text; save it as CSV UTF-8"
        ) from None
    return parse_rows(text, required, optional, name=str(path))


def parse_rows(
    text: str, required: tuple[str, ...], optional: tuple[str, ...] = (), name: str = "<data>"
) -> list[Row]:
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise ImportFileError(f"{name}: line {line}: NUL byte; a binary file, not CSV text")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: empty file, expected a header row") from None
    except csv.Error as exc:
        raise ImportFileError(f"{name}: {_csv_problem(exc, 1, reader.line_num)}") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ImportFileError(
            f"{name}: line 1: missing column(s) {', '.join(missing)};"
            f" expected header {','.join(required)}"
        )
    known = set(required) | set(optional)
    unknown = [c for c in columns if c and c not in known]
    if unknown:
        raise ImportFileError(f"{name}: line 1: unknown column(s) {', '.join(unknown)}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ImportFileError(f"{name}: line 1: duplicated column(s) {', '.join(duplicated)}")

    rows: list[Row] = []
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFileError(f"{name}: {_csv_problem(exc, start, reader.line_num)}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportFileError(f"{name}: line {line}: more than {MAX_ROWS} rows; split the file")
        if len(record) > len(columns):
            extra = [cell for cell in record[len(columns) :] if cell.strip()]
            if extra:
                rows.append(
                    Row(line, {"__error__": f"{len(record)} fields, header has {len(columns)}"})
                )
                continue
        values = {
            col: (record[i].strip() if i < len(record) else "")
            for i, col in enumerate(columns)
            if col
        }
        formulas = [col for col, value in values.items() if formula_cell(value)]
        if formulas:
            col = formulas[0]
            shown = values[col] if len(values[col]) <= 24 else values[col][:24] + "…"
            rows.append(
                Row(
                    line,
                    {
                        "__error__": f"{col} {shown!r} starts like a spreadsheet formula"
                        f" ({values[col][0]}); refused, it would run when exported"
                    },
                )
            )
            continue
        rows.append(Row(line, values))
    return rows


def _csv_problem(exc: csv.Error, start: int, end: int) -> str:
    """The csv module's error in the words of someone who saved the file from a spreadsheet."""
    where = f"line {start}" if end <= start else f"lines {start}-{end}"
    message = str(exc)
    if "unexpected end of data" in message:
        return f"line {start}: a quoted field starts here and is never closed"
    if "field larger than field limit" in message:
        return f"{where}: a field longer than {csv.field_size_limit()} characters"
    return f"{where}: {message}"
