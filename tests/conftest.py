"""Every `indexmaker serve` a test starts keeps its durable state in a temporary directory,
never in the working tree's `data/` (the embedded default)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import web3
from web3._utils.http_session_manager import HTTPSessionManager

from indexmaker.chain.http_provider import OwnSessionHTTPProvider

DATA_DIR_ENV = "INDEXMAKER_DATA_DIR"

# web3.py #3867 (chain/http_provider.py, docs/decisions.md): web3's own AsyncHTTPProvider takes
# a process-wide lock that a cancelled request can leave held, after which every HTTP RPC of
# the process (sync ones too) hangs: one test timing out would hang the rest of the suite.
# Tests build their providers as `from web3 import AsyncHTTPProvider`: they get the service's.
web3.AsyncHTTPProvider = OwnSessionHTTPProvider  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _web3_session_lock() -> None:
    """A lock left held by an earlier test (see above) is replaced, so its failure stays its own."""
    if HTTPSessionManager._lock.locked():
        HTTPSessionManager._lock = threading.Lock()


@pytest.fixture(scope="session", autouse=True)
def _session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(tmp_path_factory.mktemp("session-data"))
    yield
    if before is None:
        os.environ.pop(DATA_DIR_ENV, None)
    else:
        os.environ[DATA_DIR_ENV] = before


@pytest.fixture(autouse=True)
def _test_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))


# ---------------------------------------------------------------- PostgreSQL (issue 10)

PG_REQUIRED_ENV = "CI"  # in CI a missing PostgreSQL is a failure, never a skip


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One local PostgreSQL server (Debian's package) for the whole run, stopped by PID.
    Skips with the reason where it is not installed, except in CI (`.ci/run` installs it)."""
    from indexmaker.store import pgserver

    reason = pgserver.unavailable()
    if reason is not None:
        if os.environ.get(PG_REQUIRED_ENV):
            pytest.fail(f"PostgreSQL tests must run in CI: {reason}")
        pytest.skip(f"PostgreSQL tests need a local server: {reason}")
    # Not under pytest's temporary root: it is private to us, and as root the server runs as
    # the `postgres` user, who must reach its data directory.
    directory = Path(tempfile.mkdtemp(prefix="indexmaker-pg-"))
    try:
        server = pgserver.start(directory, durable=False)
        try:
            yield server
        finally:
            pgserver.stop(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def postgres_url(postgres: object) -> str:
    """A fresh empty database on the session's server."""
    from indexmaker.store.pgserver import LocalPostgres

    assert isinstance(postgres, LocalPostgres)
    return postgres.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """Each durable backend in turn: None for SQLite (in the test's data dir), else a fresh
    PostgreSQL database's URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("postgres_url"))
