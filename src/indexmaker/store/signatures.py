"""Spent signatures kept durable (issue 8's replay hole; SPEC §5 "Replay").

The FIX server's `SignatureLedger` (server/replay.py) keeps a bounded cache in memory; this
table is the whole record behind it, so forgetting a key in memory never makes a captured
signature spendable again, and neither does a restart. Tables from migration 3: one row per
spent (address, msg_type/id[/nonce]), per (address, r) with the digest it signed, per
compromised address.

Durability: each spend is committed before the request is acknowledged (one autocommitted
insert), on a connection of its own to the store's database with `synchronous=NORMAL`: a
commit is in the WAL when it returns, so it survives a `kill -9` of the process; the next
fsync of that WAL (the engine's own commit, `synchronous=FULL`, at the latest when it answers
the request) makes it survive a power cut too. No fsync of its own per signed frame. The r
values (nonce-reuse detection, not replay) are written in groups of up to `NONCE_GROUP` or
every `NONCE_FLUSH` seconds: a crash may forget the last few, never a spent id.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from indexmaker.store.sqlite import migrate

NONCE_GROUP = 256
NONCE_FLUSH = 0.1  # seconds
SEPARATOR = "\x1f"  # unit separator: never in a msg_type, an id or a nonce (checked charsets)


def spent_text(spent_id: tuple[str, ...]) -> str:
    return SEPARATOR.join(spent_id)


class SqliteSpentSignatures:
    """The durable side of the signature ledger (server/replay.py `SpentStore`). One owner:
    the FIX server, on the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)
        self._nonces: dict[tuple[str, str], bytes] = {}  # not yet written
        self._flushed = time.monotonic()

    def is_spent(self, address: str, spent_id: tuple[str, ...]) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM spent_signatures WHERE address = ? AND spent_id = ?",
            (address, spent_text(spent_id)),
        ).fetchone()
        return row is not None

    def lookup(
        self, address: str, spent_id: tuple[str, ...], r: int
    ) -> tuple[bool, bytes | None, bool]:
        """(spent, the digest r signed before or None, compromised) in one round trip."""
        row = self._db.execute(
            "SELECT "
            "EXISTS (SELECT 1 FROM spent_signatures WHERE address = ? AND spent_id = ?), "
            "(SELECT digest FROM signature_nonces WHERE address = ? AND r = ?), "
            "EXISTS (SELECT 1 FROM compromised_keys WHERE address = ?)",
            (address, spent_text(spent_id), address, format(r, "x"), address),
        ).fetchone()
        digest = self._nonces.get((address, format(r, "x")))
        if digest is None and row[1] is not None:
            digest = bytes(row[1])
        return bool(row[0]), digest, bool(row[2])

    def record(self, address: str, spent_id: tuple[str, ...], r: int, digest: bytes) -> None:
        """Spend it: committed (in the WAL) when this returns; its r soon after."""
        self._db.execute(
            "INSERT INTO spent_signatures (address, spent_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (address, spent_text(spent_id)),
        )
        self._nonces.setdefault((address, format(r, "x")), digest)
        now = time.monotonic()
        if len(self._nonces) >= NONCE_GROUP or now - self._flushed >= NONCE_FLUSH:
            self.flush()

    def flush(self) -> None:
        """Write the r values not yet written, in one transaction."""
        self._flushed = time.monotonic()
        if not self._nonces:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO signature_nonces (address, r, digest) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(a, r, d) for (a, r), d in self._nonces.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._nonces.clear()

    def mark_compromised(self, address: str) -> None:
        self._db.execute(
            "INSERT INTO compromised_keys (address, found_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (address, datetime.now(UTC).isoformat()),
        )

    def close(self) -> None:
        self.flush()
        self._db.close()
