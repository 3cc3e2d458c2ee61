"""The classic AGI script: Asterisk starts it for each call (``AGI(telegestion.agi,…)``).

It runs the same call program as the FastAGI server (``ivr.agi_call``), over pyst2 on
stdin/stdout, with the same journal, punch key (node, ``agi_uniqueid``), lock-out and outcomes.

A process per call pays its start-up on every call, while the caller waits. So the script
answers first: before it the main thread imports only the wire grammar and pyst2 (a few tens
of milliseconds); the call program and the database layer (SQLAlchemy and the models: most of
the start-up) load on a second thread while Asterisk answers. Twisted is never imported, and
the engine has no pool: this process makes a handful of queries and exits.

Asterisk prints a script's stderr on its console, so a normal call writes nothing there:
pyst2's chatter goes to a null stream, Python warnings and our logging are held in memory, and
a call that goes wrong leaves exactly one line. The exit status (``EXIT_*`` below) is what
``AGISTATUS`` builds on: a non-zero exit while the channel is up gives ``FAILURE``, and the
dialplan can then apologise (``asterisk_conf/extensions_telegestion_agi.conf``).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from agi_scripts.held_errors import HeldErrors
    from agi_scripts.pyst2_channel import Pyst2Channel
    from ivr.call_record import CallRecord
    from ivr.effects import CallSummary, Effect, Reply
    from telegestion.settings import Settings

#: The call ran its course and its journal is written, whatever its business outcome
#: (``TELEGESTION_STATUS``), a caller who hung up included.
EXIT_OK = 0
#: The call ended in ``error`` (the carer heard technical-problem: database down, a prompt
#: missing on the Asterisk server, a bug), or its journal could not be written. One line on
#: stderr says why.
EXIT_CALL_FAILED = 1
#: The script could not start (bad settings, not run by Asterisk): nothing was said to the
#: caller, the channel is still up, and the dialplan sees ``AGISTATUS=FAILURE``.
EXIT_NOT_STARTED = 2

PROGRAM = "telegestion.agi"

# A SIGHUP before pyst2 installs its own handler must neither kill the process (the default
# action) nor be forgotten: the call is then over before it began, and is journaled so. A plain
# list, not an Event: a signal handler must not take locks.
_early_sighups: list[int] = []


def _on_early_sighup(signum: int, frame: FrameType | None) -> None:
    _early_sighups.append(signum)


class CallLoader(threading.Thread):
    """Loads the call program and the database layer while the main thread answers.

    A ``CallStore`` on an engine without a pool; it connects on the first query, so a database
    that is down shows up as a failed lookup (technical-problem for the carer), not here.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="telegestion-agi-load", daemon=True)
        self.settings = settings
        self.errors: HeldErrors | None = None
        self.store: Any = None
        self.engine: Any = None
        self.flow_settings: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            from agi_scripts.held_errors import hold_errors

            self.errors = hold_errors()  # before anything that may log
            import ivr.agi_call  # noqa: F401  - the call program, imported here, off the answer
            from ivr.flow_tuning import flow_settings

            self.flow_settings = flow_settings(self.settings)

            from sqlalchemy.pool import NullPool

            from ivr.call_store import CallStore
            from telegestion.db import make_engine, make_session_factory

            self.engine = make_engine(
                self.settings.database_url,
                statement_timeout_ms=self.settings.statement_timeout_ms,
                poolclass=NullPool,
            )
            self.store = CallStore(
                make_session_factory(self.engine),
                default_region=self.settings.default_region,
                preload_people=False,  # one call per process: ask for the one carer needed
            )
        except BaseException as exc:  # reported by the call, as a technical problem
            self.error = exc


