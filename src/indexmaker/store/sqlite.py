"""The SQLite backend of the store port (the embedded default of `serve` and the demos).

WAL mode with `synchronous=FULL`: a commit is on disk when `commit` returns (a power cut
after it loses nothing), and readers (the query API) never block the writer. Everything
between commits is buffered in memory and written in one transaction (group commit,
`store/sql.py`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexmaker.core.store_records import SpentStore
from indexmaker.store.compaction import KEEP_SNAPSHOTS
from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.signatures import SqlSpentSignatures
from indexmaker.store.sql import Connection, Dialect, SqlStore
from indexmaker.store.sql import migrate as sql_migrate

DB_NAME = "indexmaker.sqlite3"
SQLITE = Dialect("sqlite", blob="BLOB", param="?")


class SqliteStore(SqlStore):
    """Journal, snapshots, outbox and meta in one SQLite file."""

    def __init__(
        self, path: Path, crash: CrashPoints = NO_CRASH, keep_snapshots: int = KEEP_SNAPSHOTS
    ) -> None:
        """`path`: the database file (created with its schema if missing); `keep_snapshots`:
        as SqlStore's. Pages freed by compaction go to SQLite's freelist and new rows reuse
        them, so the file stops growing once the journal is bounded.

        Raises SchemaError for a database written by a newer build, sqlite3.Error for a file
        that is not a database."""
        self.path = path
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per group.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        super().__init__(db, SQLITE, crash, keep_snapshots)

    def connect(self) -> Connection:
        """A read-only connection to the file (WAL: it never blocks the writer)."""
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def spent_signatures(self) -> SpentStore:
        """`synchronous=NORMAL` on this connection: a spend is in the WAL when its insert
        returns (survives a kill), fsynced by the engine's next FULL commit (signatures.py)."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA synchronous=NORMAL")
        return SqlSpentSignatures(db, SQLITE, self)

    @classmethod
    def in_directory(
        cls, data_dir: Path, crash: CrashPoints = NO_CRASH, keep_snapshots: int = KEEP_SNAPSHOTS
    ) -> SqliteStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / DB_NAME, crash, keep_snapshots)


def migrate(db: sqlite3.Connection) -> int:
    """Bring a SQLite database to this build's schema (another connection to the store's
    file, e.g. store/signatures.py); returns the version."""
    return sql_migrate(db, SQLITE)
