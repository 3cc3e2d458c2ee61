"""A real worker under load, for the fault tests and the soak bench.

- :func:`seed_directory` puts the synthetic directory of ``call_load.py`` into a database.
- :class:`ServeProcess` runs ``telegestion serve`` as a child process on fixed ports, so that it
  can be SIGKILLed and started again with the same node name, spool folder and port.
- :class:`CallLoad` runs ``call_load.py`` in another process and collects one record per call;
  a test waits on those records (``wait_until``) to time its faults against the load.
- :func:`check_punches` is the verdict: every call that heard a readback has exactly one punch,
  key (node, uniqueid), of the kind it heard; :func:`wait_for_punches` polls it to a deadline,
  while the spool replays.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from call_load import DEDICATED, SHARED, carer_code, landline
from pg_cluster import free_port
from sqlalchemy import create_engine, select

from telegestion import migrate
from telegestion.db import make_session_factory
from telegestion.importing import import_file
from telegestion.model import Punch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: The worker's environment for a fault run: short server-side waits so an accelerated caller's
#: call stays short, a small pool as in the benchmarks, and a one-second wait for the database
#: before a call goes on from the spool.
FAST_FLOW_ENV: dict[str, str] = {
    "TELEGESTION_DB_POOL_SIZE": "4",
    "TELEGESTION_DB_WAIT_S": "1",
    "TELEGESTION_FLOW_CODE_TIMEOUT_S": "4",
    "TELEGESTION_FLOW_ARRIVAL_READBACK_WAIT_S": "0.4",
    "TELEGESTION_FLOW_DEPARTURE_READBACK_WAIT_S": "0.4",
    "TELEGESTION_FLOW_TASK_CODES_TIMEOUT_S": "1",
}


# --------------------------------------------------------------------------------------------
# The directory
# --------------------------------------------------------------------------------------------


def seed_directory(url: str, per_company: int, folder: Path) -> None:
    """Schema at head, then companies 042 (shared number) and 117 (dedicated), each with
    ``per_company`` carers and one client per carer, imported from CSV as an agency would."""
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        folder.mkdir(parents=True, exist_ok=True)
        rows: dict[str, list[list[str]]] = {
            "companies": [
                ["code", "name", "timezone", "region", "language"],
                ["042", "Aide à Domicile du Val de Marne", "Europe/Paris", "FR", "fr"],
                ["117", "Les Jardins de l'Âge", "Europe/Paris", "FR", "fr"],
            ],
            "numbers": [
                ["number", "kind", "company_code"],
                [SHARED, "shared", ""],
                [DEDICATED, "dedicated", "117"],
            ],
            "clients": [["company_code", "client_ref", "name", "landlines"]],
            "carers": [["company_code", "carer_ref", "carer_code", "name", "mobile", "active"]],
        }
        for company, code in enumerate(("042", "117")):
            for i in range(per_company):
                rows["clients"].append([code, f"C{i}", f"Client {i}", landline(company, i)])
                rows["carers"].append([code, f"K{i}", carer_code(i), f"Carer {i}", "", "true"])
        for kind, table in rows.items():
            path = folder / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(table)
            import_file(sessions, kind, path)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------


class ServeError(RuntimeError):
    """``telegestion serve`` did not start or stop as expected; the message carries its log."""


class ServeProcess:
    """``telegestion serve`` in a child process; ``start`` again after a kill is a restart.

    The FastAGI port is chosen once and kept, as Asterisk's dialplan keeps its address.
    ``env`` is added to a clean environment (no TELEGESTION_* of the caller's).
    """

    def __init__(
        self,
        database_url: str,
        *,
        node: str,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        agi_port: int | None = None,
        flow_env: Mapping[str, str] = FAST_FLOW_ENV,
    ) -> None:
        self.database_url = database_url
        self.node = node
        self.workdir = workdir
        self.extra_env = dict(env or {})
        self.flow_env = dict(flow_env)
        self.agi_port = agi_port or free_port()
        self.http_port: int | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.log_path = workdir / f"serve-{node}.log"
        self.spool_dir = workdir / "spool"
        self.starts = 0
        workdir.mkdir(parents=True, exist_ok=True)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
        env.update(self.flow_env)
        env.update(
            TELEGESTION_DATABASE_URL=self.database_url,
            TELEGESTION_NODE=self.node,
            # Explicit, so a restart finds the spool and directory copy of the killed process.
            TELEGESTION_SPOOL_DIR=str(self.spool_dir),
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> None:
        """Start and return once it listens (its first stdout line says so)."""
        if self.running:
            raise ServeError("already running")
        self.starts += 1
        log = self.log_path.open("a", encoding="utf-8")
        log.write(f"---- start {self.starts} at {time.time():.3f}\n")
        log.flush()
        argv = [sys.executable, "-m", "telegestion.cli", "serve"]
        argv += ["--agi-port", str(self.agi_port), "--http-port", "0", "--listen", "127.0.0.1"]
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        log.close()
        line_box: list[str] = []
        reader = threading.Thread(target=self._read_stdout, args=(self.proc, line_box), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while not line_box:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                reader.join(1)
                self.kill()
                raise ServeError(
                    f"serve (node {self.node}) did not start: exit {self.proc.returncode}\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.02)
        match = re.search(r"FastAGI on [\d.]+:(\d+), HTTP on port (\d+)", line_box[0])
        if match is None:
            self.kill()
            raise ServeError(f"unexpected first line from serve: {line_box[0]!r}")
        self.http_port = int(match.group(2))

    def _read_stdout(self, proc: subprocess.Popen[str], box: list[str]) -> None:
        """Hand over the first line, then keep the pipe drained into the log."""
        assert proc.stdout is not None
        for line in proc.stdout:
            if not box:
                box.append(line)
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(line)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.running else None  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as from the OOM killer (the page cache survives)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit status once it has stopped (killed after ``timeout``)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise ServeError(f"serve ignored SIGTERM for {timeout:g} s") from None
        return self.proc.returncode

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=5) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def caught_up(self) -> bool:
        """The worker says its database is up and its spool is empty: nothing more will land."""
        try:
            health = self.health()
        except Exception:  # 503 while offline, or not running
            return False
        spool = health.get("spool") or {}
        return health.get("offline") is False and spool.get("backlog") == 0

    def log_about(self, call_keys: Sequence[str], per_call: int = 6) -> str:
        """The worker's log lines naming each of these calls, for a failure message."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        out = []
        for key in call_keys:
            hits = [line for line in lines if f'"{key}"' in line][:per_call]
            out.append(f"-- {key}:\n" + "\n".join(hits))
        return "\n".join(out)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# The callers
# --------------------------------------------------------------------------------------------


class CallLoad:
    """``call_load.py`` in its own process; ``records`` fill in as calls end."""

    def __init__(
        self,
        port: int,
        *,
        rate: float,
        count: int,
        per_company: int,
        prefix: str,
        speed: float = 8.0,
        seed: int = 1,
    ) -> None:
        self.count = count
        #: calls actually placed, known at the end (fewer than ``count`` after stop_placing)
        self.placed: int | None = None
        self.records: list[dict[str, Any]] = []
        self.done = threading.Event()
        self._changed = threading.Condition()
        self._stderr: list[str] = []
        argv = [sys.executable, str(HERE / "call_load.py"), "--port", str(port)]
        argv += ["--rate", str(rate), "--count", str(count), "--per-company", str(per_company)]
        argv += ["--prefix", prefix, "--speed", str(speed), "--seed", str(seed)]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            with self._changed:
                if item.get("event") == "done":
                    self.placed = int(item["placed"])
                    self.done.set()
                else:
                    self.records.append(item)
                self._changed.notify_all()
        with self._changed:
            self.done.set()
            self._changed.notify_all()

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def wait_until(self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float) -> None:
        """Block until ``predicate(records)`` holds (or the load ends, or the time is up)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.records):
                left = deadline - time.monotonic()
                if left <= 0 or self.done.is_set():
                    why = "the load ended" if self.done.is_set() else f"after {timeout:g} s"
                    raise TimeoutError(
                        f"{why} before the awaited calls: {len(self.records)} of {self.count}"
                        f" calls ended, {sum(bool(r['heard']) for r in self.records)} heard"
                        " a readback"
                        + ("" if not self._stderr else f"; load stderr: {''.join(self._stderr)}")
                    )
                self._changed.wait(min(left, 0.5))

    def wait_heard(self, n: int, timeout: float = 60.0) -> None:
        """Until at least ``n`` calls have heard a readback."""
        self.wait_until(lambda records: sum(r["heard"] is not None for r in records) >= n, timeout)

    def stop_placing(self) -> None:
        """Place no new call; :meth:`finish` then returns once the calls up have ended."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)

    def finish(self, timeout: float = 120.0, *, stop_placing: bool = False) -> list[dict[str, Any]]:
        """Wait for every call placed to end; the records."""
        if stop_placing:
            self.stop_placing()
        if not self.done.wait(timeout):
            self.stop()
            raise TimeoutError(f"load not finished after {timeout:g} s")
        self.proc.wait(10)
        if self.placed is None or len(self.records) != self.placed:
            raise AssertionError(
                f"the load reported {len(self.records)} of {self.placed} calls placed; "
                f"stderr: {''.join(self._stderr)[-2000:]}"
            )
        return list(self.records)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the database holds for the calls placed, against what the carers heard."""

    heard: int
    #: heard a readback, no punch with that key
    lost: tuple[str, ...]
    #: more than one punch for one call (any origin: a replay under another key counts)
    duplicated: tuple[str, ...]
    #: the punch exists but its kind is not the one read back
    wrong_kind: tuple[tuple[str, str, str], ...]
    #: punches of calls that heard no readback (allowed: stored, then the line dropped)
    unheard_punches: int
    punches: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong_kind)

    def describe(self) -> str:
        return (
            f"{self.heard} calls heard a readback; {self.punches} punches; "
            f"lost {len(self.lost)} {list(self.lost[:5])}; "
            f"duplicated {len(self.duplicated)} {list(self.duplicated[:5])}; "
            f"wrong kind {len(self.wrong_kind)} {list(self.wrong_kind[:5])}"
        )


def check_punches(url: str, node: str, records: Sequence[Mapping[str, Any]]) -> Verdict:
    """Every call that heard a readback has one punch (node, uniqueid) of the kind it heard."""
    uids = {r["uid"] for r in records}
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Punch.origin, Punch.call_key, Punch.kind)).all()
    finally:
        engine.dispose()
    per_call = Counter(row.call_key for row in rows if row.call_key in uids)
    kinds = {row.call_key: row.kind for row in rows if row.origin == node}
    heard = [r for r in records if r.get("heard")]
    lost = tuple(r["uid"] for r in heard if r["uid"] not in kinds)
    wrong = tuple(
        (r["uid"], r["heard"], kinds[r["uid"]])
        for r in heard
        if r["uid"] in kinds and kinds[r["uid"]] != r["heard"]
    )
    heard_uids = {r["uid"] for r in heard}
    return Verdict(
        heard=len(heard),
        lost=lost,
        duplicated=tuple(uid for uid, n in per_call.items() if n > 1),
        wrong_kind=wrong,
        unheard_punches=sum(1 for uid in per_call if uid not in heard_uids),
        punches=sum(per_call.values()),
    )


def wait_for_punches(
    url: str,
    node: str,
    records: Sequence[Mapping[str, Any]],
    timeout: float = 30.0,
    *,
    settled: Callable[[], bool] = lambda: False,
) -> Verdict:
    """Poll :func:`check_punches` until nothing is missing or wrong (the spool has replayed:
    a spooled kind overwrites one a timed-out write left behind) or the deadline passes; the
    last verdict either way. A duplicate never heals, so it ends the wait at once; so does
    ``settled()`` (say, :meth:`ServeProcess.caught_up`) once it holds: nothing more will come."""
    deadline = time.monotonic() + timeout
    while True:
        final = settled()
        try:
            verdict = check_punches(url, node, records)
        except Exception:  # the database may still be coming back
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
            continue
        if verdict.ok or verdict.duplicated or final:
            return verdict
        if time.monotonic() > deadline:
            return verdict
        time.sleep(0.25)


def ended_within(records: Sequence[Mapping[str, Any]], start: float, end: float) -> list[dict]:
    """Calls answered after ``start`` and hung up before ``end`` (wall clock): inside a window."""
    return [
        dict(r)
        for r in records
        if r.get("t_answer") is not None and r["t_answer"] >= start and r["t_hangup"] <= end
    ]
