"""TwiML rendering: the flow's channel effects as fixed TwiML documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from callback import twiml
from ivr import prompt_ids as p
from ivr.callback_prompts import VISIT_NOT_LISTED
from ivr.effects import ClientLabel, Gather, Play, Prompt, SayTime, SayVisitChoice, VisitChoice

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
ACTION = "https://tg.example.fr/twilio/voice/flow?s=7"


def test_reject_is_busy() -> None:
    """An incoming call is refused as busy, so the carer pays nothing."""
    assert twiml.reject_busy() == HEAD + '<Response><Reject reason="busy"/></Response>'


def test_hangup_and_empty_documents() -> None:
    """The hang-up and the empty answer (status callbacks) are minimal documents."""
    assert twiml.hangup() == HEAD + "<Response><Hangup/></Response>"
    assert twiml.empty() == HEAD + "<Response/>"


def test_pin_gather_in_french() -> None:
    """A code gather nests its French <Say> so the first key cuts it, and posts even on silence."""
    gather = Gather((Prompt(p.WELCOME), Prompt(p.ENTER_CARER_CODE)), 5, 6.0, "carer_code", "fr")
    assert twiml.turn([], gather, ACTION) == (
        HEAD + "<Response>"
        '<Gather input="dtmf" action="https://tg.example.fr/twilio/voice/flow?s=7" '
        'method="POST" numDigits="5" timeout="6" finishOnKey="#" actionOnEmptyResult="true">'
        '<Say language="fr-FR" voice="Polly.Lea">'
        "Télégestion, bonjour. Tapez votre code intervenant.</Say>"
        "</Gather></Response>"
    )


def test_readback_in_english_rounds_the_timeout_up() -> None:
    """The readback speaks the time in English and waits a whole number of seconds, never less."""
    gather = Gather(
        (Prompt(p.ARRIVAL_RECORDED), SayTime(9, 5), Prompt(p.PRESS_2_TO_CORRECT)),
        1,
        1.5,
        "readback",
        "en",
    )
    assert twiml.turn([], gather, ACTION) == (
        HEAD + "<Response>"
        f'<Gather input="dtmf" action="{ACTION}" method="POST" numDigits="1" timeout="2" '
        'finishOnKey="#" actionOnEmptyResult="true">'
        '<Say language="en-GB" voice="Polly.Amy">'
        "Arrival recorded at nine oh five a.m. To correct, press 2.</Say>"
        "</Gather></Response>"
    )


def test_plays_then_hangup() -> None:
    """Plays come first, each as its own <Say>, and a turn with no gather ends in <Hangup/>."""
    plays = [
        Play((Prompt(p.TECHNICAL_PROBLEM),), "fr"),
        Play((Prompt(p.GOODBYE),), "fr"),
    ]
    assert twiml.turn(plays, None, None) == (
        HEAD + "<Response>"
        '<Say language="fr-FR" voice="Polly.Lea">'
        "Problème technique, merci de rappeler dans quelques minutes.</Say>"
        '<Say language="fr-FR" voice="Polly.Lea">Au revoir.</Say>'
        "<Hangup/></Response>"
    )


def test_silent_gather_is_an_empty_element() -> None:
    """A gather with nothing to say (the rest of a restarted code) waits without a <Say>."""
    gather = Gather((), 3, 6.0, "carer_code", "fr")
    assert twiml.turn([], gather, ACTION) == (
        HEAD + "<Response>"
        f'<Gather input="dtmf" action="{ACTION}" method="POST" numDigits="3" timeout="6" '
        'finishOnKey="#" actionOnEmptyResult="true"/></Response>'
    )


def test_menu_lines_name_the_client_by_initial_only() -> None:
    """A menu line says the time and "Madame D.", in the company's language."""
    choice = VisitChoice(4, "planned", 9, 0, ClientLabel("mrs", "D"))
    opened = VisitChoice(5, "open", 8, 5, ClientLabel("mr_and_mrs", "B"))
    gather = Gather(
        (SayVisitChoice("1", choice), SayVisitChoice("2", opened), Prompt(VISIT_NOT_LISTED)),
        1,
        5.0,
        "visit_menu",
        "fr",
    )
    assert ET.fromstring(twiml.turn([], gather, ACTION)).find("Gather/Say").text == (  # type: ignore[union-attr]
        "Pour la visite de neuf heures chez Madame D., tapez 1. "
        "Pour terminer la visite commencée à huit heures cinq chez Monsieur et Madame B., "
        "tapez 2. Si votre visite n'est pas dans la liste, tapez 0."
    )


def test_text_and_urls_are_escaped() -> None:
    """An action URL with several query fields stays well-formed XML."""
    gather = Gather((Prompt(p.GOODBYE),), 1, 1.0, "readback", "en")
    document = twiml.turn([], gather, "https://tg.example.fr/flow?s=1&x=<2>")
    assert 'action="https://tg.example.fr/flow?s=1&amp;x=&lt;2&gt;"' in document
    assert ET.fromstring(document).find("Gather").attrib["action"].endswith("&x=<2>")  # type: ignore[union-attr]


def test_a_gather_needs_its_action_url() -> None:
    """Rendering a gather without the URL it answers to is a programming error."""
    with pytest.raises(ValueError):
        twiml.turn([], Gather((), 1, 1.0, "readback", "fr"), None)


def test_unknown_prompt_fails_loudly() -> None:
    """A prompt id with no text raises instead of making the carer hear silence."""
    with pytest.raises(ValueError):
        twiml.turn([Play((Prompt("no-such-prompt"),), "fr")], None, None)
