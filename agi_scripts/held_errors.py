"""The AGI script's log: held in memory, summed up in one line on stderr when something failed.

Asterisk prints a script's stderr on its console, next to every other call's lines, so the
script writes nothing there on its own: Python warnings and every log record go through
:class:`HeldErrors`. A call's warnings (a lock-out, a client absent) are business events already
in its journal and are dropped; its errors are kept for the one-line verdict.
"""

from __future__ import annotations

import logging


def one_line(text: str, limit: int = 300) -> str:
    """The first line of a message, cut to ``limit``: Asterisk's console shows lines."""
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


class HeldErrors(logging.Handler):
    """Keeps the message of each error record, exception included, on one line."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = one_line(record.getMessage())
        except Exception:  # a malformed log call must not end the call
            text = one_line(str(record.msg))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f": {type(error).__name__}: {one_line(str(error))}"
        self.messages.append(text)


def hold_errors() -> HeldErrors:
    """Route all logging and warnings of this process to a new :class:`HeldErrors`."""
    held = HeldErrors()
    root = logging.getLogger()
    root.handlers[:] = [held]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return held
