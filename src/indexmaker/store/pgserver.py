"""A local PostgreSQL server for tests, benchmarks and `make pg`: Debian's `postgresql`
package (initdb + postgres), in a data directory of ours, on 127.0.0.1 and a free port,
started as a child process and stopped by its PID. Nothing is downloaded; `.ci/run`
installs the package with apt-get when it is missing.

PostgreSQL refuses to run as root; run as root (CI, this workplace) the server runs as the
`postgres` user the Debian package creates, and the data directory is handed to it.

CLI (used by `make pg` / `make pg-stop`):
    python -m indexmaker.store.pgserver start [--dir .pg]   # prints the connection URL
    python -m indexmaker.store.pgserver stop  [--dir .pg]
Exit status 2 on bad input (unknown command, already running, no PostgreSQL installed).
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from indexmaker.chain.anvil import free_port

ROOT = Path(__file__).resolve().parents[3]
RUN_DIR = ROOT / ".pg"
READY_TIMEOUT_S = 30.0
USER = "indexmaker"  # the database superuser initdb creates (trust auth on loopback only)


class PostgresError(RuntimeError):
    """PostgreSQL is not installed, would not start, or did not answer in time."""


def bin_dir() -> Path:
    """The directory of Debian's initdb/postgres (newest major), or one on PATH.
    Raises PostgresError naming the package when there is none."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")


def unavailable() -> str | None:
    """Why a local server cannot be started here, or None when it can."""
    try:
        bin_dir()
    except PostgresError as error:
        return str(error)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


@dataclass(frozen=True)
class LocalPostgres:
    """A running server: its port, process id and data directory."""

    port: int
    pid: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """A fresh empty database on this server; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"


@dataclass(frozen=True)
class _Owner:
    """Who the server runs as: `postgres` when we are root (it refuses root), else us."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_server(cls) -> _Owner:
        if os.geteuid() != 0:
            return cls()
        entry = pwd.getpwnam("postgres")
        return cls(entry.pw_uid, entry.pw_gid)

    def give(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    @property
    def extra_groups(self) -> list[int] | None:
        return [] if self.uid is not None else None


def start(data_dir: Path, port: int | None = None, durable: bool = True) -> LocalPostgres:
    """initdb `data_dir` when it is new, then start postgres on 127.0.0.1:`port` (free one
    when None). `durable=False` turns fsync off (tests: we kill our service, never the
    server). Raises PostgresError when it is missing or not ready within 30 s."""
    binaries = bin_dir()
    owner = _Owner.for_server()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "data"
    owner.give(data_dir)
    log = data_dir / "postgres.log"
    if not (pgdata / "PG_VERSION").exists():
        done = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ],
            capture_output=True,
            timeout=120,
            user=owner.uid,
            group=owner.gid,
            extra_groups=owner.extra_groups,
        )
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.decode(errors='replace')[-500:]}")
    port = port or free_port()
    settings = ["-c", f"fsync={'on' if durable else 'off'}", "-c", "max_connections=50"]
    with log.open("ab") as sink:
        owner.give(log)
        process = subprocess.Popen(
            [
                str(binaries / "postgres"),
                "-D",
                str(pgdata),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(data_dir),
                *settings,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=owner.uid,
            group=owner.gid,
            extra_groups=owner.extra_groups,
        )
    server = LocalPostgres(port, process.pid, data_dir)
    (data_dir / "pid").write_text(str(process.pid))
    (data_dir / "url").write_text(server.url)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise PostgresError(f"postgres exited {process.returncode}: {_tail(log)}")
        if _ready(server.url):
            return server
        if time.monotonic() > deadline:
            stop(data_dir)
            raise PostgresError(f"postgres not ready after {READY_TIMEOUT_S:.0f} s: {_tail(log)}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-800:] if log.exists() else "(no log)"


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the server recorded in `data_dir` by its PID (fast shutdown: SIGINT; SIGKILL
    after `timeout`). False when none was running."""
    pid_file = data_dir / "pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not our child (the CLI's stop): poll for it instead
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="indexmaker.store.pgserver")
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, default=RUN_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            if (args.dir / "pid").exists():
                print(
                    f"already running (pid file {args.dir / 'pid'}); stop it first", file=sys.stderr
                )
                return 2
            server = start(args.dir)
            print(f"postgres pid {server.pid} at {server.url}")
            print(f"use it: INDEXMAKER_STORE_URL={server.url}")
        elif not stop(args.dir):
            print("no server was running", file=sys.stderr)
    except PostgresError as error:
        print(f"pgserver: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
