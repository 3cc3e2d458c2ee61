"""Phone numbers in every form people type them, parsed in the company's region."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from telegestion.phones import PhoneNumberError, is_withheld, parse_strict, to_e164


@pytest.mark.parametrize(
    "raw",
    [
        "01 45 67 89 12",
        "0145678912",
        "+33 1 45 67 89 12",
        "0033145678912",
        "01.45.67.89.12",
        "01-45-67-89-12",
        "(0)1 45 67 89 12",
        " 0145678912 ",
    ],
)
def test_french_forms_give_one_e164(raw: str) -> None:
    """Every usual way of writing a Paris landline is the same E.164 number."""
    assert parse_strict(raw, "FR") == "+33145678912"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("0262 16 12 34", "RE", "+262262161234"),
        ("0269 60 12 34", "YT", "+262269601234"),
        ("0590 20 12 34", "GP", "+590590201234"),
        ("0596 30 12 34", "MQ", "+596596301234"),
        ("0692 12 34 56", "RE", "+262692123456"),
        ("0800 123 456", "FR", "+33800123456"),
        ("+262 262 16 12 34", "FR", "+262262161234"),
    ],
)
def test_overseas_regions(raw: str, region: str, expected: str) -> None:
    """A national number is read in the company's region, so overseas companies work too."""
    assert parse_strict(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "abc", "12", "01 45 67", "+33 1 45 67 89 12 34 56"])
def test_strict_refuses_what_is_not_a_number(raw: str) -> None:
    """An import with a typo in a number is refused, with the number in the reason."""
    with pytest.raises(PhoneNumberError):
        parse_strict(raw, "FR")


@pytest.mark.parametrize(
    "raw",
    [None, "", "  ", "anonymous", "Anonymous", "UNKNOWN", "restricted", "Private", "unavailable"],
)
def test_placeholders_mean_withheld(raw: str | None) -> None:
    """Empty values and the network's placeholders are a withheld number, in any case."""
    assert is_withheld(raw)
    assert to_e164(raw, "FR") is None


@pytest.mark.parametrize("raw", ["0145678912", "+33145678912", "0033145678912", "33145678912"])
def test_network_forms_of_a_caller_number(raw: str) -> None:
    """Trunks deliver national, international and bare country-code forms of the same line."""
    assert to_e164(raw, "FR") == "+33145678912"


def test_lenient_parse_never_raises_on_garbage() -> None:
    """A caller number that is not a number is kept raw, never an error."""
    assert to_e164("sip:foo@bar", "FR") is None


SEPARATORS = st.sampled_from(["", " ", ".", "-"])


@given(
    first=st.sampled_from("123459"),
    rest=st.text(alphabet="0123456789", min_size=8, max_size=8),
    sep=SEPARATORS,
    prefix=st.sampled_from(["0", "+33", "0033", "+33 ", "0033 "]),
)
def test_every_written_form_agrees(first: str, rest: str, sep: str, prefix: str) -> None:
    """For any French number, all its written forms parse alike: same E.164 or all refused."""
    nsn = first + rest
    pairs = [nsn[1 + i : 3 + i] for i in range(0, 8, 2)]
    national = "0" + nsn
    written = (
        prefix + sep.join([first, *pairs]) if prefix != "0" else sep.join([national[:2], *pairs])
    )

    def outcome(text: str) -> str:
        try:
            return parse_strict(text, "FR")
        except PhoneNumberError:
            return "refused"

    expected = outcome(national)
    assert outcome(written) == expected
    valid = phonenumbers.is_valid_number(phonenumbers.parse("+33" + nsn))
    assert (expected == "+33" + nsn) == valid


@given(st.text(max_size=40))
def test_lenient_parse_total(raw: str) -> None:
    """Whatever the network sends, the lenient parser answers an E.164 string or None."""
    result = to_e164(raw, "FR")
    assert result is None or (result.startswith("+") and result[1:].isdigit())
