"""One group commit's rows and how they are written (store/sql.py runs it in the store's
writer thread; docs/decisions.md, "Commits in the store's writer thread")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from indexmaker.store.invoices import MINTS, REDEMPTIONS, InvoiceRow

SpendKey = tuple[str, str]  # (address, spent id text): a row of spent_signatures
# Parameters per statement at most (SQLite allows 32,766 since 3.32, PostgreSQL 65,535).
MAX_PARAMS = 30_000


class Dialect(Protocol):
    def sql(self, statement: str) -> str: ...


@dataclass(slots=True)
class Group:
    """Everything buffered between two commits: written in one transaction."""

    journal: list[tuple[int, str, bytes]] = field(default_factory=list)
    outbox: list[tuple[str, int, str, bytes, str | None]] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)  # the query API's tables
    redemptions: list[InvoiceRow] = field(default_factory=list)
    spends: list[SpendKey] = field(default_factory=list)
    # The query API's order and batch history (store/order_history.py, batch_history.py):
    # statements in the order they were buffered (a row's insert before its updates).
    history: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    snapshot: tuple[int, str, bytes] | None = None
    span: tuple[int, int] = (0, 0)  # the crash points' durable count (store/crash.py)
    at: str | None = None  # the newest journalled input's time when handed over (ISO text)

    def __bool__(self) -> bool:
        return bool(
            self.journal
            or self.outbox
            or self.done
            or self.spends
            or self.history
            or self.meta
            or self.snapshot is not None
        )


def write(cursor: Any, dialect: Dialect, group: Group) -> None:
    """The group's statements, inside the caller's transaction."""
    sql = dialect.sql
    insert_rows(
        cursor, dialect, "INSERT INTO journal (seq, at, entry) VALUES (?, ?, ?)", group.journal
    )
    insert_rows(
        cursor,
        dialect,
        "INSERT INTO outbox (key, journal_seq, kind, command, at) VALUES (?, ?, ?, ?, ?)",
        group.outbox,
    )
    insert_rows(cursor, dialect, MINTS.insert, group.invoices)
    insert_rows(cursor, dialect, REDEMPTIONS.insert, group.redemptions)
    insert_rows(
        cursor,
        dialect,
        "INSERT INTO spent_signatures (address, spent_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        group.spends,
    )
    for statement, params in group.history:
        cursor.execute(sql(statement), params)
    for start in range(0, len(group.done), MAX_PARAMS):
        keys = group.done[start : start + MAX_PARAMS]
        marks = ", ".join("?" * len(keys))
        cursor.execute(sql(f"UPDATE outbox SET done = 1 WHERE key IN ({marks})"), keys)
    if group.meta:
        cursor.executemany(
            sql(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            list(group.meta.items()),
        )
    if group.snapshot is not None:
        seq, fingerprint, state = group.snapshot
        # A snapshot at the same position replaces it; which others are kept is
        # store/compaction.py's (it runs next, in the same transaction).
        cursor.execute(sql("DELETE FROM snapshots WHERE seq = ?"), (seq,))
        cursor.execute(
            sql("INSERT INTO snapshots (seq, fingerprint, state) VALUES (?, ?, ?)"),
            (seq, fingerprint, state),
        )


def insert_rows(
    cursor: Any, dialect: Dialect, statement: str, rows: Sequence[Sequence[Any]]
) -> None:
    """`statement` (one `VALUES (?, ...)` row) for every row, as multi-row statements: the
    writer thread then takes the GIL a few times per commit instead of once per row (a
    busy engine thread keeps it up to the 5 ms switch interval each time: executemany made
    a commit of thousands of rows wait seconds behind a busy engine)."""
    if not rows:
        return
    start = statement.index("VALUES (") + len("VALUES ")
    end = statement.index(")", start) + 1
    head, row, tail = statement[:start], statement[start:end], statement[end:]
    per = MAX_PARAMS // len(rows[0])
    for first in range(0, len(rows), per):
        chunk = rows[first : first + per]
        sql = head + ", ".join([row] * len(chunk)) + tail
        cursor.execute(dialect.sql(sql), [value for each in chunk for value in each])
