"""The prompt catalogue, the committed prompt sounds and the sound generator's guard rails."""

from __future__ import annotations

import array
import shutil
import sys
import wave
from pathlib import Path

import pytest

from ivr import make_sounds
from ivr.prompt_catalogue import (
    LANGUAGES,
    PROMPT_IDS,
    MissingPrompt,
    missing_prompts,
    normalise_language,
    prompt_durations,
    prompt_text,
    sound_path,
    time_phrase,
)

SOUNDS_ROOT = Path(__file__).resolve().parents[2] / "asterisk_conf" / "sounds"

# Prompt ids as written in the task description and SPEC.md section 3.
SPEC_PROMPT_IDS = (
    "number-not-in-service",
    "welcome",
    "enter-company-code",
    "invalid-company-code",
    "enter-carer-code",
    "invalid-carer-code",
    "too-many-attempts",
    "goodbye",
    "arrival-recorded",
    "departure-recorded",
    "press-2-to-correct",
    "correction-recorded",
    "enter-task-codes",
    "invalid-task-code",
    "task-codes-recorded",
    "press-9-if-absent",
    "absence-recorded",
    "service-unavailable",
    "technical-problem",
)

# Sound budget: each prompt lasts under 4 s (aim 1-2.5 s); shorter than 0.3 s would mean
# espeak-ng or the silence trim ate the words.
MAX_PROMPT_SECONDS = 4.0
MIN_PROMPT_SECONDS = 0.3

# SPEC.md section 3: a dedicated-number punch takes under 20 s. Keying 5 digits (~2.5 s), the
# spoken time (~1.5 s) and the 4 s correction window leave 12 s; we keep 2 s of it for the
# "press 9" wait, so the prompts of that call get 10 s. The shared number adds the company code
# prompt and 3 digits (~1.5 s) within 5 more seconds of budget, so 12.5 s.
DEDICATED_ARRIVAL_PROMPTS = (
    "welcome",
    "enter-carer-code",
    "arrival-recorded",
    "press-2-to-correct",
    "press-9-if-absent",
    "goodbye",
)
DEDICATED_ARRIVAL_PROMPT_BUDGET_S = 10.0
SHARED_ARRIVAL_PROMPT_BUDGET_S = 12.5

ALL_SOUNDS = [(language, prompt_id) for language in LANGUAGES for prompt_id in PROMPT_IDS]


def _wav(language: str, prompt_id: str) -> Path:
    return SOUNDS_ROOT / language / "telegestion" / f"{prompt_id}.wav"


