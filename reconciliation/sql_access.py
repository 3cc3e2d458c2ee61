"""Plain DB-API statements for reconciliation's reads and writes, on SQLite and PostgreSQL alike.

A month of a large network is millions of rows: going through the ORM, or even through Core's
result processing, costs more than the rules themselves. Statements here are written once, with
``:name`` parameters, and rendered per dialect; the two differences that matter are spelled out
as macros:

- ``IN_LIST(:ids)`` tests membership in a Python list: ``= ANY(array)`` on PostgreSQL (one
  parameter, however long the list), ``IN (SELECT value FROM json_each(...))`` on SQLite;
- values cross the boundary as SQLite stores them through the models (naive UTC text for
  instants, ISO text for days, JSON text, 0/1), so rows written here read back through the ORM
  and the other way round.

On PostgreSQL a large write goes through ``COPY`` into a temporary table and one set-based
statement. Instants come back in the session's time zone; :meth:`Sql.instant` makes them UTC.

The incremental path (one punch: some twenty small statements) spends more of PostgreSQL's time
planning its reads than running them, so there (``Sql(..., prepare=True)``) each read is
prepared once per connection and then executed by name. A batch does not prepare: its reads
carry hundreds of carers, where a plan made for the actual arrays is worth its cost.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_IN_LIST = re.compile(r"IN_LIST\(:([A-Za-z_]\w*)\)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
#: Prepared statements kept per connection; past this, statements run unprepared (a bound on
#: the server's memory should statement texts ever be built from unbounded variations).
MAX_PREPARED = 200
#: Where a connection's prepared statements are remembered: SQLAlchemy's ``info`` lives as long
#: as the database connection itself, as the prepared statements do.
_PREPARED_KEY = "reconciliation_prepared"
#: Set when what is remembered may be wrong: the next transaction asks the server.
_RESYNC_KEY = "reconciliation_prepared_resync"
#: SQLSTATE of EXECUTE naming a prepared statement the connection no longer has.
STATEMENT_GONE = "26000"
#: SQLSTATE of PREPARE of a name the connection already holds.
STATEMENT_EXISTS = "42P05"

Row = tuple[Any, ...]


@lru_cache(maxsize=512)
def _render(sql: str, postgres: bool) -> str:
    if postgres:
        sql = _IN_LIST.sub(r"= ANY(:\1)", sql)
        sql = sql.replace("%", "%%")
        return _PARAM.sub(r"%(\1)s", sql)
    return _IN_LIST.sub(r"IN (SELECT value FROM json_each(:\1))", sql)


@lru_cache(maxsize=512)
def _prepared_form(sql: str) -> tuple[str, tuple[str, ...], str] | None:
    """The statement with ``$1…$n`` in place of its names (each name once, in order of first
    use), those names, and the statement's prepared name; None for what is not worth
    preparing (anything but a read)."""
    words = sql.split(None, 1)
    if not words or words[0].upper() not in ("SELECT", "WITH"):
        return None
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PARAM.sub(number, _IN_LIST.sub(r"= ANY(:\1)", sql))
    return text, tuple(names), _statement_name(text)


def _statement_name(text: str) -> str:
    """Named after its text, so a name can never run another statement than its own, even on
    a server connection a pooler shares between several of ours."""
    return "tg_rec_" + hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store instants as aware UTC datetimes")
        return value.astimezone(UTC).strftime(_SQLITE_TIME)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return json.dumps(sorted(value) if isinstance(value, set | frozenset) else list(value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _pg_value(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _copy_plain(value: Any) -> str:
    """Numbers and dates: nothing to escape."""
    return "\\N" if value is None else str(value)


def _copy_instant(value: datetime | None) -> str:
    return "\\N" if value is None else value.isoformat()


def _copy_formats(columns: str) -> list[Any]:
    """One formatter per column of a ``name type, …`` list: COPY text needs no quoting, only
    ``\\N`` for NULL and escapes in free text, so most cells cost one ``str()``."""
    formats = []
    for column in columns.split(","):
        kind = column.split()[1].lower()
        if kind == "text":
            formats.append(_copy_text)
        elif kind == "timestamptz":
            formats.append(_copy_instant)
        else:
            formats.append(_copy_plain)
    return formats


class Sql:
    """One connection's raw cursor, inside the SQLAlchemy transaction that owns it."""

    def __init__(self, conn: Connection, *, prepare: bool = False) -> None:
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"
        if conn.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"reconciliation supports SQLite and PostgreSQL, not {conn.dialect.name}"
            )
        self.raw = conn.connection.dbapi_connection
        assert self.raw is not None
        self._error = conn.dialect.loaded_dbapi.Error
        self._temp: set[str] = set()
        #: Names of the statements this database connection holds (None: no preparing).
        self._prepared: set[str] | None = None
        if prepare and self.postgres:
            info = conn.connection.info
            if info.pop(_RESYNC_KEY, False):
                held = self.raw.cursor()
                held.execute("SELECT name FROM pg_prepared_statements")
                info[_PREPARED_KEY] = {name for (name,) in held.fetchall()}
                held.close()
            self._prepared = info.setdefault(_PREPARED_KEY, set())

    # --- statements -----------------------------------------------------------------------

    def _params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        convert = _pg_value if self.postgres else _sqlite_value
        return {k: convert(v) for k, v in params.items()}

    def _run(self, sql: str, params: Mapping[str, Any]) -> Any:
        prepared = self._prepared
        if prepared is not None:
            form = _prepared_form(sql)
            if form is not None and (form[2] in prepared or len(prepared) < MAX_PREPARED):
                return self._run_prepared(*form, params)
        cursor = self.raw.cursor()
        statement = _render(sql, self.postgres)
        try:
            cursor.execute(statement, self._params(params))
        except self._error as exc:
            cursor.close()
            raise DBAPIError.instance(statement, dict(params), exc, self._error) from exc
        return cursor

    def _run_prepared(
        self, text: str, names: tuple[str, ...], name: str, params: Mapping[str, Any]
    ) -> Any:
        assert self._prepared is not None
        cursor = self.raw.cursor()
        try:
            if name not in self._prepared:
                cursor.execute(f"PREPARE {name} AS {text}")
                # Remembered only once it exists: a failed PREPARE leaves nothing behind.
                self._prepared.add(name)
            values = self._params(params)
            if names:
                marks = ", ".join(["%s"] * len(names))
                cursor.execute(f"EXECUTE {name} ({marks})", [values[n] for n in names])
            else:
                cursor.execute(f"EXECUTE {name}")
        except self._error as exc:
            cursor.close()
            if getattr(exc, "pgcode", None) in (STATEMENT_GONE, STATEMENT_EXISTS):
                # What this connection holds is not what we remember: someone ran DEALLOCATE or
                # DISCARD, or a pooler in transaction mode handed over another server
                # connection. The caller retries the transaction (reconciliation.store), whose
                # first step asks the server what it holds.
                self._prepared.clear()
                self.conn.connection.info[_RESYNC_KEY] = True
            raise DBAPIError.instance(text, dict(params), exc, self._error) from exc
        return cursor

    def fetch(self, sql: str, **params: Any) -> list[Row]:
        cursor = self._run(sql, params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def execute(self, sql: str, **params: Any) -> int:
        cursor = self._run(sql, params)
        count = cursor.rowcount
        cursor.close()
        return int(count)

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        statement = _render(sql, self.postgres)
        cursor = self.raw.cursor()
        try:
            if self.postgres:
                from psycopg2.extras import execute_batch

                execute_batch(cursor, statement, [self._params(r) for r in rows], page_size=200)
            else:
                cursor.executemany(statement, [self._params(r) for r in rows])
        except self._error as exc:
            raise DBAPIError.instance(statement, {}, exc, self._error) from exc
        finally:
            cursor.close()

    def copy_into_temp(self, table: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
        """PostgreSQL only: a temporary table ``table (columns)`` holding ``rows``.

        ``columns`` is the column list with types, as in CREATE TABLE. The table lives until
        the end of the transaction, so a later call in the same transaction starts it afresh.
        """
        assert self.postgres
        if table not in self._temp:
            self.execute(f"CREATE TEMPORARY TABLE {table} ({columns}) ON COMMIT DROP")
            self._temp.add(table)
        else:
            self.execute(f"TRUNCATE {table}")
        formats = _copy_formats(columns)
        buffer = io.StringIO()
        write = buffer.write
        for row in rows:
            write("\t".join([f(v) for f, v in zip(formats, row, strict=True)]))
            write("\n")
        buffer.seek(0)
        cursor = self.raw.cursor()
        try:
            cursor.copy_expert(f"COPY {table} FROM STDIN", buffer)
        except self._error as exc:
            raise DBAPIError.instance(f"COPY {table}", {}, exc, self._error) from exc
        finally:
            cursor.close()

    # --- values read back --------------------------------------------------------------------

    def instant(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.tzinfo is not UTC:
            return value.astimezone(UTC)
        return value

    def day(self, value: Any) -> date | None:
        if value is None or isinstance(value, date):
            return value
        return date.fromisoformat(value)

    def flag(self, value: Any) -> bool:
        return bool(value)

    def document(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, str | bytes):
            loaded = json.loads(value)
            return loaded if isinstance(loaded, dict) else {}
        return dict(value)


def begin(
    sql: Sql, *, batch: bool = False, write: bool = True, lock_wait_ms: int | None = None
) -> None:
    """Start the transaction the way reconciliation needs it on each database.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock before the first read, so a run never
    reads, computes and then fails to upgrade to a writer because another one got in between
    (a read-only transaction starts as usual). PostgreSQL: a batch chunk may run longer than
    the request timeout; ``lock_wait_ms`` bounds the wait for another run's locks. The
    settings go in one statement (``set_config(…, true)`` is ``SET LOCAL``): a call's run is
    made of a few small statements, and each round trip counts.
    """
    if sql.postgres:
        # Reconciliation's statements are many small index lookups: compiling them (JIT, for
        # plans the planner wrongly costs as large) takes longer than running them.
        settings = {"jit": "off"}
        if batch:
            # A batch chunk is derived data that the next run rewrites: it may take longer than
            # a request, and need not wait for its commit to reach the disk.
            settings["statement_timeout"] = "0"
            settings["synchronous_commit"] = "off"
        if lock_wait_ms is not None:
            settings["lock_timeout"] = str(int(lock_wait_ms))
        calls = ", ".join(f"set_config('{name}', :{name}, true)" for name in settings)
        sql.fetch(f"SELECT {calls}", **settings)
    elif write:
        sql.execute("BEGIN IMMEDIATE")
