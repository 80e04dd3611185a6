"""Chain transactions the issuer sent and has no receipt for, kept in the store (issue 11:
"pending transactions live in the store"; table from migration 5).

A transaction is written here before it is broadcast and deleted once it is mined
(chain/tx.py), so after a crash the service knows every transaction that may still be in a
node's mempool: it waits for those (or rebroadcasts the very same signed bytes, or bumps
their fees under the same nonce) before it sends anything new, instead of sending the same
action again under a fresh nonce (an Across deposit sent twice is collateral stuck twice).

Each write commits at once, on a connection of its own to the store's database (the engine's
store buffers its writes until its group commit, and a transaction must be durable before it
leaves). On SQLite that connection waits up to 5 s for the engine's commit (busy_timeout).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from indexmaker.store.sql import Connection, Dialect, migrate
from indexmaker.store.sqlite import DB_NAME, SQLITE

if TYPE_CHECKING:  # the chain adapters import PendingTx: keep app/ out of their imports
    from indexmaker.app.config import StoreConfig


@dataclass(frozen=True, slots=True)
class PendingTx:
    """One sent transaction without a receipt: `hashes` of every version sent (oldest
    first), `raw` the newest signed bytes, `fields` its terms (to, data, value, gas, fees,
    nonce, chainId) as sent."""

    chain_id: int
    sender: str
    nonce: int
    hashes: tuple[str, ...]
    raw: bytes
    fields: dict[str, Any]


class SqlChainTxs:
    """The `chain_txs` table (one owner: the chain adapters on the event loop)."""

    def __init__(self, db: Connection, dialect: Dialect) -> None:
        self._db, self._dialect = db, dialect
        migrate(db, dialect)

    def _run(self, statement: str, params: tuple[Any, ...]) -> Any:
        return self._db.execute(self._dialect.sql(statement), params)

    def record(self, tx: PendingTx) -> None:
        """Write (or replace, for a fee-bumped version) the row of (chain, sender, nonce);
        committed when this returns."""
        self._run(
            "INSERT INTO chain_txs (chain_id, sender, nonce, hashes, raw, fields, sent_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chain_id, sender, nonce) DO UPDATE SET "
            "hashes = excluded.hashes, raw = excluded.raw, fields = excluded.fields",
            (
                tx.chain_id,
                tx.sender.lower(),
                tx.nonce,
                json.dumps(list(tx.hashes)),
                tx.raw,
                json.dumps(tx.fields, sort_keys=True, default=_hex),
                datetime.now(UTC).isoformat(),
            ),
        )

    def settle(self, chain_id: int, sender: str, nonce: int) -> None:
        """The transaction of that nonce is mined (or its nonce was used by another)."""
        self._run(
            "DELETE FROM chain_txs WHERE chain_id = ? AND sender = ? AND nonce = ?",
            (chain_id, sender.lower(), nonce),
        )

    def pending(self, chain_id: int, sender: str) -> list[PendingTx]:
        """`sender`'s unmined transactions on `chain_id`, by nonce."""
        rows = self._run(
            "SELECT nonce, hashes, raw, fields FROM chain_txs "
            "WHERE chain_id = ? AND sender = ? ORDER BY nonce",
            (chain_id, sender.lower()),
        ).fetchall()
        return [
            PendingTx(
                chain_id,
                sender,
                int(nonce),
                tuple(json.loads(hashes)),
                bytes(raw),
                json.loads(fields),
            )
            for nonce, hashes, raw, fields in rows
        ]

    def close(self) -> None:
        self._db.close()


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    raise TypeError(f"not JSON: {type(value).__name__}")


def open_chain_txs(config: StoreConfig) -> SqlChainTxs | None:
    """The table in the store `config` names; None for the memory store (nothing survives
    a restart there anyway). Raises the backend's error when the database cannot be opened."""
    opened = connect(config)
    return None if opened is None else SqlChainTxs(*opened)


def connect(config: StoreConfig) -> tuple[Connection, Dialect] | None:
    """A connection of its own to the store `config` names, each write committed at once
    (autocommit; durable on SQLite's disk before it returns), and its dialect; None for the
    memory store. Raises the backend's error when the database cannot be opened."""
    if config.url is not None:
        import psycopg  # only when PostgreSQL is used

        from indexmaker.store.postgres import POSTGRES

        return psycopg.connect(config.url, autocommit=True), POSTGRES
    if config.data_dir is None:
        return None

    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(config.data_dir / DB_NAME, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # the row must outlive a power cut before the send
    return db, SQLITE
