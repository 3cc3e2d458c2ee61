"""``telegestion``: the one entry point (SPEC.md section 6).

Each command lives in its own module under ``telegestion.commands`` and registers itself here.
Whatever goes wrong, the user gets one line on stderr and exit status 2, never a traceback:
the people running imports at 7 a.m. are coordinators, not Python programmers.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from .commands.context import SchemaNotReady, UsageError
from .settings import SettingsError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


COMMAND_MODULES = (
    "telegestion.commands.db",
    "telegestion.commands.importing",
    "telegestion.commands.serve",
    "telegestion.commands.call",
    "telegestion.commands.reconcile",
    "telegestion.commands.anomalies",
    "telegestion.commands.export",
    "telegestion.commands.trace",
    "telegestion.commands.demo",
    "telegestion.commands.user",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="telegestion",
        description="Télégestion server: IVR punches, call-back, reconciliation and exports.",
        epilog="Settings come from TELEGESTION_* environment variables and an optional "
        "telegestion.toml (TELEGESTION_CONFIG); see README.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (UsageError, SettingsError, SchemaNotReady) as exc:
        message = str(exc)
    except OperationalError as exc:
        message = f"database unreachable or refused the operation: {_one_line(str(exc.orig))}"
    except DBAPIError as exc:
        message = f"database error: {_one_line(str(exc.orig))}"
    except SQLAlchemyError as exc:
        message = f"database error: {_one_line(str(exc))}"
    except KeyboardInterrupt:
        message = "interrupted"
    except Exception as exc:
        if os.environ.get("TELEGESTION_DEBUG"):
            raise
        message = (
            f"internal error ({type(exc).__name__}: {_one_line(str(exc))});"
            " set TELEGESTION_DEBUG=1 for details"
        )
    print(f"telegestion {args.command}: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
