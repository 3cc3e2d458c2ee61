"""The pure AGI grammar: environment block, replies, line splitting, command encoding.

The reply vectors are the lines Asterisk 22 really sent in the recorded transcripts
(copied into ``tests/ivr/asterisk-transcripts``); a sweep below also feeds every recorded line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ivr.agi_wire import (
    HANGUP_NOTICE,
    AgiEnvironment,
    EnvironmentReader,
    GetDataResult,
    LineSplitter,
    LineTooLong,
    MalformedEnvironment,
    MalformedReply,
    Quoted,
    Reply,
    ReplyReader,
    StreamResult,
    UnsafeArgument,
    digit_from_ascii,
    encode_command_line,
    format_command,
    interpret_get_data,
    interpret_key_code,
    interpret_stream,
    interpret_variable,
    parse_environment,
    parse_environment_line,
    parse_reply,
    quote_argument,
    split_arguments,
)

TRANSCRIPTS = Path(
    os.environ.get(
        "TELEGESTION_AGI_TRANSCRIPTS", str(Path(__file__).resolve().parent / "asterisk-transcripts")
    )
)

# Transcript a, the environment block exactly as Asterisk 22.10.1 sent it.
ENV_A = [
    b"agi_network: yes",
    b"agi_network_script: telegestion?dnis=0800123456&cli=0145678912",
    b"agi_request: agi://127.0.0.1:4573/telegestion?dnis=0800123456&cli=0145678912",
    b"agi_channel: Local/0800123456@harness-trunk-00000000;2",
    b"agi_language: fr",
    b"agi_type: Local",
    b"agi_uniqueid: 1795333838.1",
    b"agi_version: 22.10.1",
    b"agi_callerid: 0145678912",
    b"agi_calleridname: unknown",
    b"agi_callingpres: 0",
    b"agi_callingani2: 0",
    b"agi_callington: 0",
    b"agi_callingtns: 0",
    b"agi_dnid: 0800123456",
    b"agi_rdnis: unknown",
    b"agi_context: telegestion-inbound",
    b"agi_extension: 0800123456",
    b"agi_priority: 1",
    b"agi_enhanced: 0.0",
    b"agi_accountcode: ",
    b"agi_threadid: 140308715464384",
    b"agi_arg_1: 0800123456",
    b"agi_arg_2: 0145678912",
    b"",
]


# -- environment block --------------------------------------------------------------------------


def test_environment_of_a_normal_call_exposes_the_numbers() -> None:
    """The env block of transcript a gives the script, both AGI arguments and the call id."""
    env = parse_environment(ENV_A)
    assert env.network
    assert env.network_script == "telegestion?dnis=0800123456&cli=0145678912"
    assert env.script_name == "telegestion"
    assert env.script_query == {"dnis": "0800123456", "cli": "0145678912"}
    assert env.args == ("0800123456", "0145678912")
    assert env.arg(1) == "0800123456"
    assert env.uniqueid == "1795333838.1"
    assert env.callerid == "0145678912"
    assert env.callingpres == 0
    assert env.dnid == "0800123456"
    assert env.language == "fr"
    assert env.accountcode == ""
    assert env.get("agi_enhanced") == "0.0"


def test_environment_keeps_every_key_in_order() -> None:
    """All 24 variables are kept, in the order Asterisk sent them."""
    env = parse_environment(ENV_A)
    assert list(env.values) == [line.split(b":")[0].decode() for line in ENV_A[:-1]]


def test_environment_of_a_call_without_number() -> None:
    """Transcript d1: no number is 'unknown' with presentation 67 and an empty agi_arg_2."""
    lines = [
        b"agi_network: yes",
        b"agi_network_script: telegestion?dnis=0800123456&cli=",
        b"agi_callerid: unknown",
        b"agi_calleridname: unknown",
        b"agi_callingpres: 67",
        b"agi_arg_1: 0800123456",
        b"agi_arg_2: ",
        b"",
    ]
    env = parse_environment(lines)
    assert env.callerid == "unknown"
    assert env.callingpres == 67
    assert env.args == ("0800123456", "")
    assert env.script_query == {"dnis": "0800123456", "cli": ""}


def test_environment_value_with_spaces() -> None:
    """Transcript d4: a caller name with a space is one value."""
    assert parse_environment_line(b"agi_calleridname: DUPONT Marie") == (
        "agi_calleridname",
        "DUPONT Marie",
    )


def test_environment_value_that_is_not_utf8_is_decoded_with_replacement() -> None:
    """A Latin-1 name or one cut inside a character never breaks the call."""
    key, value = parse_environment_line(b"agi_calleridname: H\xe9l\xc3")
    assert key == "agi_calleridname"
    assert value == "H\ufffdl\ufffd"


def test_environment_keeps_unknown_keys() -> None:
    """Variables a newer Asterisk adds are kept for the journal."""
    env = parse_environment([b"agi_network: yes", b"agi_brand_new: 42", b""])
    assert env.get("agi_brand_new") == "42"


def test_environment_orders_arguments_numerically() -> None:
    """agi_arg_10 comes after agi_arg_9, not after agi_arg_1."""
    lines = [f"agi_arg_{n}: v{n}".encode() for n in (10, 2, 1, 9, 3, 4, 5, 6, 7, 8)]
    env = parse_environment([*lines, b""])
    assert env.args == tuple(f"v{n}" for n in range(1, 11))


@pytest.mark.parametrize(
    "line",
    [
        b"GET / HTTP/1.1",
        b"agi_callerid 0145678912",
        b"AGI_callerid: x",
        b"agi_: x",
        b"agi_caller id: x",
        b"agi_callerid:x",
        b"HANGUP",
        b"200 result=0",
    ],
)
def test_environment_refuses_lines_that_are_not_agi_variables(line: bytes) -> None:
    """Garbage before or in the block is refused, whatever it looks like."""
    with pytest.raises(MalformedEnvironment):
        parse_environment_line(line)


def test_environment_block_cannot_be_empty() -> None:
    """A lone empty line is not a call (a probe or a confused client)."""
    with pytest.raises(MalformedEnvironment):
        EnvironmentReader().feed_line(b"")


def test_environment_block_length_is_bounded() -> None:
    """A peer cannot grow the block without end."""
    reader = EnvironmentReader(max_lines=3)
    for n in range(3):
        assert reader.feed_line(f"agi_x{n}: 1".encode()) is None
    with pytest.raises(MalformedEnvironment):
        reader.feed_line(b"agi_x4: 1")


def test_environment_block_must_end_with_an_empty_line() -> None:
    """A block cut short is an error, not a call with half its variables."""
    with pytest.raises(MalformedEnvironment):
        parse_environment([b"agi_network: yes"])


def test_environment_reader_returns_the_block_only_at_its_end() -> None:
    """Line by line, nothing is returned until the empty line."""
    reader = EnvironmentReader()
    assert all(reader.feed_line(line) is None for line in ENV_A[:-1])
    env = reader.feed_line(b"")
    assert isinstance(env, AgiEnvironment)
    assert env.uniqueid == "1795333838.1"


# -- replies ----------------------------------------------------------------------------------

# (wire line, code, result, data, endpos, extra, message), all from the transcripts.
REPLY_VECTORS = [
    ("200 result=0", 200, "0", None, None, "", ""),
    ("200 result=1", 200, "1", None, None, "", ""),
    ("200 result=1 (a normal)", 200, "1", "a normal", None, "", ""),
    ("200 result=1 (0145678912|0800123456|fr)", 200, "1", "0145678912|0800123456|fr", None, "", ""),
    ("200 result=1 ()", 200, "1", "", None, "", ""),
    ("200 result=1 (allowed_not_screened)", 200, "1", "allowed_not_screened", None, "", ""),
    ("200 result=1 (DUPONT Marie)", 200, "1", "DUPONT Marie", None, "", ""),
    ("200 result=1 (FAILED)", 200, "1", "FAILED", None, "", ""),
    ("200 result=1 (hangup)", 200, "1", "hangup", None, "", ""),
    ("200 result=12", 200, "12", None, None, "", ""),
    ("200 result=5678", 200, "5678", None, None, "", ""),
    ("200 result=9 (timeout)", 200, "9", "timeout", None, "", ""),
    ("200 result= (timeout)", 200, "", "timeout", None, "", ""),
    ("200 result=", 200, "", None, None, "", ""),
    ("200 result=*12*", 200, "*12*", None, None, "", ""),
    ("200 result=42", 200, "42", None, None, "", ""),
    ("200 result=35", 200, "35", None, None, "", ""),
    ("200 result=0 endpos=5600", 200, "0", None, 5600, "", ""),
    ("200 result=42 endpos=19040", 200, "42", None, 19040, "", ""),
    ("200 result=0 endpos=57760", 200, "0", None, 57760, "", ""),
    ("200 result=-1 endpos=0", 200, "-1", None, 0, "", ""),
    ("200 result=-1", 200, "-1", None, None, "", ""),
    ("200 result=-2", 200, "-2", None, None, "", ""),
    ("100 result=0 Trying...", 100, "0", None, None, "Trying...", ""),
    ("510 Invalid or unknown command", 510, None, None, None, "", "Invalid or unknown command"),
    (
        "511 Command Not Permitted on a dead channel or intercept routine",
        511,
        None,
        None,
        None,
        "",
        "Command Not Permitted on a dead channel or intercept routine",
    ),
    (
        "520 Invalid command syntax.  Proper usage not available.",
        520,
        None,
        None,
        None,
        "",
        "Invalid command syntax.  Proper usage not available.",
    ),
]


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos", "extra", "message"), REPLY_VECTORS
)
def test_reply_vectors_from_the_transcripts(
    line: str,
    code: int,
    result: str | None,
    data: str | None,
    endpos: int | None,
    extra: str,
    message: str,
) -> None:
    """Each reply form Asterisk sent is parsed into its typed fields."""
    reply = parse_reply([line])
    assert (reply.code, reply.result, reply.data, reply.endpos, reply.extra, reply.message) == (
        code,
        result,
        data,
        endpos,
        extra,
        message,
    )
    assert reply.lines == (line,)


def test_variable_values_with_parentheses_stay_whole() -> None:
    """A value holding ') (' or ' endpos=5' is data, not syntax."""
    reply = parse_reply(["200 result=1 (a) (b) endpos=5)"])
    assert reply.data == "a) (b) endpos=5"
    assert reply.endpos is None


def test_record_file_form_has_data_and_endpos() -> None:
    """'(reason) endpos=n' carries both (RECORD FILE's form)."""
    reply = parse_reply(["200 result=0 (timeout) endpos=1234"])
    assert (reply.data, reply.endpos) == ("timeout", 1234)


def test_minus_one_is_flagged_as_ambiguous_failure() -> None:
    """result=-1 (hang-up or missing prompt) is flagged; other results are not."""
    assert parse_reply(["200 result=-1"]).is_failure
    assert parse_reply(["200 result=-1 endpos=0"]).is_failure
    assert not parse_reply(["200 result=-2"]).is_failure
    assert not parse_reply(["200 result=0"]).is_failure


def test_usage_block_is_one_reply_with_its_text() -> None:
    """A 520- block becomes one reply whose usage is the lines between first and last."""
    reply = parse_reply(
        [
            "520-Invalid command syntax.  Proper usage follows:",
            "first usage line with <replaceable>tags</replaceable>",
            "    second, indented",
            "520 End of proper usage.",
        ]
    )
    assert reply.code == 520
    assert reply.message == "Invalid command syntax.  Proper usage follows:"
    assert (
        reply.usage == "first usage line with <replaceable>tags</replaceable>\n    second, indented"
    )


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [""],
        ["HANGUP"],
        ["hello"],
        ["200"],
        ["200 ok"],
        ["20 result=0"],
        ["520-Invalid command syntax."],
        ["520-a", "b"],
        ["520-a", "b", "510 c"],
        ["200 result=0", "200 result=1"],
    ],
)
def test_reply_parser_refuses_what_asterisk_never_sends(lines: list[str]) -> None:
    """Garbage, HANGUP, unterminated or mixed blocks are typed errors."""
    with pytest.raises(MalformedReply):
        parse_reply(lines)


