"""Which Across dataworker refund leaf paid which of our expired deposits, kept in the store
(issue 11; table from migration 9; chain/refund_matching.py's `RefundLedger`).

One leaf may refund several deposits (the dataworker sums them per depositor), so the match
is a decision of ours: written before any hop acts on it, so after a restart each hop finds
its refund at once and a leaf is never matched twice. Each write commits at once on a
connection of its own (store/chain_txs.py `connect`), as the pending transactions do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from indexmaker.chain.refund_matching import LeafMatch
from indexmaker.store.chain_txs import connect
from indexmaker.store.sql import Connection, Dialect, migrate

if TYPE_CHECKING:
    from indexmaker.app.config import StoreConfig


class SqlAcrossRefunds:
    """The `across_refunds` table (one owner: the Across bridge's refund look-ups)."""

    def __init__(self, db: Connection, dialect: Dialect) -> None:
        self._db, self._dialect = db, dialect
        migrate(db, dialect)

    def _run(self, statement: str, params: tuple[Any, ...]) -> Any:
        return self._db.execute(self._dialect.sql(statement), params)

    def matched(self, chain_id: int, deposit_id: int) -> LeafMatch | None:
        row = self._run(
            "SELECT leaf_tx, log_index FROM across_refunds WHERE chain_id = ? AND deposit_id = ?",
            (chain_id, str(deposit_id)),
        ).fetchone()
        return None if row is None else self._leaf(chain_id, str(row[0]), int(row[1]))

    def leaf_taken(self, chain_id: int, tx: str, log_index: int) -> bool:
        return self._leaf(chain_id, tx, log_index) is not None

    def _leaf(self, chain_id: int, tx: str, log_index: int) -> LeafMatch | None:
        rows = self._run(
            "SELECT deposit_id, bundle_id FROM across_refunds "
            "WHERE chain_id = ? AND leaf_tx = ? AND log_index = ? ORDER BY leaf_order",
            (chain_id, tx, log_index),
        ).fetchall()
        if not rows:
            return None
        return LeafMatch(tx, log_index, int(rows[0][1]), tuple(int(r[0]) for r in rows))

    def record(self, chain_id: int, match: LeafMatch) -> None:
        """One row per deposit of `match`, in one transaction; committed when this returns.
        A deposit matched already keeps its first match (IntegrityError: a caller bug)."""
        at = datetime.now(UTC).isoformat()
        self._db.execute("BEGIN")
        try:
            for position, deposit_id in enumerate(match.deposit_ids):
                self._run(
                    "INSERT INTO across_refunds (chain_id, deposit_id, leaf_tx, log_index, "
                    "leaf_order, bundle_id, matched_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        chain_id,
                        str(deposit_id),
                        match.tx,
                        match.log_index,
                        position,
                        match.bundle_id,
                        at,
                    ),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()


def open_across_refunds(config: StoreConfig) -> SqlAcrossRefunds | None:
    """The table in the store `config` names; None for the memory store. Raises the
    backend's error when the database cannot be opened."""
    opened = connect(config)
    return None if opened is None else SqlAcrossRefunds(*opened)
