"""The PostgreSQL backend of the store port (production; issue 10), through psycopg 3.

Same tables, migrations and group commit as SQLite (`store/sql.py`). A commit returns once
PostgreSQL has flushed its WAL (`synchronous_commit` on, the server's default), so it is as
durable as the server is configured to be. A group's transaction is sent in pipeline mode
(BEGIN, the inserts and COMMIT in one go): one network round trip per commit, not one per
statement. The connection string comes from the settings
or `INDEXMAKER_STORE_URL`, never from a log line (it may hold a password).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from indexmaker.core.store_records import SpentStore
from indexmaker.store.compaction import KEEP_SNAPSHOTS
from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.signatures import SqlSpentSignatures
from indexmaker.store.sql import Connection, Dialect, SqlStore

POSTGRES = Dialect("postgresql", blob="BYTEA", param="%s")


class PostgresStore(SqlStore):
    """Journal, snapshots, outbox and meta in one PostgreSQL database."""

    def __init__(
        self,
        url: str,
        crash: CrashPoints = NO_CRASH,
        connect_timeout: int = 10,
        keep_snapshots: int = KEEP_SNAPSHOTS,
    ) -> None:
        """`url`: a libpq connection string or URI (postgresql://user@127.0.0.1:5432/db).

        Raises psycopg.OperationalError when the server cannot be reached, SchemaError for a
        database written by a newer build."""
        self._url = url  # kept for readers' connections; never logged
        self._connect_timeout = connect_timeout
        super().__init__(self.connect(), POSTGRES, crash, keep_snapshots)

    def connect(self) -> Connection:
        # autocommit: we issue BEGIN/COMMIT ourselves, one per group; prepare_threshold=0
        # prepares every statement on first use (the same few run on every commit).
        db = psycopg.connect(self._url, autocommit=True, connect_timeout=self._connect_timeout)
        db.prepare_threshold = 0
        return db

    def spent_signatures(self) -> SpentStore:
        """`synchronous_commit = off` on this connection: a spend is committed in the
        server (survives a kill of the service) without a WAL flush of its own; the engine's
        next commit flushes the WAL past it (signatures.py)."""
        db = self.connect()
        db.execute("SET synchronous_commit = off")
        return SqlSpentSignatures(db, POSTGRES, self)

    def _transaction(self, body: Callable[[], None]) -> None:
        # psycopg's pipeline mode queues every statement and waits once, at its end; its
        # transaction() sends BEGIN, and COMMIT or ROLLBACK (we run in autocommit).
        db: psycopg.Connection[tuple[object, ...]] = self._db  # type: ignore[assignment]
        with db.pipeline(), db.transaction():
            body()