def test_huge_numbers_do_not_crash_the_parser() -> None:
    """Python refuses int() on very long digit strings; the parser must not pass them on."""
    reply = parse_reply(["200 result=" + "9" * 5000 + " endpos=" + "9" * 5000])
    assert reply.result_int is None
    assert reply.endpos is None


# -- the reply reader (line by line) ------------------------------------------------------------


def test_reader_turns_hangup_line_into_an_event() -> None:
    """The bare HANGUP line is a notice, not a reply."""
    assert ReplyReader().feed_line(b"HANGUP") is HANGUP_NOTICE


def test_reader_treats_hangup_in_parentheses_as_data() -> None:
    """'200 result=1 (hangup)' is GET VARIABLE's answer, not a hang-up."""
    event = ReplyReader().feed_line(b"200 result=1 (hangup)")
    assert isinstance(event, Reply)
    assert event.data == "hangup"


def test_reader_skips_trying_and_returns_the_real_reply() -> None:
    """'100 result=0 Trying...' is skipped; the following 200 line is the reply."""
    reader = ReplyReader()
    assert reader.feed_line(b"100 result=0 Trying...") is None
    event = reader.feed_line(b"200 result=0 Gosub complete")
    assert isinstance(event, Reply)
    assert (event.code, event.result, event.extra) == (200, "0", "Gosub complete")


