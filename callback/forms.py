"""Reading a Twilio webhook's form body, and refusing anything that is not one.

Twilio posts ``application/x-www-form-urlencoded`` bodies of a few hundred bytes, one value per
field. Anything else reaching these URLs is a mistake or an attack, and gets a clear ``400``
before any signature is computed or any row is read: the message says what was wrong, so an
operator testing with ``curl`` sees it at once.

Pure: the web layer passes the raw body and the ``Content-Type`` header.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

#: A real webhook is under 2 KB; the limit leaves room for every parameter Twilio may add.
MAX_BODY_BYTES = 16 * 1024
#: Twilio sends about 20 fields; more is not a webhook.
MAX_FIELDS = 100

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


class FormError(ValueError):
    """The body is not a form Twilio could have sent; the message is for the HTTP answer."""


def decode_form(body: bytes, content_type: str | None) -> dict[str, str]:
    """The fields of a form-encoded body, each once; :class:`FormError` says why not."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        shown = media_type or "none"
        raise FormError(f"expected a body of type {FORM_MEDIA_TYPE}, got {shown}")
    if len(body) > MAX_BODY_BYTES:
        raise FormError(f"body over {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise FormError("a form-encoded body is ASCII; non-ASCII bytes must be %-encoded") from None
    return decode_pairs(text, "body")


def decode_query(query: str) -> dict[str, str]:
    """The fields of a URL's query string, with the same rules as a body."""
    return decode_pairs(query, "query string")


def decode_pairs(text: str, where: str) -> dict[str, str]:
    if not text:
        return {}
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:
        raise FormError(f"{where} is not form-encoded: {exc}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise FormError(f"{where} repeats the field {name!r}")
        if "\x00" in name or "\x00" in value:
            # Twilio never sends one, and PostgreSQL text cannot hold one: refused here rather
            # than failing later in the journal of a refused or a real webhook.
            raise FormError(f"{where} has a NUL character in the field {name[:40]!r}")
        fields[name] = value
    return fields
