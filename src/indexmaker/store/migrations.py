"""Versioned schema migrations, kept in the repository and applied in order at open.

Each migration is a version number, a name and plain SQL statements written in the subset
SQLite and PostgreSQL share (INTEGER/BIGINT, TEXT; a bytes column is written `{blob}`, BLOB
on SQLite and BYTEA on PostgreSQL), so one list serves both backends (`store/sql.py` runs
them, each in its own transaction). The table `schema_migrations`
records which versions are applied; a database newer than this build is refused rather than
guessed at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


class Dialect(Protocol):
    @property
    def blob(self) -> str: ...

    def sql(self, statement: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "journal and outbox",
        (
            # One row per engine input, in the order the engine applied them (SPEC: the core
            # is deterministic, so this is enough to rebuild every ledger by replay).
            "CREATE TABLE journal (seq BIGINT PRIMARY KEY, at TEXT NOT NULL, "
            "entry {blob} NOT NULL)",
            # One row per effect the engine asked for; key = "<journal seq>.<index>", the
            # idempotency key the effect carries; done = carried out (or superseded).
            "CREATE TABLE outbox (key TEXT PRIMARY KEY, journal_seq BIGINT NOT NULL, "
            "kind TEXT NOT NULL, command {blob} NOT NULL, done INTEGER NOT NULL DEFAULT 0)",
            "CREATE INDEX outbox_pending ON outbox (done, journal_seq)",
            # Small named values that must survive a restart (e.g. the FIX server_seq).
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    Migration(
        2,
        "mint invoices by client and time",
        (
            # One row per MintInvoice sent (store/invoices.py), written with its outbox row;
            # minted_at is fixed-width UTC text, so text order is time order.
            "CREATE TABLE invoices (payment_id TEXT PRIMARY KEY, chain_id BIGINT NOT NULL, "
            "address TEXT NOT NULL, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, "
            "minted_at TEXT NOT NULL, journal_seq BIGINT NOT NULL, invoice {blob} NOT NULL)",
            "CREATE INDEX invoices_by_client "
            "ON invoices (address, chain_id, minted_at, payment_id)",
            "CREATE INDEX invoices_by_time ON invoices (minted_at, payment_id)",
        ),
    ),
    Migration(
        3,
        "spent signatures",
        (
            # SPEC §5 Replay: every (msg_type, id[, nonce]) a key has spent, the r values it
            # signed with and the keys found compromised (store/signatures.py). The FIX
            # server keeps only a bounded cache of these in memory.
            "CREATE TABLE spent_signatures (address TEXT NOT NULL, spent_id TEXT NOT NULL, "
            "PRIMARY KEY (address, spent_id))",
            "CREATE TABLE signature_nonces (address TEXT NOT NULL, r TEXT NOT NULL, "
            "digest {blob} NOT NULL, PRIMARY KEY (address, r))",
            "CREATE TABLE compromised_keys (address TEXT PRIMARY KEY, found_at TEXT NOT NULL)",
        ),
    ),
    Migration(
        4,
        "engine snapshots",
        (
            # The engine's ledgers after journal entry `seq`, by the build that took them:
            # a restart restores the newest of its own build and replays only what follows.
            "CREATE TABLE snapshots (seq BIGINT PRIMARY KEY, fingerprint TEXT NOT NULL, "
            "state {blob} NOT NULL)",
        ),
    ),
    Migration(
        5,
        "chain transactions sent and not yet mined",
        (
            # One row per (chain, sender, nonce) the issuer signed and has no receipt for
            # (store/chain_txs.py): written before the transaction is broadcast, deleted once
            # it is mined; `hashes` every version sent (fee-bumped replacements), `raw` the
            # newest signed one, `fields` its JSON terms (to bump it again after a restart).
            "CREATE TABLE chain_txs (chain_id BIGINT NOT NULL, sender TEXT NOT NULL, "
            "nonce BIGINT NOT NULL, hashes TEXT NOT NULL, raw {blob} NOT NULL, "
            "fields TEXT NOT NULL, sent_at TEXT NOT NULL, "
            "PRIMARY KEY (chain_id, sender, nonce))",
        ),
    ),
    Migration(
        6,
        "order and batch history",
        (
            # One row per index order (store/order_history.py) and per batch
            # (store/batch_history.py), written with the journal entries and client messages
            # behind them: the query API lists closed and old ones, also after a restart.
            # Decimals as exact text; times as fixed-width UTC text (text order = time order).
            "CREATE TABLE orders (chain_id BIGINT NOT NULL, address TEXT NOT NULL, "
            "client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, "
            "amount TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, "
            "filled_quantity TEXT NOT NULL, collateral_spent TEXT NOT NULL, "
            "fill_rate TEXT NOT NULL, payment_id TEXT, received_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL, journal_seq BIGINT NOT NULL, "
            "PRIMARY KEY (chain_id, address, client_order_id))",
            "CREATE INDEX orders_by_arrival ON orders (journal_seq)",
            "CREATE INDEX orders_by_client ON orders (address, chain_id, journal_seq)",
            "CREATE TABLE batches (side TEXT NOT NULL, batch_id BIGINT NOT NULL, "
            "status TEXT NOT NULL, created_at TEXT NOT NULL, completed_at TEXT, "
            "order_count INTEGER NOT NULL, asset_count INTEGER NOT NULL, "
            "notional TEXT NOT NULL, details TEXT NOT NULL, journal_seq BIGINT NOT NULL, "
            "PRIMARY KEY (side, batch_id))",
            "CREATE INDEX batches_by_creation ON batches (journal_seq, batch_id)",
        ),
    ),
    Migration(
        7,
        "redemption invoices by client and time",
        (
            # One row per RedemptionInvoice sent (store/invoices.py), as `invoices` for mints;
            # invoice_key is "<chain_id>:<address>:<client order id>" (one per sell order).
            "CREATE TABLE redemption_invoices (invoice_key TEXT PRIMARY KEY, "
            "chain_id BIGINT NOT NULL, address TEXT NOT NULL, client_order_id TEXT NOT NULL, "
            "symbol TEXT NOT NULL, redeemed_at TEXT NOT NULL, journal_seq BIGINT NOT NULL, "
            "invoice {blob} NOT NULL)",
            "CREATE INDEX redemption_invoices_by_client "
            "ON redemption_invoices (address, chain_id, redeemed_at, invoice_key)",
            "CREATE INDEX redemption_invoices_by_time "
            "ON redemption_invoices (redeemed_at, invoice_key)",
        ),
    ),
    Migration(
        8,
        "client messages keep their time",
        (
            # The FIX outbox is rebuilt from the outbox's client messages (store/fix_outbox.py)
            # by their input's time, which the journal loses to compaction: kept in the row.
            # Rows whose journal entry is gone already keep NULL (never restored, still
            # counted for the ranks).
            "ALTER TABLE outbox ADD COLUMN at TEXT",
            "UPDATE outbox SET at = (SELECT j.at FROM journal j WHERE j.seq = outbox.journal_seq) "
            "WHERE kind = 'SendToClient'",
            "CREATE INDEX outbox_by_kind ON outbox (kind, journal_seq)",
        ),
    ),
    Migration(
        9,
        "across refunds matched to our expired deposits",
        (
            # One row per expired Across deposit of ours (origin chain, deposit id: a 256-bit
            # number, as text) and the dataworker's refund leaf that paid it (its log: tx and
            # index; `leaf_order` orders a leaf's deposits): one leaf may pay several, summed
            # (store/across_refunds.py). Written when matched, before the hop acts on it.
            "CREATE TABLE across_refunds (chain_id BIGINT NOT NULL, deposit_id TEXT NOT NULL, "
            "leaf_tx TEXT NOT NULL, log_index BIGINT NOT NULL, leaf_order INTEGER NOT NULL, "
            "bundle_id BIGINT NOT NULL, matched_at TEXT NOT NULL, "
            "PRIMARY KEY (chain_id, deposit_id))",
            "CREATE INDEX across_refunds_by_leaf "
            "ON across_refunds (chain_id, leaf_tx, log_index, leaf_order)",
        ),
    ),
    # Add new tables as the next numbered migration here (never edit an applied one).
)

CREATE_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)

LATEST = MIGRATIONS[-1].version


class SchemaError(Exception):
    """The database's schema is newer than this build knows (refuse; never guess)."""


def transaction(db: Any, body: Any) -> None:
    db.execute("BEGIN")
    try:
        body()
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def migrate(db: Any, dialect: Dialect) -> int:
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