def test_reader_waits_for_the_end_of_a_usage_block() -> None:
    """The 520- block is complete only at '520 End of proper usage.'."""
    reader = ReplyReader()
    assert reader.feed_line(b"520-Invalid command syntax.  Proper usage follows:") is None
    assert reader.in_block
    assert reader.feed_line(b"usage text") is None
    assert reader.feed_line(b"HANGUP") is None  # inside a block, any line is usage text
    event = reader.feed_line(b"520 End of proper usage.")
    assert isinstance(event, Reply)
    assert event.usage == "usage text\nHANGUP"
    assert not reader.in_block


def test_reader_does_not_wait_after_the_one_line_520() -> None:
    """The one-line 520 form is a whole reply: waiting for a block end would hang forever."""
    reader = ReplyReader()
    event = reader.feed_line(b"520 Invalid command syntax.  Proper usage not available.")
    assert isinstance(event, Reply)
    assert event.code == 520
    assert event.usage is None
    assert not reader.in_block


def test_reader_bounds_a_block_that_never_ends() -> None:
    """A block that never ends is refused after a bounded number of lines."""
    reader = ReplyReader(max_block_lines=5)
    reader.feed_line(b"520-start")
    with pytest.raises(MalformedReply):
        for _ in range(10):
            reader.feed_line(b"more")


