"""A private PostgreSQL server in a directory of its own, for development and tests.

Uses the Debian server binaries (/usr/lib/postgresql/<N>/bin) directly and never touches the system
cluster. Layout under *home*: `data/` (the cluster), `server.log`, and the unix socket. PostgreSQL refuses
to run as root, so when we are root every server command runs as the `postgres` OS user via runuser.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

PG_ROOT = Path("/usr/lib/postgresql")
PG_OS_USER = "postgres"
SUPERUSER = "postgres"
LOG_TAIL_LINES = 40
# sun_path is 108 bytes on Linux; the socket file name adds "/.s.PGSQL.<port>".
MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535")

_apt_updated = False


class PostgresError(RuntimeError):
    """The local PostgreSQL server could not be installed, initialised, started or used."""


class LocalPostgres:
    """One postmaster on 127.0.0.1:<port> whose cluster, log and socket all live under `home`."""

    def __init__(self, home: Path, port: int = 55432, fast: bool = False) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.fast = fast
        self.data_dir = self.home / "data"
        self.log_path = self.home / "server.log"

    # --------------------------------------------------------------- install

    @staticmethod
    def ensure_installed() -> Path:
        """Return the newest /usr/lib/postgresql/<N>/bin, apt-installing `postgresql` first if root."""
        found = _find_bindir()
        if found is not None:
            return found
        if os.geteuid() != 0:
            raise PostgresError(
                f"no PostgreSQL server binaries under {PG_ROOT}/<N>/bin and not root: "
                "run `apt-get install -y postgresql` (or `sudo ...`) first"
            )
        if shutil.which("apt-get") is None:
            raise PostgresError(f"no PostgreSQL server binaries under {PG_ROOT} and no apt-get to install them")
        # noninteractive: tzdata & co. must not prompt; the package's own cluster is left alone.
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        global _apt_updated
        if not _apt_updated:
            # Fresh CI images ship without package lists; one update per process is enough.
            _run(["apt-get", "update"], env=env, what="apt-get update")
            _apt_updated = True
        _run(["apt-get", "install", "-y", "postgresql"], env=env, what="apt-get install postgresql")
        found = _find_bindir()
        if found is None:
            raise PostgresError(f"apt-get installed postgresql but no {PG_ROOT}/<N>/bin/pg_ctl appeared")
        return found

    # ------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60) -> None:
        """initdb (once) and start the postmaster; a no-op when it is already running."""
        bindir = self.ensure_installed()
        self.home.mkdir(parents=True, exist_ok=True)
        if len(str(self.home)) > MAX_SOCKET_DIR_LEN:
            raise PostgresError(
                f"home {self.home} is too long for a unix socket directory (max {MAX_SOCKET_DIR_LEN} chars)"
            )
        with self._lock():
            if self.is_running():
                return
            self._prepare_home()
            self._clear_stale_lockfile()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(bindir)
            options = [
                "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.home}",
                "-c", "max_connections=200",
            ]  # fmt: skip
            if self.fast:
                # Test speed only: a machine/OS crash can corrupt this cluster, a killed server cannot.
                # synchronous_commit stays on: with fsync off it costs nothing measurable, while off it
                # would drop the last commits when fault tests SIGKILL the server.
                options += ["-c", "fsync=off", "-c", "full_page_writes=off"]
            # pg_ctl hands -o to /bin/sh, so each option is shell-quoted (home may contain spaces).
            cmd = [
                str(bindir / "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_path),
                "-w", "-t", str(max(1, int(timeout))), "-o", shlex.join(options),
            ]  # fmt: skip
            result = self._run_as_pg(cmd, timeout=timeout + 15)
            if result.returncode != 0 or not self.is_running():
                raise PostgresError(
                    f"pg_ctl start failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
                    f"\n{self.log_path} ends with:\n{self._log_tail()}"
                )

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and self._is_our_postmaster(pid)

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, disconnect clients, checkpoint, exit."""
        if not self.is_running():
            return
        bindir = self.ensure_installed()
        cmd = [str(bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60"]
        result = self._run_as_pg(cmd, timeout=75)
        if result.returncode != 0 and self.is_running():
            raise PostgresError(f"pg_ctl stop failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")

    def kill(self) -> None:
        """SIGKILL the postmaster like a crash; waits until its backends are gone so start() can recover."""
        pid = self._postmaster_pid()
        if pid is None or not self._is_our_postmaster(pid):
            return
        # Backends each sit in their own session (PostgreSQL setsid()s them): find them by parent pid.
        children = _children(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # Orphaned backends notice the dead postmaster and exit on their own; a new postmaster refuses
        # to start while any of them still holds the old shared memory, hence the wait.
        if not _wait(lambda: not any(_process_alive(p) for p in (pid, *children)), 10):
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            if not _wait(lambda: not any(_process_alive(p) for p in (pid, *children)), 10):
                raise PostgresError(f"postmaster {pid} or its backends still alive 20 s after SIGKILL")

    # -------------------------------------------------------------- databases

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for `database` on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        """A plain psycopg connection as the superuser (trust auth, TCP on 127.0.0.1)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            dbname=database,
            autocommit=autocommit,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        """(Re)create an empty database and return its SQLAlchemy URL."""
        self.drop_database(name)
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, disconnecting its sessions (WITH (FORCE), PostgreSQL 13+)."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Serialises start() across processes sharing a home (e.g. pytest-xdist workers).
        with open(self.home / ".start.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _prepare_home(self) -> None:
        if os.geteuid() != 0:
            return
        pg = _pg_user()
        # The server runs as postgres: it must reach home through every parent and own home itself.
        _make_traversable(self.home, pg)
        for path in (self.home, *self.home.glob("*.log")):
            os.chown(path, pg.pw_uid, pg.pw_gid)

    def _clear_stale_lockfile(self) -> None:
        """Remove postmaster.pid when the pid it names is a zombie or an unrelated process.

        PostgreSQL itself ignores a lock file whose pid is gone, but kill(pid, 0) succeeds on a zombie
        (a killed postmaster whose parent, init, has not reaped it yet, or never will in some containers)
        and on a reused pid, and then it refuses to start. Its shared-memory check still protects
        against live orphaned backends after the file is gone.
        """
        pid = self._postmaster_pid()
        if pid is None or self._is_our_postmaster(pid):
            return
        # Usually init reaps the dead postmaster within moments; give it that chance first.
        if _wait(lambda: not (Path("/proc") / str(pid)).exists(), 5):
            return
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _initdb(self, bindir: Path) -> None:
        # A data dir without PG_VERSION is debris of an interrupted initdb, which refuses non-empty dirs.
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        cmd = [
            str(bindir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
            "-E", "UTF8", "--locale=C.UTF-8",
        ]  # fmt: skip
        if self.fast:
            # Skipping the final fsync of ~1000 files saves seconds; only a machine crash can hurt.
            cmd.append("--no-sync")
        result = self._run_as_pg(cmd, timeout=120)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")

    def _run_as_pg(self, cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", PG_OS_USER, "--", *cmd]
        # PG* variables of the caller (PGPORT, PGDATA, ...) would silently redirect pg_ctl/initdb.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # cwd=home: the caller's cwd may be unreadable for postgres (e.g. /root), which initdb warns about.
        try:
            return subprocess.run(
                list(cmd),
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{cmd[0]} timed out after {timeout:.0f} s:\n{self._log_tail()}") from exc

    def _postmaster_pid(self) -> int | None:
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            return int(first_line.strip())
        except (FileNotFoundError, ValueError, PermissionError):
            return None

    def _is_our_postmaster(self, pid: int) -> bool:
        if not _process_alive(pid):
            return False
        # postmaster.pid survives a SIGKILL; a reused pid must not count as our server.
        try:
            cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return not Path("/proc/self").exists()
        return str(self.data_dir).encode() in cmdline

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no server.log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


def _find_bindir() -> Path | None:
    candidates = [p.parent for p in PG_ROOT.glob("*/bin/pg_ctl") if p.parent.parent.name.isdigit()]
    if not candidates:
        return None
    # Several majors can coexist after a dist-upgrade; the newest is what `apt-get install postgresql` gave.
    return max(candidates, key=lambda p: int(p.parent.name))


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise PostgresError(f"{what} failed (exit {result.returncode}):\n{output}")


def _pg_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError as exc:
        raise PostgresError(f"OS user {PG_OS_USER!r} missing: is the postgresql package installed?") from exc


def _make_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """chmod o+x every parent of `path` that `user` could not pass through (e.g. 0700 pytest tmp dirs)."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            # Search (x) only, not read (r): postgres can pass through but not list the directory.
            try:
                os.chmod(parent, st.st_mode | stat.S_IXOTH)
            except OSError as exc:
                raise PostgresError(
                    f"{parent} is not traversable by the {user.pw_name!r} user and chmod o+x failed ({exc}); "
                    "choose a home directory the postgres user can reach"
                ) from exc


def _process_alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        if Path("/proc/self").exists():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # A zombie postmaster is dead; it just waits for init to collect its exit status.
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc; empty where there is no procfs)."""
    found = []
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the parenthesised command name: state, ppid, ...
            fields = stat_path.read_text().rsplit(")", 1)[-1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(stat_path.parent.name))
    return found


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
