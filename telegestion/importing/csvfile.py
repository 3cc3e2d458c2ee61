"""Reading an import file into numbered rows, before anything is interpreted.

Agencies export from spreadsheets: files come with a byte-order mark, with ``;`` as the
separator (French Excel), with spaces around values. Those are accepted; a missing column or a
file that is not UTF-8 is refused as a whole, since no row of it can be trusted.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path


class ImportFileError(ValueError):
    """The file as a whole cannot be read; nothing from it is written."""


@dataclasses.dataclass(frozen=True)
class Row:
    line: int
    values: dict[str, str]


MAX_FILE_BYTES = 200 * 1024 * 1024


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
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{path}: line {line}: not UTF-8 text") from None
    return parse_rows(text, required, optional, name=str(path))


def parse_rows(
    text: str, required: tuple[str, ...], optional: tuple[str, ...] = (), name: str = "<data>"
) -> list[Row]:
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{name}: empty file, expected a header row") from None
    except csv.Error as exc:
        raise ImportFileError(f"{name}: line 1: {exc}") from None
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
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFileError(f"{name}: line {reader.line_num}: {exc}") from None
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
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
        rows.append(Row(line, values))
    return rows
