"""Properties of the AGI grammar over arbitrary input (hypothesis)."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from ivr.agi_wire import (
    AgiWireError,
    EnvironmentReader,
    LineSplitter,
    LineTooLong,
    Reply,
    ReplyReader,
    format_command,
    interpret_get_data,
    interpret_key_code,
    interpret_stream,
    interpret_variable,
    parse_reply,
    split_arguments,
)

# Bytes biased towards the protocol's own alphabet, so the parsers get past their first check.
wire_bytes = st.lists(
    st.one_of(
        st.binary(max_size=12),
        st.sampled_from(
            [
                b"\n",
                b"\r",
                b" ",
                b"(",
                b")",
                b"-",
                b"200 result=",
                b"520-",
                b"520 ",
                b"HANGUP",
                b"agi_",
                b": ",
                b"endpos=",
                b"-1",
                b"42",
                b"\xff\xc3",
            ]
        ),
    ),
    max_size=40,
).map(b"".join)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def _split_all(pieces: list[bytes], limit: int) -> tuple[list[bytes], bool, bytes]:
    splitter = LineSplitter(max_length=limit)
    lines: list[bytes] = []
    for piece in pieces:
        try:
            lines.extend(splitter.feed(piece))
        except LineTooLong as exc:
            return lines + list(exc.lines_before), True, b""
    return lines, False, splitter.pending


@given(data=wire_bytes, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_line_splitting_does_not_depend_on_segment_boundaries(data: bytes, cuts: list[int]) -> None:
    """Lines, the overflow verdict and the leftover are the same however TCP cuts the bytes."""
    assert _split_all(_cut(data, cuts), 16) == _split_all([data], 16)


@given(data=wire_bytes)
def test_line_splitting_byte_by_byte_matches_one_chunk(data: bytes) -> None:
    """The worst segmentation, one byte at a time, gives the same result."""
    assert _split_all([data[i : i + 1] for i in range(len(data))], 24) == _split_all([data], 24)


@given(lines=st.lists(wire_bytes, max_size=20))
def test_reply_reader_raises_only_its_own_error(lines: list[bytes]) -> None:
    """Arbitrary lines give replies, notices, None, or a typed AgiWireError; nothing else."""
    reader = ReplyReader()
    for line in lines:
        try:
            event = reader.feed_line(line)
        except AgiWireError:
            return
        if isinstance(event, Reply):
            for interpret in (
                interpret_get_data,
                interpret_key_code,
                interpret_stream,
                interpret_variable,
            ):
                with contextlib.suppress(AgiWireError):
                    interpret(event)


@given(lines=st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_parse_reply_raises_only_its_own_error(lines: list[str]) -> None:
    """Any list of text lines parses or raises the parser's typed error."""
    with contextlib.suppress(AgiWireError):
        parse_reply(lines)


@given(lines=st.lists(wire_bytes, max_size=20))
def test_environment_reader_raises_only_its_own_error(lines: list[bytes]) -> None:
    """Arbitrary lines in the environment phase never raise anything but AgiWireError."""
    reader = EnvironmentReader()
    for line in lines:
        try:
            if reader.feed_line(line) is not None:
                return
        except AgiWireError:
            return


argument_text = st.text(
    alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
    max_size=20,
)


@given(args=st.lists(argument_text, max_size=6))
def test_encoded_arguments_split_back_to_themselves(args: list[str]) -> None:
    """What we send is read by Asterisk's splitting rules as exactly the arguments we meant."""
    line = format_command("SET VARIABLE", *args)
    assert split_arguments(line) == ["SET", "VARIABLE", *args]
