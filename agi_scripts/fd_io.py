"""Line I/O on a raw file descriptor (a classic AGI script's stdin/stdout, or a socket).

pyst2 reads with ``stdin.readline()`` from a text stream: a strict UTF-8 decode that crashes on a
caller name cut mid-character, no deadline, and a read-ahead buffer that would swallow a
``HANGUP`` line sent right after the environment block. These two small classes give pyst2 the
``readline()``/``write()``/``flush()`` it expects, while the same buffer serves our own reply
reader with deadlines, so no byte is read twice or lost.
"""

from __future__ import annotations

import os
import select
import time

from ivr.agi_wire import DEFAULT_MAX_LINE_LENGTH, ConnectionLost, LineSplitter, ReplyTimeout


class FdLineReader:
    def __init__(self, fd: int, max_line_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        self.fd = fd
        self._splitter = LineSplitter(max_line_length)
        self._lines: list[bytes] = []
        self.eof = False

    def read_line(self, timeout: float | None) -> bytes | None:
        """The next line without its LF, or None at end of stream; ReplyTimeout past ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._lines:
            if self.eof:
                return None
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise ReplyTimeout(f"no line from Asterisk within {timeout:g} s")
            try:
                data = os.read(self.fd, 65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                continue
            self._lines.extend(self._splitter.feed(data))
        return self._lines.pop(0)

    def readline(self) -> str:
        """pyst2's view: decoded with replacement (caller names may be any bytes), '' at EOF."""
        line = self.read_line(timeout=None)
        if line is None:
            return ""
        return line.decode("utf-8", errors="replace").rstrip("\r") + "\n"


class FdWriter:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ConnectionLost(f"Asterisk closed the AGI session: {exc}") from None
        return len(data)

    def flush(self) -> None:
        return None


class NullStream:
    """Where pyst2's debug chatter goes: Asterisk prints an AGI's stderr on its console."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