@pytest.mark.parametrize("line", [b"", b"garbage", b"agi_network: yes", b"200 result"])
def test_reader_refuses_garbage(line: bytes) -> None:
    """Anything that is not a reply or HANGUP is a typed error."""
    with pytest.raises(MalformedReply):
        ReplyReader().feed_line(line)


# -- typed results -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=12", GetDataResult("12", False)),
        ("200 result=5678", GetDataResult("5678", False)),
        ("200 result=9 (timeout)", GetDataResult("9", True)),
        ("200 result= (timeout)", GetDataResult("", True)),
        ("200 result=", GetDataResult("", False)),
        ("200 result=*12*", GetDataResult("*12*", False)),
    ],
)
def test_get_data_results(line: str, expected: GetDataResult) -> None:
    """GET DATA: digits, '*' kept, '#' before any digit is empty without timeout."""
    assert interpret_get_data(parse_reply([line])) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=42", "*"),
        ("200 result=35", "#"),
        ("200 result=0", None),
        ("200 result=49", "1"),
    ],
)
def test_key_codes_are_ascii(line: str, expected: str | None) -> None:
    """WAIT FOR DIGIT answers the ASCII code: 42 is '*', 35 is '#', 0 is no key."""
    assert interpret_key_code(parse_reply([line])) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0 endpos=5600", StreamResult(None, 5600)),
        ("200 result=42 endpos=19040", StreamResult("*", 19040)),
        ("200 result=0 endpos=57760", StreamResult(None, 57760)),
    ],
)
def test_stream_results(line: str, expected: StreamResult) -> None:
    """STREAM FILE: the escape key (or none) and the sample reached."""
    assert interpret_stream(parse_reply([line])) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=1 (yes)", "yes"),
        ("200 result=1 ()", ""),
        ("200 result=0", None),
        ("200 result=1 (hangup)", "hangup"),
    ],
)
def test_variable_results(line: str, expected: str | None) -> None:
    """GET VARIABLE: a value (maybe empty, maybe 'hangup') or None when unset."""
    assert interpret_variable(parse_reply([line])) == expected


