"""A listing's SELECT built from optional filters, in the SQL SQLite and PostgreSQL share
(`?` parameters; the store's dialect rewrites them). Used by the query API's tables
(store/invoices.py, order_history.py, batch_history.py), and the sortable time text their
time columns hold."""

from __future__ import annotations

from datetime import UTC, datetime

from indexmaker.core.ids import ClientKey

# Fixed width, UTC, microseconds always: text order is time order (both backends).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def time_key(at: datetime) -> str:
    """`at` (timezone-aware) as a table's sortable text. ValueError for a naive time."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no place on the time line (give a timezone)")
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def from_time_key(key: str) -> datetime:
    """The datetime (UTC) of a `time_key` text."""
    return datetime.strptime(key, TIME_FORMAT).replace(tzinfo=UTC)


class Listing:
    def __init__(self, columns: str, table: str) -> None:
        self._head = f"SELECT {columns} FROM {table}"
        self._where: list[str] = []
        self._params: list[object] = []

    def where(self, clause: str, *params: object) -> Listing:
        self._where.append(clause)
        self._params += params
        return self

    def equal(self, column: str, value: object | None) -> Listing:
        """`column = value`, unless value is None (no filter)."""
        return self if value is None else self.where(f"{column} = ?", value)

    def client(self, client: ClientKey | None) -> Listing:
        if client is None:
            return self
        return self.where("chain_id = ? AND address = ?", int(client[0]), str(client[1]))

    def between(self, column: str, since: datetime | None, until: datetime | None) -> Listing:
        """`since` <= column < `until` on a time_key column (ValueError for a naive time)."""
        if since is not None:
            self.where(f"{column} >= ?", time_key(since))
        if until is not None:
            self.where(f"{column} < ?", time_key(until))
        return self

    def build(self, order_by: str, limit: int) -> tuple[str, list[object]]:
        sql = self._head
        if self._where:
            sql += " WHERE " + " AND ".join(self._where)
        return f"{sql} ORDER BY {order_by} LIMIT ?", [*self._params, limit]