def _write_wav(path: Path, frames: int, rate: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x00" * frames)


def _copy_sounds(tmp_path: Path) -> Path:
    copy = tmp_path / "sounds"
    shutil.copytree(SOUNDS_ROOT, copy)
    return copy


def test_catalogue_ids_are_the_spec_ids() -> None:
    """The catalogue holds exactly the prompt ids of the spec, in order."""
    assert PROMPT_IDS == SPEC_PROMPT_IDS


def test_catalogue_ids_match_the_flow_constants() -> None:
    """The catalogue and ivr.prompt_ids name the same prompts, so every prompt played exists."""
    from ivr.prompt_ids import ALL_PROMPT_IDS

    assert sorted(ALL_PROMPT_IDS) == sorted(PROMPT_IDS)


@pytest.mark.parametrize("prompt_id", SPEC_PROMPT_IDS)
def test_every_prompt_has_distinct_french_and_english_text(prompt_id: str) -> None:
    """Each prompt has a non-empty text in both languages, and the English is not the French."""
    french = prompt_text(prompt_id, "fr")
    english = prompt_text(prompt_id, "en")
    assert french.strip() and english.strip()
    assert french != english


def test_french_is_the_default_language() -> None:
    """A company with no language set hears French."""
    assert prompt_text("goodbye") == prompt_text("goodbye", "fr")
    assert prompt_text("goodbye", None) == prompt_text("goodbye", "fr")
    assert prompt_text("goodbye", "") == prompt_text("goodbye", "fr")


@pytest.mark.parametrize(("setting", "expected"), [("fr-FR", "fr"), ("EN", "en"), ("en_GB", "en")])
def test_regional_language_tags_map_to_their_language(setting: str, expected: str) -> None:
    """Regional tags as Twilio or a config file write them select the right prompts."""
    assert normalise_language(setting) == expected
    assert prompt_text("welcome", setting) == prompt_text("welcome", expected)


def test_unknown_language_or_prompt_is_an_error() -> None:
    """A language or prompt id with no text fails loudly instead of playing silence."""
    with pytest.raises(ValueError, match="de"):
        prompt_text("welcome", "de")
    with pytest.raises(ValueError, match="no-such-prompt"):
        prompt_text("no-such-prompt", "fr")
    with pytest.raises(ValueError, match="no-such-prompt"):
        sound_path("no-such-prompt")


def test_sound_path_is_the_asterisk_name_without_extension() -> None:
    """STREAM FILE gets telegestion/<id>, resolved by Asterisk in the channel's language."""
    assert sound_path("press-2-to-correct") == "telegestion/press-2-to-correct"


def test_readback_prompts_lead_into_the_spoken_time() -> None:
    """The arrival/departure readbacks end on "à"/"at" so the time follows as one sentence."""
    assert prompt_text("arrival-recorded", "fr").endswith(" à")
    assert prompt_text("departure-recorded", "fr").endswith(" à")
    assert prompt_text("arrival-recorded", "en").endswith(" at")
    assert prompt_text("departure-recorded", "en").endswith(" at")


def test_every_committed_sound_is_present() -> None:
    """Every prompt has its committed WAV file in both languages."""
    assert missing_prompts(SOUNDS_ROOT, LANGUAGES) == []


@pytest.mark.parametrize(("language", "prompt_id"), ALL_SOUNDS)
def test_committed_sound_is_asterisk_wav_of_sane_length(language: str, prompt_id: str) -> None:
    """Each WAV is 8 kHz mono 16-bit PCM, 0.3 s to 4 s long, loud, and trimmed at both ends."""
    with wave.open(str(_wav(language, prompt_id)), "rb") as wav:
        assert wav.getframerate() == 8000
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getcomptype() == "NONE"
        frames = wav.getnframes()
        samples = array.array("h", wav.readframes(frames))
    if sys.byteorder == "big":
        samples.byteswap()
    assert MIN_PROMPT_SECONDS < frames / 8000 < MAX_PROMPT_SECONDS
    # Normalised: the loudest sample is within a few dB of full scale.
    assert max(abs(s) for s in samples) > 0.5 * 32767
    # Trimmed: speech (above -40 dBFS, i.e. 328) within the first and last 100 ms.
    window = 800
    assert max(abs(s) for s in samples[:window]) > 328
    assert max(abs(s) for s in samples[-window:]) > 328


@pytest.mark.parametrize("language", LANGUAGES)
def test_punch_prompts_fit_the_call_time_budget(language: str) -> None:
    """The prompts of a punch call leave room for keys and waits within 20 s / 25 s."""
    durations = prompt_durations(SOUNDS_ROOT, language)
    dedicated = sum(durations[prompt_id] for prompt_id in DEDICATED_ARRIVAL_PROMPTS)
    shared = dedicated + durations["enter-company-code"]
    assert dedicated <= DEDICATED_ARRIVAL_PROMPT_BUDGET_S
    assert shared <= SHARED_ARRIVAL_PROMPT_BUDGET_S


def test_committed_sounds_say_the_catalogue_text() -> None:
    """The manifest written with the sounds matches the catalogue: text edits were regenerated."""
    rows = make_sounds.read_manifest(SOUNDS_ROOT)
    for language, prompt_id in ALL_SOUNDS:
        seconds, text = rows[(language, prompt_id)]
        assert text == prompt_text(prompt_id, language), (language, prompt_id)
        assert seconds == pytest.approx(
            prompt_durations(SOUNDS_ROOT, language)[prompt_id], abs=0.01
        )


def test_missing_prompts_finds_a_removed_file(tmp_path: Path) -> None:
    """Removing one WAV from a copy of the sounds is reported with its language and path."""
    sounds = _copy_sounds(tmp_path)
    removed = sounds / "en" / "telegestion" / "goodbye.wav"
    removed.unlink()
    assert missing_prompts(sounds, ["fr", "en"]) == [MissingPrompt("en", "goodbye", removed)]
    assert missing_prompts(sounds, ["fr"]) == []


def test_missing_prompts_counts_an_empty_file_as_missing(tmp_path: Path) -> None:
    """A zero-byte sound file would play nothing, so it is reported."""
    sounds = _copy_sounds(tmp_path)
    (sounds / "fr" / "telegestion" / "welcome.wav").write_bytes(b"")
    assert [m.prompt_id for m in missing_prompts(sounds, ["fr"])] == ["welcome"]


def test_missing_prompts_accepts_another_asterisk_format(tmp_path: Path) -> None:
    """A site that converted a prompt to GSM still has it installed."""
    sounds = _copy_sounds(tmp_path)
    folder = sounds / "fr" / "telegestion"
    (folder / "goodbye.wav").unlink()
    (folder / "goodbye.gsm").write_bytes(b"\xd0" * 33)
    assert missing_prompts(sounds, ["fr"]) == []


def test_missing_prompts_on_an_empty_tree_lists_everything(tmp_path: Path) -> None:
    """With no sounds installed every prompt of every asked language is missing."""
    missing = missing_prompts(tmp_path, LANGUAGES)
    assert len(missing) == len(LANGUAGES) * len(SPEC_PROMPT_IDS)
    assert {(m.language, m.prompt_id) for m in missing} == set(ALL_SOUNDS)


def test_prompt_durations_read_the_wav_header(tmp_path: Path) -> None:
    """Durations come from each file's header: a 1.5 s file reads as 1.5 s."""
    sounds = _copy_sounds(tmp_path)
    _write_wav(sounds / "fr" / "telegestion" / "welcome.wav", frames=12000)
    durations = prompt_durations(sounds, "fr")
    assert list(durations) == list(SPEC_PROMPT_IDS)
    assert durations["welcome"] == pytest.approx(1.5)


def test_prompt_durations_reject_a_missing_file(tmp_path: Path) -> None:
    """A missing WAV is an error, not a prompt of length zero."""
    sounds = _copy_sounds(tmp_path)
    (sounds / "en" / "telegestion" / "goodbye.wav").unlink()
    with pytest.raises(FileNotFoundError):
        prompt_durations(sounds, "en")


def test_prompt_durations_reject_a_file_that_is_not_wav(tmp_path: Path) -> None:
    """A corrupt file is named in the error."""
    sounds = _copy_sounds(tmp_path)
    (sounds / "fr" / "telegestion" / "goodbye.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match=r"goodbye\.wav"):
        prompt_durations(sounds, "fr")


@pytest.mark.parametrize(
    ("hour", "minute", "language", "expected"),
    [
        (10, 32, "fr", "dix heures trente-deux"),
        (1, 0, "fr", "une heure"),
        (21, 1, "fr", "vingt et une heures une"),
        (17, 41, "fr", "dix-sept heures quarante et une"),
        (8, 5, "fr", "huit heures cinq"),
        (20, 0, "fr", "vingt heures"),
        (0, 5, "fr", "minuit cinq"),
        (0, 0, "fr", "minuit"),
        (12, 0, "fr", "midi"),
        (12, 45, "fr", "midi quarante-cinq"),
        (10, 32, "en", "ten thirty-two a.m."),
        (14, 5, "en", "two oh five p.m."),
        (9, 0, "en", "nine a.m."),
        (23, 59, "en", "eleven fifty-nine p.m."),
        (0, 15, "en", "twelve fifteen a.m."),
        (12, 30, "en", "twelve thirty p.m."),
        (0, 0, "en", "midnight"),
        (12, 0, "en", "noon"),
    ],
)
def test_time_phrase_reads_a_clock_time(
    hour: int, minute: int, language: str, expected: str
) -> None:
    """A punch time is written in words the way a voice of that language reads it."""
    assert time_phrase(hour, minute, language) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_time_phrase_tells_every_minute_of_the_day_apart(language: str) -> None:
    """No two times of day read the same, and none falls back to digits."""
    phrases = {time_phrase(h, m, language) for h in range(24) for m in range(60)}
    assert len(phrases) == 24 * 60
    assert not any(ch.isdigit() for phrase in phrases for ch in phrase)


@pytest.mark.parametrize(("hour", "minute"), [(24, 0), (-1, 0), (10, 60), (10, -1)])
def test_time_phrase_rejects_impossible_times(hour: int, minute: int) -> None:
    """An hour outside 0-23 or a minute outside 0-59 is a bug upstream, reported as such."""
    with pytest.raises(ValueError):
        time_phrase(hour, minute, "fr")


def test_make_sounds_without_tools_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without espeak-ng and sox the generator exits 2 with one line and writes nothing."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    out = tmp_path / "out"
    assert make_sounds.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "espeak-ng" in err and "sox" in err
    assert not out.exists()


def test_spoken_text_keeps_unfinished_sentences_open() -> None:
    """A readback that the time completes is voiced with a comma, a full sentence unchanged."""
    assert make_sounds.spoken_text("Arrivée enregistrée à") == "Arrivée enregistrée à,"
    assert make_sounds.spoken_text("Au revoir.") == "Au revoir."


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox are not installed (apt-get install espeak-ng sox)",
)
def test_make_sounds_renders_an_asterisk_wav(tmp_path: Path) -> None:
    """With the tools present one prompt renders as 8 kHz mono 16-bit, as long as committed."""
    path = make_sounds.render_prompt(tmp_path, "fr", "goodbye", tmp_path)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        seconds = wav.getnframes() / 8000
    assert seconds == pytest.approx(prompt_durations(SOUNDS_ROOT, "fr")["goodbye"], rel=0.1)