def test_interpreting_an_unsettled_minus_one_is_refused() -> None:
    """-1 must be settled as hang-up or failure before reading it as data."""
    with pytest.raises(MalformedReply):
        interpret_get_data(parse_reply(["200 result=-1"]))
    with pytest.raises(MalformedReply):
        interpret_stream(parse_reply(["200 result=-1 endpos=0"]))


def test_unknown_key_code_is_refused() -> None:
    """An ASCII code that is no DTMF key is a typed error."""
    assert digit_from_ascii(68) == "D"
    with pytest.raises(MalformedReply):
        digit_from_ascii(120)


def test_get_data_with_non_dtmf_characters_is_refused() -> None:
    """GET DATA only ever returns DTMF keys."""
    with pytest.raises(MalformedReply):
        interpret_get_data(parse_reply(["200 result=12x"]))


# -- line splitting -----------------------------------------------------------------------------


def test_splitter_returns_complete_lines_and_keeps_the_rest() -> None:
    """A line cut across segments comes out once complete."""
    splitter = LineSplitter()
    assert splitter.feed(b"200 res") == []
    assert splitter.feed(b"ult=0\nHANG") == [b"200 result=0"]
    assert splitter.pending == b"HANG"
    assert splitter.feed(b"UP\n\n") == [b"HANGUP", b""]


def test_splitter_tolerates_crlf() -> None:
    """A CRLF line (a hand-typed session) loses its CR."""
    assert LineSplitter().feed(b"agi_network: yes\r\n\r\n") == [b"agi_network: yes", b""]


def test_splitter_accepts_a_line_of_exactly_the_limit() -> None:
    """The limit is inclusive."""
    assert LineSplitter(max_length=8).feed(b"12345678\n") == [b"12345678"]


def test_splitter_refuses_a_line_over_the_limit_without_waiting_for_its_end() -> None:
    """An unfinished line past the limit fails at once, carrying the lines before it."""
    splitter = LineSplitter(max_length=8)
    with pytest.raises(LineTooLong) as caught:
        splitter.feed(b"ok\n123456789")
    assert caught.value.lines_before == (b"ok",)
    with pytest.raises(LineTooLong):
        splitter.feed(b"\n")


def test_splitter_refuses_a_complete_line_over_the_limit() -> None:
    """A complete overlong line fails too."""
    with pytest.raises(LineTooLong):
        LineSplitter(max_length=8).feed(b"123456789\n")


