"""Coverage-guided fuzzing of the AGI wire parser (atheris / libFuzzer).

Why a second fuzzer next to hypothesis: hypothesis explores shapes we thought of; libFuzzer
follows the branches of the parser and the string comparisons it makes, and finds byte
sequences nobody would write by hand. The contract checked is the one the FastAGI server relies
on: any input yields values or raises :class:`~ivr.agi_wire.AgiWireError`, no buffer outgrows
its limit, and no value handed to the call flow holds a NUL (PostgreSQL text cannot store one).
A finding becomes a regression test in ``tests/hostile/``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

# Not the "RegEx" hook: atheris 3.0 fails on a bytes pattern with "." (TypeError while compiling
# the environment regex), so the regex internals stay a black box to the fuzzer.
atheris.enabled_hooks.add("str")

with atheris.instrument_imports():
    from ivr.agi_wire import (
        AgiWireError,
        EnvironmentReader,
        LineSplitter,
        LineTooLong,
        Reply,
        ReplyReader,
        interpret_get_data,
        interpret_key_code,
        interpret_stream,
        interpret_variable,
        parse_reply,
    )

MAX_LINE = 64
MAX_BLOCK_LINES = 8
INTERPRETERS = (interpret_get_data, interpret_key_code, interpret_stream, interpret_variable)


def _check_reply(reply: Reply) -> None:
    for text in (reply.result, reply.data, reply.message, reply.extra):
        if text is not None and "\x00" in text:
            raise AssertionError(f"NUL reached a reply field: {reply!r}")
    for interpret in INTERPRETERS:
        with contextlib.suppress(AgiWireError):
            interpret(reply)


def _exercise(data: bytes) -> None:
    """One session: the first bytes choose the TCP cuts, the rest is what the peer sends."""
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 4096))
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    splitter = LineSplitter(MAX_LINE)
    env_reader = EnvironmentReader(max_lines=16)
    replies = ReplyReader(max_block_lines=MAX_BLOCK_LINES)
    in_call = False
    start = 0
    for point in [*cuts, len(stream)]:
        piece, start = stream[start : max(start, point)], max(start, point)
        try:
            lines = splitter.feed(piece)
        except LineTooLong:
            if splitter.pending:
                raise AssertionError("a refused line is still buffered") from None
            raise
        if len(splitter.pending) > MAX_LINE + 1:
            raise AssertionError(f"splitter holds {len(splitter.pending)} bytes")
        for line in lines:
            if not in_call:
                env = env_reader.feed_line(line)
                if env is not None:
                    in_call = True
                    if any("\x00" in v for v in env.values.values()):
                        raise AssertionError(f"NUL reached the environment: {env!r}")
                continue
            event = replies.feed_line(line)
            if replies.in_block and len(replies._block or ()) > MAX_BLOCK_LINES:
                raise AssertionError("a reply block outgrew its bound")
            if isinstance(event, Reply):
                _check_reply(event)


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point: anything but AgiWireError escaping is a finding."""
    with contextlib.suppress(AgiWireError):
        _exercise(data)
    with contextlib.suppress(AgiWireError):
        parse_reply(data.decode("utf-8", errors="replace").split("\n"))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
