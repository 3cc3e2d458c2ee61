"""The webhook gate: form decoding with clear refusals, and the signature over the public URL."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from callback.config import CallbackNotConfigured, callback_config
from callback.forms import MAX_BODY_BYTES, FormError, decode_form, decode_query
from callback.signature import WebhookSignature, signed_url
from telegestion.settings import Settings

FORM = "application/x-www-form-urlencoded"
TOKEN = "12345678901234567890123456789012"


def test_decodes_a_twilio_body() -> None:
    """Twilio's form body gives one string per field, %-decoded, blanks kept."""
    body = b"CallSid=CA1&From=%2B33612345678&Digits=&CallerName=Ren%C3%A9"
    assert decode_form(body, f"{FORM}; charset=UTF-8") == {
        "CallSid": "CA1",
        "From": "+33612345678",
        "Digits": "",
        "CallerName": "René",
    }


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b'{"CallSid": "CA1"}', "application/json", "expected a body of type"),
        (b"CallSid=CA1", None, "got none"),
        (b"CallSid=caf\xc3\xa9", FORM, "ASCII"),
        (b"CallSid=%FF%FE", FORM, "not form-encoded"),
        (b"CallSid", FORM, "not form-encoded"),
        (b"CallSid=CA1&CallSid=CA2", FORM, "repeats the field 'CallSid'"),
        (b"a=" + b"x" * MAX_BODY_BYTES, FORM, "body over"),
    ],
)
def test_refuses_what_twilio_never_sends(body: bytes, content_type: str | None, why: str) -> None:
    """JSON, no type, raw bytes, bad %-escapes, bare names, repeats and huge bodies are refused."""
    with pytest.raises(FormError, match=why):
        decode_form(body, content_type)


def test_query_string_has_the_same_rules() -> None:
    """Our own query fields (r, a, s) are read strictly too."""
    assert decode_query("r=12&a=1") == {"r": "12", "a": "1"}
    assert decode_query("") == {}
    with pytest.raises(FormError):
        decode_query("s=1&s=2")


PUBLIC = "https://tg.example.fr"
URI = "/twilio/voice/flow?s=9"
PARAMS = {"CallSid": "CA1", "Digits": "12345", "From": "+33612345678"}


def _sign(url: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


def test_signature_is_checked_against_the_public_url() -> None:
    """A webhook signed over the public URL passes, whatever URL the server itself sees."""
    url = signed_url(PUBLIC, URI)
    assert url == "https://tg.example.fr/twilio/voice/flow?s=9"
    assert WebhookSignature(TOKEN).is_valid(url, PARAMS, _sign(url, PARAMS))


def test_signature_over_the_internal_url_is_refused() -> None:
    """A signature made over the URL behind the proxy is not Twilio's: refused."""
    inside = "http://10.0.0.5:8080" + URI
    assert not WebhookSignature(TOKEN).is_valid(
        signed_url(PUBLIC, URI), PARAMS, _sign(inside, PARAMS)
    )


def test_changed_field_missing_signature_or_other_token_are_refused() -> None:
    """Changing one key, sending no signature, or signing with another token all fail."""
    url = signed_url(PUBLIC, URI)
    good = _sign(url, PARAMS)
    checker = WebhookSignature(TOKEN)
    assert not checker.is_valid(url, {**PARAMS, "Digits": "54321"}, good)
    assert not checker.is_valid(url, PARAMS, None)
    assert not checker.is_valid(url, PARAMS, "")
    other = RequestValidator("another-token").compute_signature(url, PARAMS)
    assert not checker.is_valid(url, PARAMS, other)


def test_signature_with_the_default_port_is_accepted() -> None:
    """Twilio may sign https://host:443/…; the validator accepts both forms."""
    url = signed_url(PUBLIC, URI)
    assert WebhookSignature(TOKEN).is_valid(
        url, PARAMS, _sign("https://tg.example.fr:443" + URI, PARAMS)
    )


def test_unconfigured_worker_names_the_missing_settings() -> None:
    """Without Twilio settings the message names what to set."""
    with pytest.raises(CallbackNotConfigured) as caught:
        callback_config(Settings(twilio_account_sid="AC1"))
    assert "TELEGESTION_TWILIO_AUTH_TOKEN" in str(caught.value)
    assert "TELEGESTION_PUBLIC_URL" in str(caught.value)
    assert "TELEGESTION_TWILIO_ACCOUNT_SID" not in str(caught.value)


@pytest.mark.parametrize("url", ["tg.example.fr", "ftp://tg.example.fr", "https://x/?a=1"])
def test_public_url_must_be_a_base_url(url: str) -> None:
    """A public URL without scheme, of another scheme, or with a query is refused at start-up."""
    settings = Settings(twilio_account_sid="AC1", twilio_auth_token="t", public_url=url)
    with pytest.raises(CallbackNotConfigured, match="TELEGESTION_PUBLIC_URL"):
        callback_config(settings)


def test_config_builds_public_urls() -> None:
    """Webhook URLs given to Twilio are the public base, the path and our query fields."""
    config = callback_config(
        Settings(
            twilio_account_sid="AC1",
            twilio_auth_token="t",
            public_url="https://tg.example.fr/",
            callback_delay_s=3,
        )
    )
    assert config.url("/twilio/voice/flow", r=4, a=2) == (
        "https://tg.example.fr/twilio/voice/flow?r=4&a=2"
    )
    assert config.delay_s == 3
    assert config.api_url is None
