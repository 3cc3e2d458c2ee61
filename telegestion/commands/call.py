"""``telegestion call``: try a running server without a telephone system.

Acts as Asterisk on the wire (``ivr.asterisk_sim``): sends the ``agi_*`` block, answers every
command the way Asterisk 22 does, plays each prompt for as long as its real sound file lasts,
and types the keys like a carer would. Prints the dialogue and the outcome.
"""

from __future__ import annotations

import argparse
from typing import Any

from .context import UsageError

KEYS_HELP = (
    "what the carer keys. Plain groups separated by spaces are typed over each prompt in turn "
    "(\"042 12345\"). For finer control: ',' waits until a prompt has finished and keys are "
    "asked, '>' waits until keys are asked (typing over the prompt), 'W'/'w' pause 1 s / 0.5 s, "
    "'H' hangs up, e.g. ',042,12345,2'."
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "call",
        help="place a simulated call on a running server (acting as Asterisk)",
        description="Place one simulated call on a running `telegestion serve`, acting as "
        "Asterisk over FastAGI, and print the dialogue (prompts and keys) and the outcome.",
    )
    parser.add_argument(
        "--from",
        dest="caller",
        required=True,
        help="caller number (the client's landline); 'anonymous' or '' for none",
    )
    parser.add_argument("--to", dest="called", required=True, help="called (toll-free) number")
    parser.add_argument("--keys", default="", help=KEYS_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="FastAGI server host")
    parser.add_argument("--port", type=int, default=None, help="FastAGI port (default 4573)")
    parser.add_argument(
        "--language",
        default="fr",
        choices=("fr", "en"),
        help="the channel's language before the company is known",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="play prompts and keys this many times faster (default 1: real time)",
    )
    parser.add_argument("--wire", action="store_true", help="also print every AGI line")
    parser.add_argument(
        "--hang-up-after",
        type=float,
        default=None,
        help="hang up this many seconds after the answer",
    )
    parser.set_defaults(func=run)


def key_script(spec: str) -> list[Any]:
    from ivr.asterisk_sim import WaitForInput, parse_keys

    if not any(ch in spec for ch in ",>Ww H"):
        return [WaitForInput(), *parse_keys(spec)] if spec else []
    if " " in spec and not any(ch in spec for ch in ",>WwH"):
        script: list[Any] = []
        for group in spec.split():
            script += [WaitForInput(), *parse_keys(group)]
        return script
    return parse_keys(spec.replace(" ", ""))


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from ivr.asterisk_sim import SimulatedCall, accelerated, place_call
    from ivr.prompt_catalogue import prompt_durations, sound_path
    from ivr.server import BUNDLED_SOUNDS

    from ..settings import load_settings

    if args.speed <= 0:
        raise UsageError("--speed must be positive")
    try:
        script = key_script(args.keys)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    durations: dict[str, float] = {}
    try:
        for prompt_id, seconds in prompt_durations(BUNDLED_SOUNDS, args.language).items():
            durations[sound_path(prompt_id)] = seconds
    except (FileNotFoundError, ValueError):
        pass
    call = SimulatedCall(
        called=args.called,
        caller=None if args.caller.strip().lower() in ("", "none") else args.caller,
        script=tuple(script),
        durations=durations,
        language=args.language,
        hang_up_after=args.hang_up_after,
    )
    if args.speed != 1.0:
        call = accelerated(call, args.speed)
    port = args.port or load_settings().agi_port
    result: dict[str, Any] = {}

    def done(record: Any) -> None:
        result["record"] = record
        reactor.stop()  # type: ignore[attr-defined]

    def failed(failure: Any) -> None:
        result["error"] = failure.getErrorMessage()
        reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(  # type: ignore[attr-defined]
        lambda: place_call(reactor, args.host, port, call).addCallbacks(done, failed)  # type: ignore[arg-type]
    )
    reactor.run()  # type: ignore[attr-defined]
    if "error" in result:
        raise UsageError(f"call failed: {result['error']}")
    record = result["record"]
    if not record.connected:
        raise UsageError(
            f"no FastAGI server answered at {args.host}:{port} (is `telegestion serve` running?)"
        )
    print(record.render(wire=args.wire))
    status = record.variables.get("TELEGESTION_STATUS")
    print(f"outcome: {status or 'none (the server set no TELEGESTION_STATUS)'}")
    return 0 if status else 1
