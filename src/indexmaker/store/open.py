"""Opening the configured store, and the build fingerprint snapshots are keyed by."""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

from indexmaker.app.config import StoreConfig
from indexmaker.core.ports import StorePort
from indexmaker.store.crash import NO_CRASH, CrashPoints

_PACKAGE = Path(__file__).resolve().parents[1]
# The packages whose classes a snapshot (a pickle of the engine's ledgers) is made of.
_STATE_PACKAGES = ("core", "model", "engine")


def open_store(config: StoreConfig, crash: CrashPoints = NO_CRASH) -> StorePort | None:
    """The store `config` names (None: the memory backend). Raises the backend's error when
    the database cannot be opened and SchemaError when it is newer than this build."""
    if config.url is not None:
        from indexmaker.store.postgres import PostgresStore  # psycopg only when used

        return PostgresStore(config.url, crash, keep_snapshots=config.keep_snapshots)
    if config.data_dir is not None:
        from indexmaker.store.sqlite import SqliteStore

        return SqliteStore.in_directory(config.data_dir, crash, config.keep_snapshots)
    return None


def describe(config: StoreConfig) -> str:
    """Where the store is, for a log line: never the URL (it may hold a password)."""
    if config.url is not None:
        return "postgresql"
    return f"sqlite:{config.data_dir}" if config.data_dir is not None else "memory"


@cache
def fingerprint() -> str:
    """The build a snapshot belongs to: a hash of the Python version and of every source
    file of the packages the engine's state is made of. A snapshot of another build is
    never unpickled (full replay instead), so a changed class can never be misread."""
    digest = hashlib.sha256(sys.version.encode())
    for package in _STATE_PACKAGES:
        for path in sorted((_PACKAGE / package).rglob("*.py")):
            digest.update(str(path.relative_to(_PACKAGE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]
