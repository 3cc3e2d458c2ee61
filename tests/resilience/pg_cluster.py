"""A throwaway PostgreSQL 15 cluster that a test (or the soak bench) owns outright.

The shared test server cannot be stopped, killed or frozen without breaking every other test
that uses it, so the fault-injection tests start their own: ``initdb`` into a fresh folder, a
postmaster on a free port of 127.0.0.1 with its Unix socket inside that folder, trust auth and
no fsync (a crash of the *process* loses nothing the kernel already holds, which is the crash
these tests make; a power cut is not simulated). Commits stay synchronous: with
``synchronous_commit=off`` a kill -9 loses the last commits, which would be our loss, not the
product's.

PostgreSQL refuses to run as root; CI runs as root, so the cluster then belongs to the
``postgres`` user: the folder is chowned to it and every server binary runs under its uid. The
postmaster is started directly (not through ``pg_ctl``) as our child, in its own session, so
that its pid is known without reading ``postmaster.pid`` and a signal to the test's own group
never reaches it; kill -9 and SIGSTOP go to it and to each of its children.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

PG_BIN = Path(os.environ.get("TELEGESTION_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"

#: Settings for a disposable server: quick to start, quick to crash-recover, small.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "100",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped; the message says why."""


def binaries_present(bin_dir: Path = PG_BIN) -> bool:
    return all((bin_dir / name).is_file() for name in ("initdb", "postgres", "pg_isready"))


def absent_binaries_policy(bin_dir: Path, environ: Mapping[str, str]) -> tuple[str, str]:
    """What a test does about this machine's PostgreSQL: ``("run", "")``, or ``("skip", why)``
    without the binaries, or ``("fail", why)`` when ``TELEGESTION_REQUIRE_POSTGRES=1`` (CI)."""
    if binaries_present(bin_dir):
        return "run", ""
    why = f"PostgreSQL server binaries not found in {bin_dir} (set TELEGESTION_PG_BIN)"
    if environ.get("TELEGESTION_REQUIRE_POSTGRES") == "1":
        return "fail", f"TELEGESTION_REQUIRE_POSTGRES=1 but {why}"
    return "skip", why


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_account() -> tuple[int, int] | None:
    """The uid/gid to run the server as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ClusterError(
            f"running as root, and PostgreSQL refuses root: create the {SERVER_USER!r} user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, read from /proc.

    A process group will not do: each backend calls setsid() and leads its own group.
    """
    children = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, parent = fields[0], int(fields[1])
        if parent == pid and state not in ("Z", "X"):
            children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


class PgCluster:
    """One PostgreSQL server in its own folder; see the module docstring.

    ``url`` is for SQLAlchemy; the server keeps its port across stop/kill/start, so a client
    configured once reconnects after a restart, as with a production server.
    """

    def __init__(
        self, *, bin_dir: Path = PG_BIN, port: int | None = None, template: Path | None = None
    ) -> None:
        if not binaries_present(bin_dir):
            raise ClusterError(f"PostgreSQL binaries not found in {bin_dir}")
        self.bin_dir = bin_dir
        self.account = _server_account()
        # Not pytest's tmp_path: that sits under a 0700 folder of root the server user cannot
        # cross. A fresh folder of /tmp, given to the server user, is reachable by both.
        self.base = Path(tempfile.mkdtemp(prefix="tg-pg-"))
        self.data = self.base / "data"
        self.socket_dir = self.base / "sock"
        self.log_file = self.base / "server.log"
        self.socket_dir.mkdir()
        if self.account is not None:
            for path in (self.base, self.socket_dir):
                os.chown(path, *self.account)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False
        self._initialised = False
        #: a data folder made by an earlier :meth:`init`, copied instead of running initdb again
        self.template = template

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``postgresql+psycopg2://postgres@127.0.0.1:PORT/postgres``."""
        return f"postgresql+psycopg2://{SERVER_USER}@{self.host}:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def frozen(self) -> bool:
        return self._frozen

    # -- life cycle ---------------------------------------------------------------------------

    def _as_server(self) -> dict[str, object]:
        if self.account is None:
            return {}
        uid, gid = self.account
        return {"user": uid, "group": gid, "extra_groups": []}

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
        if self.account is not None:
            env.update(HOME=str(self.base), USER=SERVER_USER, LOGNAME=SERVER_USER)
        return env

    def init(self) -> None:
        """``initdb``: an empty cluster, user ``postgres``, trust auth, UTF-8.

        With a ``template``, a copy of it (owner and modes kept), which takes a tenth of the time.
        """
        if self.template is not None:
            copied = subprocess.run(
                ["cp", "-a", str(self.template), str(self.data)], capture_output=True, text=True
            )
            if copied.returncode != 0:
                raise ClusterError(f"cannot copy {self.template}: {copied.stderr.strip()}")
            self._initialised = True
            return
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=self.base,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            **self._as_server(),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")
        self._initialised = True

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and return once it accepts connections."""
        if not self._initialised:
            self.init()
        if self.running:
            raise ClusterError("the cluster is already running")
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        argv += ["-c", f"unix_socket_directories={self.socket_dir}"]
        for name, value in SERVER_SETTINGS.items():
            argv += ["-c", f"{name}={value}"]
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                cwd=self.base,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_server(),  # type: ignore[arg-type]
            )
        self._frozen = False
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``pg_isready`` until the server accepts connections (crash recovery included)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                raise ClusterError(f"the postmaster exited during start-up:\n{self.log_tail()}")
            ready = subprocess.run(
                [
                    str(self.bin_dir / "pg_isready"),
                    "-q",
                    "-h",
                    self.host,
                    "-p",
                    str(self.port),
                    "-U",
                    SERVER_USER,
                    "-t",
                    "2",
                ],
                env=self._env(),
                check=False,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"not ready after {timeout:g} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def server_processes(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, WAL writer...)."""
        pid = self.pid
        return [] if pid is None else [pid, *_children(pid)]

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Shut down: ``smart`` (wait for clients), ``fast`` (end them) or ``immediate``.

        The postmaster exits only after its children, so nothing of the server is left.
        """
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if mode not in signals:
            raise ValueError(f"unknown shutdown mode {mode!r}")
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.thaw()
        proc.send_signal(signals[mode])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ClusterError(f"{mode} shutdown took over {timeout:g} s; killed") from None

    def kill(self) -> None:
        """kill -9 of the whole server (postmaster and every child at once), as a crash would.

        The postmaster is stopped first so that it forks nothing between the listing of its
        children and the kill. The next :meth:`start` runs crash recovery.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGSTOP)
        victims = [proc.pid, *_children(proc.pid)]
        _signal_all(victims, signal.SIGKILL)
        proc.wait(10)
        self._frozen = False
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in victims) and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the server: connections are accepted by the kernel but nothing answers."""
        pid = self.pid
        if pid is None:
            raise ClusterError("cannot freeze a cluster that is not running")
        os.kill(pid, signal.SIGSTOP)  # first, so that no child appears unfrozen
        _signal_all(_children(pid), signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`; harmless otherwise."""
        pid = self.pid
        if self._frozen and pid is not None:
            _signal_all([*_children(pid), pid], signal.SIGCONT)
        self._frozen = False

    def destroy(self) -> None:
        """Stop whatever runs (immediately) and delete the folder; safe to call twice."""
        try:
            if self.running:
                self.thaw()
                with contextlib.suppress(ClusterError):
                    self.stop("immediate", timeout=10)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A started cluster, destroyed on the way out whatever happened inside."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
