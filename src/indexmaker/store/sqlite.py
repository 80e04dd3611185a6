"""The SQLite backend of the store port (the embedded default of `serve` and the demos).

WAL mode with `synchronous=FULL`: a commit is on disk when `commit` returns (a power cut
after it loses nothing), and readers (the query API) never block the writer. Everything
between commits is buffered in memory and written in one transaction (group commit), so
market data costs an insert, never an fsync of its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from indexmaker.core import codec
from indexmaker.core.events import Command, EngineInput
from indexmaker.core.journal import JournalEntry, OutboxItem
from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.invoices import INSERT as INSERT_INVOICE
from indexmaker.store.invoices import InvoiceRow, invoice_rows
from indexmaker.store.migrations import CREATE_VERSIONS, LATEST, MIGRATIONS, SchemaError

DB_NAME = "indexmaker.sqlite3"


class SqliteStore:
    """Journal + outbox in one SQLite file. Not thread-safe: one owner (the engine task)."""

    def __init__(self, path: Path, crash: CrashPoints = NO_CRASH) -> None:
        """`path`: the database file (created with its schema if missing).

        Raises SchemaError for a database written by a newer build, sqlite3.Error for a file
        that is not a database."""
        self.path = path
        self._crash = crash
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per group.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        migrate(self._db)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        self._last_seq: int = row[0]
        self._journal: list[tuple[int, str, bytes]] = []
        self._outbox: list[tuple[str, int, str, bytes]] = []
        self._done: list[str] = []
        self._invoices: list[InvoiceRow] = []
        self._meta: dict[str, str] = {}
        self.commits = 0

    @classmethod
    def in_directory(cls, data_dir: Path, crash: CrashPoints = NO_CRASH) -> SqliteStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / DB_NAME, crash)

    # ------------------------------------------------------------------ journal port

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, at: datetime, event: EngineInput) -> JournalEntry:
        self._last_seq += 1
        entry = JournalEntry(self._last_seq, at, event)
        self._journal.append((entry.seq, at.isoformat(), codec.encode_entry(entry)))
        return entry

    def entries(self) -> Iterator[JournalEntry]:
        """Every committed entry in order (buffered ones are not yet the journal)."""
        cursor = self._db.execute("SELECT entry FROM journal ORDER BY seq")
        for (blob,) in cursor:
            yield codec.decode_entry(bytes(blob))

    # ------------------------------------------------------------------ outbox

    def add_effects(self, journal_seq: int, commands: Sequence[Command]) -> list[OutboxItem]:
        items = []
        for index, command in enumerate(commands):
            item = OutboxItem(f"{journal_seq}.{index}", journal_seq, command)
            self._outbox.append(
                (item.key, journal_seq, type(command).__name__, codec.encode(command))
            )
            items.append(item)
        self._invoices.extend(invoice_rows(journal_seq, commands))
        return items

    def mark_done(self, keys: Iterable[str]) -> None:
        # Not worth an fsync of its own: a lost mark only makes recovery check that effect
        # again, and every effect is idempotent by its key or reconciled (never re-sent).
        self._done.extend(keys)

    def pending(self) -> list[OutboxItem]:
        rows = self._db.execute(
            "SELECT key, journal_seq, command FROM outbox WHERE done = 0 ORDER BY journal_seq, key"
        )
        return [_item(row) for row in rows]

    def effects(self) -> Iterator[OutboxItem]:
        for row in self._db.execute("SELECT key, journal_seq, command FROM outbox ORDER BY rowid"):
            yield _item(row)

    def get_meta(self, name: str) -> str | None:
        if name in self._meta:
            return self._meta[name]
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    # ------------------------------------------------------------------ commit

    @property
    def dirty(self) -> bool:
        return bool(self._journal or self._outbox or self._done or self._meta)

    def commit(self) -> None:
        """Write everything buffered in one transaction; durable when this returns."""
        if not self.dirty:
            return
        self._crash.hit("before_commit")
        db = self._db
        db.execute("BEGIN")
        try:
            if self._journal:
                db.executemany(
                    "INSERT INTO journal (seq, at, entry) VALUES (?, ?, ?)", self._journal
                )
            if self._outbox:
                db.executemany(
                    "INSERT INTO outbox (key, journal_seq, kind, command) VALUES (?, ?, ?, ?)",
                    self._outbox,
                )
            if self._invoices:
                db.executemany(INSERT_INVOICE, self._invoices)
            if self._done:
                db.executemany(
                    "UPDATE outbox SET done = 1 WHERE key = ?", [(k,) for k in self._done]
                )
            if self._meta:
                db.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    list(self._meta.items()),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._journal.clear()
        self._outbox.clear()
        self._done.clear()
        self._invoices.clear()
        self._meta.clear()
        self.commits += 1
        self._crash.hit("commit")

    def close(self) -> None:
        self.commit()
        self._db.close()


def _item(row: tuple[str, int, bytes]) -> OutboxItem:
    command = codec.decode(bytes(row[2]))
    return OutboxItem(row[0], row[1], command)  # type: ignore[arg-type]


def migrate(db: sqlite3.Connection) -> int:
    """Apply every migration newer than the database's version; returns the version."""
    db.execute(CREATE_VERSIONS)
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    current: int = row[0]
    if current > LATEST:
        raise SchemaError(f"database schema version {current} is newer than this build's {LATEST}")
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        db.execute("BEGIN")
        try:
            for statement in migration.statements:
                db.execute(statement.format(blob="BLOB"))
            db.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        current = migration.version
    return current