# -- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("ANSWER",), "ANSWER"),
        (("GET DATA", "beep", 8000, 6), "GET DATA beep 8000 6"),
        (("SET VARIABLE", "TG_CASE", "a normal"), 'SET VARIABLE TG_CASE "a normal"'),
        (("SET VARIABLE", "TG_AFTER", "yes"), "SET VARIABLE TG_AFTER yes"),
        (
            ("STREAM FILE", "digits/5", Quoted("0123456789*#")),
            'STREAM FILE digits/5 "0123456789*#"',
        ),
        (("STREAM FILE", "digits/1", Quoted("")), 'STREAM FILE digits/1 ""'),
        (("SAY DIGITS", "0800", ""), 'SAY DIGITS 0800 ""'),
        (("EXEC", "Playback", "digits/2"), "EXEC Playback digits/2"),
        (
            ("VERBOSE", "record_fastagi: case a (normal call)", 1),
            'VERBOSE "record_fastagi: case a (normal call)" 1',
        ),
        (("GET VARIABLE", "CALLERID(num)"), "GET VARIABLE CALLERID(num)"),
    ],
)
def test_commands_are_encoded_as_the_transcripts_send_them(args: tuple, line: str) -> None:
    """Our encoder produces the recording server's exact command lines."""
    assert format_command(*args) == line


def test_quotes_and_backslashes_are_escaped() -> None:
    """'"' and '\\' inside an argument are escaped and quoted."""
    assert quote_argument('say "hi" c:\\x') == '"say \\"hi\\" c:\\\\x"'
    assert quote_argument("tab\there") == '"tab\there"'


@pytest.mark.parametrize("bad", ["two\nlines", "cr\r", "nul\x00"])
def test_line_breaks_are_refused(bad: str) -> None:
    """A newline would split one command into two: refused, never sent."""
    with pytest.raises(UnsafeArgument):
        format_command("SET VARIABLE", "X", bad)
    with pytest.raises(UnsafeArgument):
        encode_command_line(f"VERBOSE {bad}")
    with pytest.raises(ValueError):  # UnsafeArgument is also a ValueError
        quote_argument(bad)


def test_booleans_are_not_arguments() -> None:
    """True would be sent as 'True'; refuse it rather than guess."""
    with pytest.raises(TypeError):
        format_command("VERBOSE", "x", True)  # type: ignore[arg-type]


def test_encoded_line_ends_with_one_lf() -> None:
    """A command goes out as UTF-8 plus one LF."""
    assert encode_command_line('VERBOSE "café" 1') == 'VERBOSE "café" 1\n'.encode()


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            'VERBOSE "record_fastagi: case a (normal call)" 1',
            ["VERBOSE", "record_fastagi: case a (normal call)", "1"],
        ),
        ('SAY DIGITS 0800 ""', ["SAY", "DIGITS", "0800", ""]),
        ('STREAM FILE vm-intro "*#"', ["STREAM", "FILE", "vm-intro", "*#"]),
        ("", []),
        ('a""b', ["ab"]),
        ('x "a \\" b" c\\ d', ["x", 'a " b', "c d"]),
    ],
)
def test_arguments_split_like_asterisk(line: str, words: list[str]) -> None:
    """Quotes group, '""' is an empty argument, a backslash makes the next character literal."""
    assert split_arguments(line) == words


def test_transcript_sweep_every_recorded_line_parses() -> None:
    """Every line Asterisk sent in every transcript is accepted as env, reply or notice."""
    entry = re.compile(r"^\s+[0-9.]+ ms\s+<< (.*)$")
    files = sorted(TRANSCRIPTS.glob("*.txt"))
    assert len(files) >= 15
    total = 0
    for path in files:
        lines = [
            m.group(1).replace("\\n", "\n").encode()
            for m in map(entry.match, path.read_text().splitlines())
            if m
        ]
        data = b"".join(lines)
        splitter = LineSplitter()
        env_reader = EnvironmentReader()
        replies = ReplyReader()
        env = None
        for line in splitter.feed(data):
            total += 1
            if env is None:
                env = env_reader.feed_line(line)
            else:
                replies.feed_line(line)  # raises on anything unexpected
        assert env is not None, path.name
        assert splitter.pending == b"", path.name
        assert not replies.in_block, path.name
    assert total > 400


def test_the_wire_module_stays_free_of_twisted() -> None:
    """The classic AGI script reuses this module: importing it must not pull in Twisted."""
    import subprocess
    import sys

    code = (
        "import sys, ivr.agi_wire; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('twisted', 'sqlalchemy', 'asterisk', 'twilio')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
