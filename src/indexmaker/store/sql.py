"""What both SQL backends share: buffering between group commits, the one-transaction
commit in the store's writer thread, reads, snapshots and the migration runner
(docs/decisions.md, "Durable state" and "Commits in the store's writer thread").

A backend gives a DB-API connection in autocommit mode (we issue BEGIN/COMMIT ourselves,
one per group) and its `Dialect`: how it spells a parameter and a blob column. Statements
are written once with `?` parameters; the dialect rewrites them for its driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from indexmaker.core import codec
from indexmaker.core.events import ClientRequest, Command, EngineInput
from indexmaker.core.ids import ClientKey
from indexmaker.core.journal import JournalEntry, OutboxItem
from indexmaker.core.store_records import (
    BatchQuery,
    InvoiceQuery,
    OrderQuery,
    SpentStore,
    StoredBatch,
    StoredInvoice,
    StoredMessage,
    StoredOrder,
    StoredRedemption,
)
from indexmaker.store import batch_history, order_history
from indexmaker.store.compaction import (
    FLOOR_META,
    KEEP_SNAPSHOTS,
    Compaction,
    JournalCompacted,
)
from indexmaker.store.crash import NO_CRASH, CrashPoints
from indexmaker.store.fix_outbox import (
    CLIENT_MESSAGES,
    COMPACTED_META,
    PASS_EVERY,
    MessageBound,
    last_messages,
)
from indexmaker.store.group import Group, SpendKey, write
from indexmaker.store.invoices import MINTS, REDEMPTIONS
from indexmaker.store.migrations import SchemaError, migrate, transaction

__all__ = ["Connection", "Dialect", "SchemaError", "SqlStore", "migrate", "transaction"]

# A spend held for its request's journal entry that has not come after this long (a request
# refused before the engine, e.g. "service busy") is written on its own with the next commit.
HOLD_LIMIT = 5.0  # seconds


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

    One owner (the engine task) calls every method; the transactions themselves run in the
    store's own writer thread, one at a time and in the order they were asked for
    (`commit_later`), so the owner goes on while a commit waits for the disk."""

    def __init__(
        self,
        db: Connection,
        dialect: Dialect,
        crash: CrashPoints = NO_CRASH,
        keep_snapshots: int = KEEP_SNAPSHOTS,
    ) -> None:
        """Migrates the database first. `keep_snapshots`: snapshots kept; the journal is
        compacted behind the oldest of them (0: never; store/compaction.py). Raises
        SchemaError for a database written by a newer build, and the driver's error for
        one that is not reachable or not ours."""
        self._db = db
        self._cursor = db.cursor()
        self._dialect = dialect
        self._crash = crash
        self._last: Future[None] = _done_future()  # the last commit asked for
        migrate(db, dialect)
        floor = self._one("SELECT value FROM meta WHERE name = ?", (FLOOR_META,))
        kept = self._rows("SELECT seq FROM snapshots ORDER BY seq")
        # Touched by the writer thread only once the owner has handed it a commit.
        self.compaction = Compaction(
            keep_snapshots, snapshots=[int(r[0]) for r in kept], floor=int(floor[0]) if floor else 0
        )
        self.messages: MessageBound | None = None  # client messages kept (none: all)
        last = self._one("SELECT COALESCE(MAX(seq), 0) FROM journal")[0]
        self._last_seq: int = max(int(last), self.compaction.floor)
        self._group = Group()  # buffered for the next commit
        self._last_at: datetime | None = None  # the last entry's time (order/batch history)
        # The order the last entry requested, if any: whose response answers it at once.
        self._last_request: tuple[ClientKey, str] | None = None
        self._failed: list[Group] = []  # groups a failed transaction held (writer thread)
        # One thread: transactions run one at a time, in the order they were asked for.
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        # Spent signatures held for their request's journal entry (by the request's id(); the
        # request itself is kept, so its id is not reused); those not yet committed.
        self._held: dict[int, tuple[object, float, SpendKey]] = {}
        self._unwritten: set[SpendKey] = set()
        self.commits = 0
        self._closed = False
        crash.count_existing(self)

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._settled()
        return list(self._db.execute(self._dialect.sql(statement), params).fetchall())

    def _settled(self) -> None:
        """Reads see only committed rows: wait for the commit in flight first, so the
        writer thread never holds the connection at the same time."""
        if not self._last.done():
            self._last.exception()  # waits; a failed commit is its committer's to report

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
        self._group.journal.append((entry.seq, at.isoformat(), codec.encode_entry(entry)))
        self._last_at = at
        self._last_request = order_history.request_key(event)
        self._group.history += order_history.request_rows(entry.seq, at, event)
        if self._held:
            held = self._held.pop(id(event), None)
            if held is not None:
                self._group.spends.append(held[2])  # durable in the same commit as the request
        self._crash.counted("input", type(event).__name__)
        return entry

    @property
    def compacted_through(self) -> int:
        """Every entry with seq <= this was deleted by compaction (0: none)."""
        self._settled()
        return self.compaction.floor

    def entries(self, after: int = 0) -> Iterator[JournalEntry]:
        """Every committed entry after `after`, in order (buffered ones are not yet the
        journal). Read in pages, so a long journal is never held in memory at once.
        Raises JournalCompacted when entries after `after` were deleted by compaction."""
        floor = self.compacted_through
        if after < floor:
            raise JournalCompacted(
                f"journal entries {after + 1}..{floor} were compacted away: "
                f"restore a snapshot taken at or after entry {floor}"
            )
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
        self._group.snapshot = (seq, fingerprint, state)

    def latest_snapshot(self, fingerprint: str) -> tuple[int, bytes] | None:
        """The newest of this build; once the journal is compacted and this build has
        none, the newest of any build: the journal behind it is gone, so a full replay is
        no longer possible (docs/decisions.md, "Journal compaction")."""
        row = self._one(
            "SELECT seq, state FROM snapshots WHERE fingerprint = ? ORDER BY seq DESC LIMIT 1",
            (fingerprint,),
        )
        if not row and self.compacted_through:
            row = self._one("SELECT seq, state FROM snapshots ORDER BY seq DESC LIMIT 1")
        return (int(row[0]), bytes(row[1])) if row else None

    # ------------------------------------------------------------------ outbox

    def add_effects(self, journal_seq: int, commands: Sequence[Command]) -> list[OutboxItem]:
        items = []
        at = None if self._last_at is None else self._last_at.isoformat()
        for index, command in enumerate(commands):
            item = OutboxItem(f"{journal_seq}.{index}", journal_seq, command)
            kind = type(command).__name__
            self._group.outbox.append((item.key, journal_seq, kind, codec.encode(command), at))
            self._crash.counted("effect", kind, item.key)
            items.append(item)
        self._group.invoices.extend(MINTS.rows(journal_seq, commands))
        self._group.redemptions.extend(REDEMPTIONS.rows(journal_seq, commands))
        if self._last_at is not None:
            self._group.history += order_history.effect_rows(
                journal_seq, self._last_at, commands, self._last_request
            )
        return items

    def add_batch_events(self, journal_seq: int, events: Sequence[Command]) -> None:
        if self._last_at is not None:
            self._group.history += batch_history.batch_rows(journal_seq, self._last_at, events)

    def mark_done(self, keys: Iterable[str]) -> None:
        # Not worth an fsync of its own: a lost mark only makes recovery check that effect
        # again, and every effect is idempotent by its key or reconciled (never re-sent).
        self._group.done.extend(keys)

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
        if name in self._group.meta:
            return self._group.meta[name]
        row = self._one("SELECT value FROM meta WHERE name = ?", (name,))
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        self._group.meta[name] = value

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
            self._group.spends.append(self._held.pop(n)[2])

    # ------------------------------------------------------------------ commit

    @property
    def dirty(self) -> bool:
        return bool(self._group)

    def commit(self) -> None:
        """Write everything buffered in one transaction; durable when this returns (with
        every commit asked for before it). Raises the backend's error when it fails."""
        self.commit_later().result()

    def commit_later(self) -> Future[None]:
        """Hand everything buffered to the writer thread as one transaction and return at
        once. The future is done when that transaction (and every earlier one) is durable,
        and holds the backend's error when it failed: nothing of the group may then take
        effect, and the next commit writes it again first. Nothing buffered: the future of
        the last commit asked for (after a failure, a new one that writes it again)."""
        if self._closed:
            raise RuntimeError("store closed")
        if self._held:
            self._release_stale_holds()
        last = self._last
        if not self._group and not (last.done() and last.exception() is not None):
            return last
        group, self._group = self._group, Group()
        group.span = self._crash.take()
        group.at = None if self._last_at is None else self._last_at.isoformat()
        self._last = self._writer.submit(self._write_groups, group)
        return self._last

    def _write_groups(self, group: Group) -> None:
        """The writer thread: this group, after any a failed transaction held (in order)."""
        groups = [*self._failed, group]
        span = (groups[0].span[0], group.span[1])
        # Every earlier group is durable here, this one not yet (the writer is serial).
        self._crash.hit("before_commit", span=span)

        compacted: list[tuple[list[int], int]] = []
        bound, bounded = self.messages, []

        def body() -> None:
            for each in groups:
                write(self._cursor, self._dialect, each)
            snapshot = next((g.snapshot for g in reversed(groups) if g.snapshot), None)
            taken = None if snapshot is None else (snapshot[0], snapshot[1])
            compacted.append(self.compaction.write(self._cursor, self._dialect, taken))
            if bound is not None:
                bounded.append(bound.write(self._cursor, self._dialect, group.at))

        try:
            self._transaction(body)
        except BaseException:
            self._failed = groups
            raise
        self._failed = []
        self.compaction.committed(compacted[-1])
        if bound is not None:
            bound.committed(bounded[-1])
        for each in groups:
            self._unwritten.difference_update(each.spends)  # readers see them now
        self.commits += 1
        self._crash.hit("commit", span=span)

    def _transaction(self, body: Callable[[], None]) -> None:
        """`body` in one transaction (a backend may send it in fewer round trips)."""
        transaction(self._db, body)

    def close(self) -> None:
        """Commit what is buffered, wait for the writer thread and release the database;
        again: nothing (a stopped service may be stopped twice)."""
        if self._closed:
            return
        for _, _, key in self._held.values():  # requests that will never be journalled now
            self._group.spends.append(key)
        self._held.clear()
        try:
            self.commit()
        finally:
            self._writer.shutdown(wait=True)
            self._db.close()
            self._closed = True

    # ------------------------------------------------------------------ readers

    def connect(self) -> Connection:
        """Another connection to this database, in autocommit mode (a reader's or the FIX
        server's own). The backend's error when it cannot be opened."""
        raise NotImplementedError

    def invoices(self, query: InvoiceQuery) -> list[StoredInvoice]:
        """StorePort.invoices: on a connection of its own, so any thread may ask."""
        return [StoredInvoice(*MINTS.decode(*row)) for row in self._read(*MINTS.select(query))]

    def redemptions(self, query: InvoiceQuery) -> list[StoredRedemption]:
        """StorePort.redemptions: on a connection of its own, so any thread may ask."""
        rows = self._read(*REDEMPTIONS.select(query))
        return [StoredRedemption(*REDEMPTIONS.decode(*row)) for row in rows]

    def orders(self, query: OrderQuery) -> list[StoredOrder]:
        """StorePort.orders: on a connection of its own, so any thread may ask."""
        return [order_history.decode_row(r) for r in self._read(*order_history.select(query))]

    def batches(self, query: BatchQuery) -> list[StoredBatch]:
        """StorePort.batches: on a connection of its own, so any thread may ask."""
        return [batch_history.decode_row(r) for r in self._read(*batch_history.select(query))]

    def _read(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        db = self.connect()
        try:
            return list(db.execute(self._dialect.sql(statement), params).fetchall())
        finally:
            db.close()

    def client_messages(self, since: datetime, limit: int) -> tuple[int, list[StoredMessage]]:
        """StorePort.client_messages (store/fix_outbox.py), on the owner's connection."""
        compacted = self._one("SELECT value FROM meta WHERE name = ?", (COMPACTED_META,))
        rows = self._db.execute(CLIENT_MESSAGES)
        return last_messages(rows, since, limit, int(compacted[0]) if compacted else 0)

    def bound_client_messages(
        self, retention: timedelta, keep: int, every: float = PASS_EVERY
    ) -> None:
        """StorePort.bound_client_messages (store/fix_outbox.py's MessageBound)."""
        compacted = self._one("SELECT value FROM meta WHERE name = ?", (COMPACTED_META,))
        count = int(compacted[0]) if compacted else 0
        self.messages = MessageBound(retention, keep, count, every)

    def spent_signatures(self) -> SpentStore:
        raise NotImplementedError


def _done_future() -> Future[None]:
    future: Future[None] = Future()
    future.set_result(None)
    return future


def _order(row: tuple[Any, ...]) -> tuple[int, int]:
    """Outbox order: by journal seq, then the effect's index in its key ("<seq>.<index>")."""
    return int(row[1]), int(str(row[0]).rpartition(".")[2])


def _item(row: tuple[Any, ...]) -> OutboxItem:
    command = codec.decode(bytes(row[2]))
    return OutboxItem(row[0], row[1], command)  # type: ignore[arg-type]
