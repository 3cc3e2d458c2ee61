"""Hostile bytes against the AGI grammar: values or the typed error, and bounded memory.

``tests/ivr/test_agi_wire_properties.py`` checks each parser alone on protocol-shaped input;
here the whole reading pipeline of a FastAGI session (splitter, environment, replies, typed
results) takes raw bytes of any kind, cut at any point, with small limits so that the limits
themselves are hit often.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.agi_wire import (
    AgiEnvironment,
    AgiWireError,
    EnvironmentReader,
    HangupNotice,
    LineSplitter,
    LineTooLong,
    MalformedEnvironment,
    MalformedReply,
    Reply,
    ReplyReader,
    interpret_get_data,
    interpret_key_code,
    interpret_stream,
    interpret_variable,
    parse_environment,
)

LINE_LIMIT = 48
BLOCK_LIMIT = 6
ENV_LIMIT = 8

# Raw bytes of every kind, mixed with pieces that get the parsers past their first check.
hostile_bytes = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"\n",
                b"\r\n",
                b"\r",
                b"\x00",
                b"\xff\xfe",
                b"\xc3",
                b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8: invalid
                b"agi_uniqueid: ",
                b"agi_arg_1: ",
                b"agi_arg_999999: ",
                b"200 result=",
                b"200 result=-1 endpos=",
                b"100 result=0 Trying...",
                b"520-",
                b"520 ",
                b"511 ",
                b"HANGUP",
                b"(",
                b") ",
                b"9" * 40,
            ]
        ),
    ),
    max_size=60,
).map(b"".join)

cut_points = st.lists(st.integers(min_value=0, max_value=10_000), max_size=16)


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, start = [], 0
    for point in points:
        out.append(data[start:point])
        start = point
    out.append(data[start:])
    return out


@dataclass
class Session:
    """The reading side of one FastAGI session, as the protocol strings the parsers together."""

    splitter: LineSplitter = field(default_factory=lambda: LineSplitter(LINE_LIMIT))
    env_reader: EnvironmentReader = field(default_factory=lambda: EnvironmentReader(ENV_LIMIT))
    replies: ReplyReader = field(default_factory=lambda: ReplyReader(BLOCK_LIMIT))
    env: AgiEnvironment | None = None
    events: list[object] = field(default_factory=list)

    def feed(self, data: bytes) -> None:
        """Like FastAGIProtocol: lines completed before an overlong one still count."""
        try:
            lines = self.splitter.feed(data)
        except LineTooLong as exc:
            self._lines(exc.lines_before)
            raise
        self._lines(lines)

    def _lines(self, lines: list[bytes] | tuple[bytes, ...]) -> None:
        for line in lines:
            if self.env is None:
                self.env = self.env_reader.feed_line(line)
                continue
            event = self.replies.feed_line(line)
            if event is not None:
                self.events.append(event)
            if isinstance(event, Reply):
                for interpret in (
                    interpret_get_data,
                    interpret_key_code,
                    interpret_stream,
                    interpret_variable,
                ):
                    with contextlib.suppress(AgiWireError):
                        interpret(event)

    def check_bounded(self) -> None:
        assert len(self.splitter.pending) <= LINE_LIMIT + 1
        block = self.replies._block
        assert block is None or len(block) <= BLOCK_LIMIT


def _run(pieces: list[bytes]) -> tuple[AgiEnvironment | None, list[object], str | None]:
    session = Session()
    try:
        for piece in pieces:
            session.feed(piece)
            session.check_bounded()
    except AgiWireError as exc:
        return session.env, session.events, type(exc).__name__
    return session.env, session.events, None


@given(data=hostile_bytes, cuts=cut_points)
def test_any_bytes_cut_anywhere_give_values_or_the_typed_error(
    data: bytes, cuts: list[int]
) -> None:
    """Whatever a peer sends, however TCP cuts it: values or AgiWireError, buffers within limits."""
    _run(_pieces(data, cuts))


@given(data=hostile_bytes, cuts=cut_points)
def test_the_outcome_does_not_depend_on_how_the_stream_is_cut(data: bytes, cuts: list[int]) -> None:
    """Same environment, same replies, same verdict for one chunk or any segmentation."""
    assert _run(_pieces(data, cuts)) == _run([data])


@given(data=st.binary(max_size=400))
def test_arbitrary_binary_byte_by_byte(data: bytes) -> None:
    """Plain random bytes, one at a time (the worst segmentation), never escape the typed error."""
    assert _run([data[i : i + 1] for i in range(len(data))]) == _run([data])


env_value = st.binary(max_size=20).filter(lambda b: b"\n" not in b and b"\r" not in b)
env_lines = st.lists(
    st.tuples(st.from_regex(r"agi_[a-z0-9_]{1,8}", fullmatch=True), env_value),
    min_size=1,
    max_size=ENV_LIMIT,
)


@given(pairs=env_lines)
def test_crlf_and_lf_line_ends_give_the_same_environment(pairs: list[tuple[str, bytes]]) -> None:
    """A telnet-style CRLF session reads like the LF one Asterisk sends, NUL and bad UTF-8 too."""
    lf = b"".join(k.encode() + b": " + v + b"\n" for k, v in pairs) + b"\n"
    crlf = lf.replace(b"\n", b"\r\n")
    assert _run([lf])[0] == _run([crlf])[0] is not None


@given(pairs=env_lines)
def test_environment_values_are_always_text_without_nul(pairs: list[tuple[str, bytes]]) -> None:
    """Values reaching the call flow are str without NUL: PostgreSQL text cannot hold one."""
    env = parse_environment([k.encode() + b": " + v for k, v in pairs] + [b""], ENV_LIMIT)
    for value in env.values.values():
        assert isinstance(value, str)
        assert "\x00" not in value


def test_nul_in_a_caller_number_is_replaced_not_kept() -> None:
    """A NUL inside agi_callerid becomes U+FFFD; the rest of the value is kept."""
    env = parse_environment([b"agi_callerid: 0145\x00678912", b"agi_uniqueid: 1.1", b""])
    assert env.callerid == "0145\ufffd678912"
    assert env.uniqueid == "1.1"


def test_repeated_keys_count_towards_the_block_limit() -> None:
    """The same key sent again and again is still a too-long block, not a free loop."""
    reader = EnvironmentReader(max_lines=ENV_LIMIT)
    for _ in range(ENV_LIMIT):
        assert reader.feed_line(b"agi_callerid: 1") is None
    with pytest.raises(MalformedEnvironment, match="longer than"):
        reader.feed_line(b"agi_callerid: 2")


def test_a_repeated_key_keeps_its_last_value() -> None:
    """Asterisk never repeats a key; if a peer does, the last value counts, the first is gone."""
    env = parse_environment([b"agi_callerid: 1", b"agi_callerid: 2", b""])
    assert env.callerid == "2"


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536])
def test_a_megabyte_line_is_refused_without_buffering_it(chunk: int) -> None:
    """A 1 MiB reply line is refused once past the limit; the buffer never holds more."""
    splitter = LineSplitter(LINE_LIMIT)
    line = b"200 result=1 (" + b"x" * (1 << 20)
    refused_at = None
    for offset in range(0, len(line), chunk):
        try:
            splitter.feed(line[offset : offset + chunk])
        except LineTooLong:
            refused_at = offset
            break
        assert len(splitter.pending) <= LINE_LIMIT + 1
    assert refused_at is not None and refused_at <= LINE_LIMIT + 1
    assert splitter.pending == b""  # the refused bytes are let go, not held until the drop
    with pytest.raises(LineTooLong):
        splitter.feed(b"\n200 result=0\n")  # the stream is not resynchronised after a refusal


def test_a_megabyte_reply_given_as_one_line_still_parses_once() -> None:
    """A reader handed one huge line by its caller (classic AGI) parses it, no regex blow-up."""
    huge = "200 result=1 (" + ")" * 200_000 + " endpos=" + "(" * 200_000
    reader = ReplyReader()
    reply = reader.feed_line(huge)
    assert isinstance(reply, Reply) and reply.result == "1"
    with pytest.raises(MalformedReply):
        ReplyReader().feed_line("2000 " + "x" * 1_000_000)
    assert isinstance(ReplyReader().feed_line("HANGUP"), HangupNotice)


def test_a_520_block_that_never_ends_is_refused_at_its_bound() -> None:
    """Usage lines forever after 520-: the reader holds at most its bound, then refuses."""
    reader = ReplyReader(max_block_lines=BLOCK_LIMIT)
    assert reader.feed_line(b"520-Invalid command syntax.  Proper usage follows:") is None
    with pytest.raises(MalformedReply, match="block longer"):
        for _ in range(10_000):
            assert reader.feed_line(b"520-still usage") is None
            assert reader._block is not None and len(reader._block) <= BLOCK_LIMIT
