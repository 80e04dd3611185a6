"""The PostgreSQL backend of the store port (production; issue 10), through psycopg 3.

Same tables, migrations and group commit as SQLite (`store/sql.py`). A commit returns once
PostgreSQL has flushed its WAL (`synchronous_commit` on, the server's default), so it is as
durable as the server is configured to be. The connection string comes from the settings
or `INDEXMAKER_STORE_URL`, never from a log line (it may hold a password).
"""

from __future__ import annotations

import psycopg

from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.sql import Dialect, SqlStore

POSTGRES = Dialect("postgresql", blob="BYTEA", param="%s")


class PostgresStore(SqlStore):
    """Journal, snapshots, outbox and meta in one PostgreSQL database."""

    def __init__(self, url: str, crash: CrashPoints = NO_CRASH, connect_timeout: int = 10) -> None:
        """`url`: a libpq connection string or URI (postgresql://user@127.0.0.1:5432/db).

        Raises psycopg.OperationalError when the server cannot be reached, SchemaError for a
        database written by a newer build."""
        # autocommit: we issue BEGIN/COMMIT ourselves, one per group; prepare_threshold=0
        # prepares every statement on first use (the same few run on every commit).
        db = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout)
        db.prepare_threshold = 0
        super().__init__(db, POSTGRES, crash)
