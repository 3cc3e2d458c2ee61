"""Structured logs: one JSON object per line, with the call id on every line about a call.

JSON rather than logfmt because every log shipper (journald exporters, Vector, Fluent Bit,
Promtail) parses it without a pattern, and a traceback stays inside one line's ``exc`` field
instead of spilling over lines that lose their call id.

The call id travels in a :mod:`contextvars` variable, so nothing has to pass it along:

- a FastAGI call binds it once when its environment block arrives (``ivr.agi_channel``); the
  call's coroutine runs in a copy of that context (``ensureDeferred``), so every line it logs,
  on the reactor, carries the id;
- Twisted's thread pool does not carry contextvars into its threads, so :func:`in_context`
  wraps a ``run_blocking`` runner to run each function in a copy of the submitting context:
  lines logged by the database layer on a worker thread carry the id too;
- Twisted's own log events are bridged into :mod:`logging` synchronously, in the context of
  the code that emitted them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any, TypeVar

T = TypeVar("T")

#: Fields bound to the current context (``call``, ``transport``…), added to every line.
_bound: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "telegestion_log_fields", default=MappingProxyType({})
)

LOG_FORMATS = ("json", "text")

#: ``logging.LogRecord`` attributes that are not extra fields given by the caller.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


def bound_fields() -> Mapping[str, str]:
    """The fields bound in the current context (for tests and for handing to other code)."""
    return _bound.get()


@contextlib.contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every line logged inside the block (and in work it submits through
    an :func:`in_context` runner); ``None`` values are left out."""
    token = _bound.set(_merged(fields))
    try:
        yield
    finally:
        _bound.reset(token)


def bind_here(**fields: object) -> None:
    """Add ``fields`` to the current context for good: for a context that belongs to one
    call (a coroutine started by ``ensureDeferred``, a copied context), where no block ends."""
    _bound.set(_merged(fields))


def fields_with(**fields: object) -> Mapping[str, str]:
    """The current fields plus ``fields``, computed once, for :func:`enter`: code that binds
    the same fields again and again (each packet of a call) skips merging them every time."""
    return _merged(fields)


def enter(fields: Mapping[str, str]) -> contextvars.Token[Mapping[str, str]]:
    """Bind exactly ``fields`` (from :func:`fields_with`) until :func:`leave`; :func:`bind`
    without the merge and the context manager, for the FastAGI protocol's hot path."""
    return _bound.set(fields)


def leave(token: contextvars.Token[Mapping[str, str]]) -> None:
    _bound.reset(token)


def _merged(fields: Mapping[str, object]) -> Mapping[str, str]:
    merged = dict(_bound.get())
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    return merged


def in_context(run_blocking: Callable[..., T]) -> Callable[..., T]:
    """A runner like ``run_blocking`` that runs each function in a copy of the caller's
    context: Twisted's thread pool starts its threads' work in an empty one."""

    def run(fn: Callable[..., Any], *args: Any) -> T:
        return run_blocking(contextvars.copy_context().run, fn, *args)

    run.__wrapped__ = run_blocking  # type: ignore[attr-defined]
    return run


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "node", "thread", "call"?, "msg", "exc"?, …extra}``."""

    def __init__(self, node: str) -> None:
        super().__init__()
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self.node,
            "thread": record.threadName,
        }
        entry.update(_bound.get())
        entry["msg"] = record.getMessage()
        for key, value in vars(record).items():
            if value is None or key in _RECORD_ATTRS or key in entry or key.startswith("_"):
                continue
            entry[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the same fields, as ``time level logger [call] message``."""

    def __init__(self, node: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(bound)s: %(message)s")
        self.node = node

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _bound.get().items())
        record.bound = f" [{fields}]" if fields else ""
        return super().format(record)


def configure(
    *, node: str, fmt: str = "json", level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log line of the process (``logging`` and Twisted's logger) to ``stream``
    (default stderr, which systemd hands to the journal) in format ``fmt``."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(node) if fmt == "json" else TextFormatter(node))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic says which migration context it uses each time the schema revision is read.
    logging.getLogger("alembic.runtime.migration").setLevel(max(level, logging.WARNING))
    _bridge_twisted()
    return handler


_twisted_bridged = False


def _bridge_twisted() -> None:
    """Twisted's log events (the FastAGI wire, twisted.web) go through ``logging`` too, under
    their namespace (``ivr.agi_channel.FastAGIProtocol``) as the logger name."""
    global _twisted_bridged
    if _twisted_bridged:
        return
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo(
        [twisted_to_logging], discardBuffer=False, redirectStandardIO=False
    )
    _twisted_bridged = True


def twisted_to_logging(event: Mapping[str, Any]) -> None:
    """A Twisted log observer: the event as a ``logging`` record, in the emitter's context."""
    from twisted.logger import LogLevel, formatEvent

    levels = {
        LogLevel.debug: logging.DEBUG,
        LogLevel.info: logging.INFO,
        LogLevel.warn: logging.WARNING,
        LogLevel.error: logging.ERROR,
        LogLevel.critical: logging.CRITICAL,
    }
    level = levels.get(event.get("log_level", LogLevel.info), logging.INFO)
    namespace = event.get("log_namespace") or "twisted"
    logger = logging.getLogger("twisted" if namespace == "log_legacy" else namespace)
    if not logger.isEnabledFor(level):
        return
    failure = event.get("log_failure")
    exc_info = None
    if failure is not None:
        exc_info = (failure.type, failure.value, failure.getTracebackObject())
    logger.log(level, "%s", formatEvent(dict(event)), exc_info=exc_info)


__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "bind_here",
    "bound_fields",
    "configure",
    "enter",
    "fields_with",
    "in_context",
    "leave",
]
