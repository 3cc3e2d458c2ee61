"""TwiML for the call-back: the flow's channel effects as the XML Twilio executes.

One webhook answer carries what the flow says until it needs the carer again: every ``Play``
as a ``<Say>``, then either the ``<Gather>`` that waits for keys or ``<Hangup/>``. Prompts are
spoken with ``<Say>`` in the company's language, from the same sentences as the landline
recordings (``ivr.prompt_catalogue``), so a carer hears the same words on both; the visit menu
lines exist only as text (``ivr.callback_prompts``).

Every ``<Gather>`` posts to its action URL even when nothing was keyed
(``actionOnEmptyResult``), so a timeout reaches the flow as one, exactly like Asterisk's
``GET DATA``: the flow, not Twilio, decides what a silence means.

Pure: strings in, a string out; tested against fixed documents.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from ivr.callback_prompts import callback_prompt_text, is_callback_prompt, visit_choice_text
from ivr.effects import Gather, Play, Prompt, SayTime, SayVisitChoice, Segment
from ivr.prompt_catalogue import normalise_language, prompt_text, time_phrase

#: ``<Say>`` language tag and voice per company language: Amazon Polly voices, which Twilio
#: offers in every account, read French and British English naturally.
SAY_VOICES: Mapping[str, tuple[str, str]] = {
    "fr": ("fr-FR", "Polly.Lea"),
    "en": ("en-GB", "Polly.Amy"),
}

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def segment_text(segment: Segment, language: str) -> str:
    """What ``<Say>`` reads for one segment of a prompt."""
    if isinstance(segment, Prompt):
        if is_callback_prompt(segment.prompt_id):
            return callback_prompt_text(segment.prompt_id, language)
        return prompt_text(segment.prompt_id, language)
    if isinstance(segment, SayTime):
        # The time ends the readback's sentence ("Arrival recorded at" + time).
        phrase = time_phrase(segment.hour, segment.minute, language)
        return phrase if phrase.endswith(".") else f"{phrase}."
    if isinstance(segment, SayVisitChoice):
        return visit_choice_text(segment.key, segment.choice, language)
    raise TypeError(f"not a segment: {segment!r}")


def say(segments: Sequence[Segment], language: str) -> str:
    """One ``<Say>`` for the segments of one effect; empty when there is nothing to say."""
    if not segments:
        return ""
    lang = normalise_language(language)
    tag, voice = SAY_VOICES[lang]
    text = " ".join(segment_text(s, lang) for s in segments)
    return f"<Say {_attributes(language=tag, voice=voice)}>{escape(text)}</Say>"


def gather(effect: Gather, action_url: str) -> str:
    """A DTMF ``<Gather>`` with the prompts inside, so the first key cuts them short."""
    attributes = _attributes(
        input="dtmf",
        action=action_url,
        method="POST",
        numDigits=str(effect.max_digits),
        timeout=str(max(1, math.ceil(effect.timeout_s))),
        finishOnKey="#",
        actionOnEmptyResult="true",
    )
    inner = say(effect.segments, effect.language)
    if not inner:
        return f"<Gather {attributes}/>"
    return f"<Gather {attributes}>{inner}</Gather>"


def turn(plays: Sequence[Play], waiting: Gather | None, action_url: str | None) -> str:
    """The answer to one webhook: the plays, then the gather to wait on, else a hang-up."""
    parts = [say(play.segments, play.language) for play in plays]
    if waiting is not None:
        if action_url is None:
            raise ValueError("a gather needs its action URL")
        parts.append(gather(waiting, action_url))
    else:
        parts.append("<Hangup/>")
    return document("".join(parts))


def reject_busy() -> str:
    """Refuse an incoming call as busy: the carer's phone shows a failed call, which costs the
    carer nothing, and Twilio never answers it."""
    return document('<Reject reason="busy"/>')


def hangup() -> str:
    return document("<Hangup/>")


def empty() -> str:
    """The answer to a status callback: Twilio reads nothing from it."""
    return document("")


def document(body: str) -> str:
    if not body:
        return f"{_XML_DECLARATION}<Response/>"
    return f"{_XML_DECLARATION}<Response>{body}</Response>"


_QUOTE = {'"': "&quot;"}


def _attributes(**values: str) -> str:
    return " ".join(f'{name}="{escape(value, _QUOTE)}"' for name, value in values.items())
