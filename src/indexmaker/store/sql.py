"""What both SQL backends share: buffering between group commits, the one-transaction
commit, reads, snapshots and the migration runner (docs/decisions.md, "Durable state").

A backend gives a DB-API connection in autocommit mode (we issue BEGIN/COMMIT ourselves,
one per group) and its `Dialect`: how it spells a parameter and a blob column. Statements
are written once with `?` parameters; the dialect rewrites them for its driver.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from indexmaker.core import codec
from indexmaker.core.events import ClientRequest, Command, EngineInput
from indexmaker.core.journal import JournalEntry, OutboxItem
from indexmaker.core.store_records import InvoiceQuery, SpentStore, StoredInvoice, StoredMessage
from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.fix_outbox import CLIENT_MESSAGES, last_messages
from indexmaker.store.invoices import INSERT as INSERT_INVOICE
from indexmaker.store.invoices import InvoiceRow, decode_row, invoice_rows, select
from indexmaker.store.migrations import CREATE_VERSIONS, LATEST, MIGRATIONS, SchemaError

# A spend held for its request's journal entry that has not come after this long (a request
# refused before the engine, e.g. "service busy") is written on its own with the next commit.
HOLD_LIMIT = 5.0  # seconds
SpendKey = tuple[str, str]  # (address, spent id text): a row of spent_signatures


class Connection(Protocol):
    """The part of a DB-API connection we use (sqlite3 and psycopg 3 both have it)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    blob: str  # column type for bytes: BLOB (SQLite), BYTEA (PostgreSQL)
    param: str  # how the driver spells a parameter: ? (sqlite3), %s (psycopg)

    def sql(self, statement: str) -> str:
        return statement if self.param == "?" else statement.replace("?", self.param)


