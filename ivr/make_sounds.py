"""Regenerate the prompt sound files from the catalogue's text.

Usage: ``python -m ivr.make_sounds [--out asterisk_conf/sounds] [--language fr] ...``

The sounds are made by Debian's ``espeak-ng`` and ``sox`` rather than recorded so that a
wording change in ``ivr.prompt_catalogue`` is one command away from the files Asterisk plays,
and so that anyone can rebuild them: no studio, no licence on a voice. Everything the carer
hears is decided here:

- a slower than default voice with a small gap between words (carers are often older, in a
  hurry, on a poor line, and not always fluent in French);
- leading and trailing silence cut, so that prompts chain without dead air and the call stays
  inside the SPEC.md section 3 budget;
- gentle compression and a fixed peak level, so every prompt is as loud as the next;
- 8 kHz mono 16-bit signed PCM in a RIFF/WAV file: what Asterisk's ``wav`` format reads
  without transcoding to a telephone codec.

Output is byte-for-byte repeatable with the same espeak-ng and sox versions (sox's dither, its
only random step, is turned off).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.prompt_catalogue import (
    LANGUAGES,
    PROMPT_IDS,
    SOUND_SUBDIRECTORY,
    prompt_text,
    sound_file,
    wav_duration,
)

DEFAULT_OUT = Path("asterisk_conf") / "sounds"
MANIFEST_NAME = "prompts.tsv"
REQUIRED_TOOLS: tuple[str, ...] = ("espeak-ng", "sox")

SAMPLE_RATE_HZ = 8000
PEAK_DBFS = -2.0
# espeak-ng pads with digital silence; anything quieter than this for 10 ms is trimmed.
SILENCE_THRESHOLD_DB = -55


@dataclass(frozen=True)
class VoiceSettings:
    """How espeak-ng speaks one language: slower than its default, for a phone line."""

    voice: str
    words_per_minute: int
    word_gap_10ms: int
    pitch: int


# espeak-ng's default speed is 175 words per minute: too fast for our callers.
VOICES: dict[str, VoiceSettings] = {
    "fr": VoiceSettings(voice="fr-fr", words_per_minute=150, word_gap_10ms=1, pitch=45),
    "en": VoiceSettings(voice="en-gb", words_per_minute=155, word_gap_10ms=1, pitch=45),
}


class SoundToolError(Exception):
    """A tool is missing or failed; the message is the one line shown to the user."""


def check_tools(which: Callable[[str], str | None] = shutil.which) -> None:
    """Fail before writing anything if a tool is missing, naming the package to install."""
    missing = [tool for tool in REQUIRED_TOOLS if which(tool) is None]
    if missing:
        raise SoundToolError(
            f"{' and '.join(missing)} not found on PATH; install with: "
            "apt-get install espeak-ng sox"
        )


def espeak_command(settings: VoiceSettings, text_file: Path, raw_wav: Path) -> list[str]:
    """The espeak-ng call; the text is read from a UTF-8 file so the locale cannot garble it."""
    return [
        "espeak-ng",
        "-v",
        settings.voice,
        "-s",
        str(settings.words_per_minute),
        "-g",
        str(settings.word_gap_10ms),
        "-p",
        str(settings.pitch),
        "-b",
        "1",
        "-f",
        str(text_file),
        "-w",
        str(raw_wav),
    ]


def sox_command(raw_wav: Path, out_wav: Path) -> list[str]:
    """The sox call that turns espeak's 22 kHz output into an Asterisk-ready telephone prompt.

    Trimming is done on the reversed signal too, to cut the trailing pause as well as the
    leading one; a 10 ms fade at both ends keeps the cut from clicking.
    """
    trim = ["silence", "1", "0.01", f"{SILENCE_THRESHOLD_DB}d"]
    fade = ["fade", "q", "0.01"]
    return [
        "sox",
        "-V1",
        "-D",  # no dither: the only source of randomness, and useless on speech
        str(raw_wav),
        "-t",
        "wav",
        "-r",
        str(SAMPLE_RATE_HZ),
        "-c",
        "1",
        "-b",
        "16",
        "-e",
        "signed-integer",
        str(out_wav),
        *trim,
        *fade,
        "reverse",
        *trim,
        *fade,
        "reverse",
        "compand",
        "0.01,0.2",
        "-70,-70,-40,-28,-20,-14,0,-8",
        "rate",
        "-v",
        str(SAMPLE_RATE_HZ),
        "norm",
        str(PEAK_DBFS),
    ]


def _run(command: list[str]) -> None:
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    except OSError as exc:
        raise SoundToolError(f"cannot run {command[0]}: {exc}") from exc
    if result.returncode != 0:
        detail = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise SoundToolError(f"{command[0]} failed: {detail}")


def spoken_text(text: str) -> str:
    """The text as handed to espeak-ng.

    A prompt that does not end a sentence ("Arrivée enregistrée à") is followed at once by the
    spoken time; a trailing comma gives it the rising tone of an unfinished sentence instead of
    the falling tone of a full stop. The pause the comma adds is trimmed with the silence.
    """
    return text if text.endswith((".", "?", "!")) else f"{text},"


def render_prompt(out_root: Path, language: str, prompt_id: str, workdir: Path) -> Path:
    """Write one prompt's WAV file, replacing any previous one only once it is complete."""
    target = sound_file(out_root, language, prompt_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    text_file = workdir / f"{language}-{prompt_id}.txt"
    raw_wav = workdir / f"{language}-{prompt_id}.raw.wav"
    text_file.write_text(spoken_text(prompt_text(prompt_id, language)) + "\n", encoding="utf-8")
    _run(espeak_command(VOICES[language], text_file, raw_wav))
    partial = target.with_name(f".{target.name}.partial")
    try:
        _run(sox_command(raw_wav, partial))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def stale_files(out_root: Path, language: str) -> list[Path]:
    """WAV files left from prompts no longer in the catalogue: reported, never deleted."""
    folder = out_root / language / SOUND_SUBDIRECTORY
    if not folder.is_dir():
        return []
    known = {f"{prompt_id}.wav" for prompt_id in PROMPT_IDS}
    return sorted(path for path in folder.glob("*.wav") if path.name not in known)


def read_manifest(out_root: Path) -> dict[tuple[str, str], tuple[float, str]]:
    """The manifest's rows: (language, prompt id) -> (seconds, text the file was made from)."""
    path = out_root / MANIFEST_NAME
    if not path.is_file():
        return {}
    rows: dict[tuple[str, str], tuple[float, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        language, prompt_id, seconds, text = line.split("\t", 3)
        if language == "language":  # header
            continue
        rows[(language, prompt_id)] = (float(seconds), text)
    return rows


def write_manifest(out_root: Path, rows: dict[tuple[str, str], tuple[float, str]]) -> Path:
    """Record which text each committed file says, so a test can catch a wording change that
    was not followed by a regeneration (CI has no espeak-ng to check the audio itself)."""
    path = out_root / MANIFEST_NAME
    lines = [
        "# Written by `python -m ivr.make_sounds`; do not edit by hand.",
        "language\tprompt_id\tseconds\ttext",
    ]
    for language in LANGUAGES:
        for prompt_id in PROMPT_IDS:
            if (language, prompt_id) in rows:
                seconds, text = rows[(language, prompt_id)]
                lines.append(f"{language}\t{prompt_id}\t{seconds:.2f}\t{text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def generate(out_root: Path, languages: Sequence[str]) -> list[tuple[Path, float]]:
    """Render every prompt of ``languages``; returns each file with its duration in seconds."""
    check_tools()
    written: list[tuple[Path, float]] = []
    manifest = read_manifest(out_root)
    with tempfile.TemporaryDirectory(prefix="telegestion-sounds-") as tmp:
        for language in languages:
            for prompt_id in PROMPT_IDS:
                path = render_prompt(out_root, language, prompt_id, Path(tmp))
                seconds = wav_duration(path)
                written.append((path, seconds))
                manifest[(language, prompt_id)] = (seconds, prompt_text(prompt_id, language))
    write_manifest(out_root, manifest)
    return written


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ivr.make_sounds",
        description="Regenerate the IVR prompt WAV files (8 kHz mono 16-bit) with espeak-ng and "
        "sox, from the texts in ivr/prompt_catalogue.py.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="sounds root; files go to OUT/<language>/telegestion/<prompt id>.wav "
        "(default: %(default)s, relative to the current directory)",
    )
    parser.add_argument(
        "--language",
        action="append",
        choices=LANGUAGES,
        help="only this language (repeatable; default: all)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    languages: list[str] = args.language or list(LANGUAGES)
    try:
        written = generate(args.out, languages)
    except (SoundToolError, OSError) as exc:
        print(f"make_sounds: error: {exc}", file=sys.stderr)
        return 2
    for path, seconds in written:
        print(f"{seconds:5.2f} s  {path}")
    for language in languages:
        for path in stale_files(args.out, language):
            print(f"make_sounds: warning: {path} is not in the catalogue (left in place)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