class DatabaseLayer:
    """The ``CallStore`` seen by the call program; knows whether the journal got written."""

    def __init__(self, loader: CallLoader, errors: HeldErrors) -> None:
        self.loader = loader
        self.errors = errors
        self.default_region = loader.settings.default_region
        self.journaled = False

    def _store(self) -> Any:
        if self.loader.error is not None:
            error = self.loader.error
            raise RuntimeError(f"database layer failed to load: {type(error).__name__}: {error}")
        return self.loader.store

    def answer(self, effect: Effect, call: CallRecord) -> Reply:
        return self._store().answer(effect, call)

    def finish(self, call: CallRecord, summary: CallSummary) -> None:
        """Write the journal, then read it back: ``CallStore.finish`` never raises, and what it
        logs may be about later work (the reconciliation), so only the row says it is there."""
        try:
            self._store().finish(call, summary)
        except Exception as exc:
            self.errors.messages.append(f"call not journaled: {type(exc).__name__}: {exc}")
            return
        self.journaled = self._outcome_in_journal(call) == summary.outcome

    def _outcome_in_journal(self, call: CallRecord) -> str | None:
        from sqlalchemy import select

        from telegestion.model import Call

        query = select(Call.outcome).where(
            Call.origin == call.origin, Call.call_key == call.call_key
        )
        try:
            with self.loader.engine.connect() as conn:
                return conn.scalar(query)
        except Exception:  # the database went away: then the journal is not there either
            return None

    def close(self) -> None:
        if self.loader.engine is not None:
            self.loader.engine.dispose()


def main() -> NoReturn:
    """The console script ``telegestion-agi``: run one call, then leave at once.

    Asterisk waits for the process to end, and the interpreter's teardown of SQLAlchemy's
    module graph takes 0.1 to 0.3 s on every call. So the exit handlers run (work deferred
    to the end of the process, such as a postponed reconciliation, is done there) and then the
    process leaves without the teardown; everything worth keeping is committed by then.
    """
    status = run_script()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_handlers is None:  # not CPython: the ordinary, slower exit
        sys.exit(status)
    run_exit_handlers()
    sys.stderr.flush()
    os._exit(status)


def run_script() -> int:
    """Run one call on stdin/stdout; returns the exit status (``EXIT_*``)."""
    signal.signal(signal.SIGHUP, _on_early_sighup)
    # A short-lived process that allocates little once loaded: the collector would only slow
    # down the imports (SQLAlchemy builds many small objects).
    gc.disable()

    if os.isatty(sys.stdin.fileno()):
        print(
            f"{PROGRAM}: Asterisk runs this script for each call, from the dialplan: "
            "AGI(telegestion.agi,${EXTEN},${CALLERID(num)}); see asterisk_conf/README.md",
            file=sys.stderr,
        )
        return EXIT_NOT_STARTED

    from telegestion.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{PROGRAM}: not started: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return EXIT_NOT_STARTED

    from agi_scripts.pyst2_channel import Pyst2Channel
    from ivr.agi_wire import ChannelHungUp

    channel = Pyst2Channel.on_fds(sys.stdin.fileno(), sys.stdout.fileno())
    if _early_sighups:
        channel.hung_up = True
    loader = CallLoader(settings)
    loader.start()
    with contextlib.suppress(ChannelHungUp):
        channel.answer()  # a hang-up here reaches the call program at its own answer
    loader.join()
    from agi_scripts.held_errors import hold_errors

    database = DatabaseLayer(loader, loader.errors or hold_errors())
    try:
        return run_call(channel, database, settings)
    finally:
        database.close()


def run_call(channel: Pyst2Channel, database: DatabaseLayer, settings: Settings) -> int:
    """The call program on the answered channel, and the one-line verdict."""
    from agi_scripts.held_errors import one_line

    uniqueid = channel.env.uniqueid or "?"
    try:
        from ivr.agi_call import agi_call, execute_sync

        program = agi_call(
            channel.env,
            database,  # type: ignore[arg-type]
            node=settings.node,
            transport="agi",
            region=settings.default_region,
            answer_first=True,
            flow_settings=database.loader.flow_settings,
        )
        summary = execute_sync(program, channel)
    except Exception as exc:
        print(
            f"{PROGRAM}: call {uniqueid} failed: {type(exc).__name__}: {one_line(str(exc))}",
            file=sys.stderr,
        )
        return EXIT_CALL_FAILED
    problems = database.errors.messages
    failed = summary.outcome == "error" or not database.journaled
    if failed or problems:
        verdict = f"outcome {summary.outcome}"
        if not database.journaled:
            verdict += ", not journaled"
        reason = f": {one_line(problems[0])}" if problems else ""
        print(f"{PROGRAM}: call {uniqueid}: {verdict}{reason}", file=sys.stderr)
    return EXIT_CALL_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