class SqlStore:
    """Journal + snapshots + outbox + meta in one SQL database; implements `StorePort`.
    Not thread-safe: one owner (the engine task)."""

    def __init__(self, db: Connection, dialect: Dialect, crash: CrashPoints = NO_CRASH) -> None:
        """Migrates the database first. Raises SchemaError for a database written by a
        newer build, and the driver's error for one that is not reachable or not ours."""
        self._db = db
        self._cursor = db.cursor()
        self._dialect = dialect
        self._crash = crash
        migrate(db, dialect)
        self._last_seq: int = self._one("SELECT COALESCE(MAX(seq), 0) FROM journal")[0]
        self._journal: list[tuple[int, str, bytes]] = []
        self._outbox: list[tuple[str, int, str, bytes]] = []
        self._done: list[str] = []
        self._invoices: list[InvoiceRow] = []  # the query API's table (store/invoices.py)
        self._meta: dict[str, str] = {}
        self._snapshot: tuple[int, str, bytes] | None = None
        # Spent signatures held for their request's journal entry (by the request's id(); the
        # request itself is kept, so its id is not reused), and those buffered for the commit.
        self._held: dict[int, tuple[object, float, SpendKey]] = {}
        self._spends: list[SpendKey] = []
        self._unwritten: set[SpendKey] = set()
        self.commits = 0
        self._closed = False
        crash.count_existing(self)

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._db.execute(self._dialect.sql(statement), params).fetchall())

    def _one(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        rows = self._rows(statement, params)
        return rows[0] if rows else ()

    # ------------------------------------------------------------------ journal

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def append(self, at: datetime, event: EngineInput) -> JournalEntry:
        self._last_seq += 1
        entry = JournalEntry(self._last_seq, at, event)
        self._journal.append((entry.seq, at.isoformat(), codec.encode_entry(entry)))
        if self._held:
            held = self._held.pop(id(event), None)
            if held is not None:
                self._spends.append(held[2])  # durable in the same commit as the request
        self._crash.counted("input", type(event).__name__)
        return entry

    def entries(self, after: int = 0) -> Iterator[JournalEntry]:
        """Every committed entry after `after`, in order (buffered ones are not yet the
        journal). Read in pages, so a long journal is never held in memory at once."""
        page = 5_000
        while True:
            rows = self._rows(
                f"SELECT seq, entry FROM journal WHERE seq > ? ORDER BY seq LIMIT {page}",
                (after,),
            )
            for _, blob in rows:
                yield codec.decode_entry(bytes(blob))
            if len(rows) < page:
                return
            after = rows[-1][0]

    # ------------------------------------------------------------------ snapshots

    def save_snapshot(self, seq: int, fingerprint: str, state: bytes) -> None:
        self._snapshot = (seq, fingerprint, state)

    def latest_snapshot(self, fingerprint: str) -> tuple[int, bytes] | None:
        row = self._one(
            "SELECT seq, state FROM snapshots WHERE fingerprint = ? ORDER BY seq DESC LIMIT 1",
            (fingerprint,),
        )
        return (int(row[0]), bytes(row[1])) if row else None

    # ------------------------------------------------------------------ outbox

    def add_effects(self, journal_seq: int, commands: Sequence[Command]) -> list[OutboxItem]:
        items = []
        for index, command in enumerate(commands):
            item = OutboxItem(f"{journal_seq}.{index}", journal_seq, command)
            kind = type(command).__name__
            self._outbox.append((item.key, journal_seq, kind, codec.encode(command)))
            self._crash.counted("effect", kind, item.key)
            items.append(item)
        self._invoices.extend(invoice_rows(journal_seq, commands))
        return items

    def mark_done(self, keys: Iterable[str]) -> None:
        # Not worth an fsync of its own: a lost mark only makes recovery check that effect
        # again, and every effect is idempotent by its key or reconciled (never re-sent).
        self._done.extend(keys)

    def pending(self) -> list[OutboxItem]:
        rows = self._rows("SELECT key, journal_seq, command FROM outbox WHERE done = 0")
        return [_item(row) for row in sorted(rows, key=_order)]

    def effects(self) -> Iterator[OutboxItem]:
        rows = self._rows("SELECT key, journal_seq, command FROM outbox")
        return (_item(row) for row in sorted(rows, key=_order))

    def effect_kinds(self) -> list[str]:
        """The kind of every committed effect (cheap: no decoding)."""
        return [row[0] for row in self._rows("SELECT kind FROM outbox")]

    def get_meta(self, name: str) -> str | None:
        if name in self._meta:
            return self._meta[name]
        row = self._one("SELECT value FROM meta WHERE name = ?", (name,))
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._meta[name] = value

    # ------------------------------------------------------------------ spent signatures

    def hold_spend(self, request: object, key: SpendKey) -> bool:
        """Issue 8's resend window: a signature spent on an engine input becomes durable in
        the same commit as that input's journal entry, so a crash keeps both or neither (a
        client's resend of a request the crash lost is taken, not refused as a replay).
        False (nothing held) for anything else: the caller writes it at once."""
        if not isinstance(request, ClientRequest):
            return False
        self._held[id(request)] = (request, time.monotonic(), key)
        self._unwritten.add(key)
        return True

    def spend_unwritten(self, key: SpendKey) -> bool:
        """Spent, held or buffered, not yet committed (the FIX server's reader cannot see
        it)."""
        return key in self._unwritten

    def _release_stale_holds(self) -> None:
        limit = time.monotonic() - HOLD_LIMIT
        stale = [n for n, (_, since, _) in self._held.items() if since < limit]
        for n in stale:
            self._spends.append(self._held.pop(n)[2])

    # ------------------------------------------------------------------ commit

    @property
    def dirty(self) -> bool:
        return bool(
            self._journal
            or self._outbox
            or self._done
            or self._meta
            or self._snapshot
            or self._spends
        )

    def commit(self) -> None:
        """Write everything buffered in one transaction; durable when this returns."""
        if self._held:
            self._release_stale_holds()
        if not self.dirty:
            return
        self._crash.hit("before_commit")
        transaction(self._db, self._write)
        self._unwritten.difference_update(self._spends)
        self._spends.clear()
        self._journal.clear()
        self._outbox.clear()
        self._done.clear()
        self._invoices.clear()
        self._meta.clear()
        self._snapshot = None
        self.commits += 1
        self._crash.hit("commit")

    def _write(self) -> None:
        sql = self._dialect.sql
        cursor = self._cursor
        many = cursor.executemany
        if self._journal:
            many(sql("INSERT INTO journal (seq, at, entry) VALUES (?, ?, ?)"), self._journal)
        if self._outbox:
            many(
                sql("INSERT INTO outbox (key, journal_seq, kind, command) VALUES (?, ?, ?, ?)"),
                self._outbox,
            )
        if self._invoices:
            many(sql(INSERT_INVOICE), self._invoices)
        if self._spends:
            many(
                sql(
                    "INSERT INTO spent_signatures (address, spent_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                self._spends,
            )
        if self._done:
            many(sql("UPDATE outbox SET done = 1 WHERE key = ?"), [(k,) for k in self._done])
        if self._meta:
            many(
                sql(
                    "INSERT INTO meta (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                list(self._meta.items()),
            )
        if self._snapshot is not None:
            seq, fingerprint, state = self._snapshot
            # Only a build's newest snapshot is ever read: keep one per build.
            cursor.execute(sql("DELETE FROM snapshots WHERE fingerprint = ?"), (fingerprint,))
            cursor.execute(
                sql("INSERT INTO snapshots (seq, fingerprint, state) VALUES (?, ?, ?)"),
                (seq, fingerprint, state),
            )

    def close(self) -> None:
        """Commit what is buffered and release the database; again: nothing (a stopped
        service may be stopped twice)."""
        if self._closed:
            return
        for _, _, key in self._held.values():  # requests that will never be journalled now
            self._spends.append(key)
        self._held.clear()
        self.commit()
        self._db.close()
        self._closed = True

    # ------------------------------------------------------------------ readers

    def connect(self) -> Connection:
        """Another connection to this database, in autocommit mode (a reader's or the FIX
        server's own). The backend's error when it cannot be opened."""
        raise NotImplementedError

    def invoices(self, query: InvoiceQuery) -> list[StoredInvoice]:
        """StorePort.invoices: on a connection of its own, so any thread may ask."""
        statement, params = select(query)
        db = self.connect()
        try:
            rows = db.execute(self._dialect.sql(statement), params).fetchall()
        finally:
            db.close()
        return [decode_row(*row) for row in rows]

    def client_messages(self, since: datetime, limit: int) -> tuple[int, list[StoredMessage]]:
        """StorePort.client_messages (store/fix_outbox.py), on the owner's connection."""
        return last_messages(self._db.execute(CLIENT_MESSAGES), since, limit)

    def spent_signatures(self) -> SpentStore:
        raise NotImplementedError


def _order(row: tuple[Any, ...]) -> tuple[int, int]:
    """Outbox order: by journal seq, then the effect's index in its key ("<seq>.<index>")."""
    return int(row[1]), int(str(row[0]).rpartition(".")[2])


def _item(row: tuple[Any, ...]) -> OutboxItem:
    command = codec.decode(bytes(row[2]))
    return OutboxItem(row[0], row[1], command)  # type: ignore[arg-type]


def transaction(db: Connection, body: Any) -> None:
    db.execute("BEGIN")
    try:
        body()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def migrate(db: Connection, dialect: Dialect) -> int:
    """Apply every migration newer than the database's version, each in its own
    transaction; returns the version. Raises SchemaError for a newer database."""
    db.execute(CREATE_VERSIONS)
    row = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    current: int = row[0]
    if current > LATEST:
        raise SchemaError(f"database schema version {current} is newer than this build's {LATEST}")
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue

        def apply(migration: Any = migration) -> None:
            for statement in migration.statements:
                db.execute(statement.format(blob=dialect.blob))
            db.execute(
                dialect.sql(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
                ),
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )

        transaction(db, apply)
        current = migration.version
    return current
