"""Spent signatures kept durable (issue 8's replay hole; SPEC §5 "Replay"), on either backend.

The FIX server's `SignatureLedger` (server/replay.py) keeps a bounded cache in memory; these
tables are the whole record behind it, so forgetting a key in memory never makes a captured
signature spendable again, and neither does a restart. Tables from migration 3: one row per
spent (address, msg_type/id[/nonce]), per (address, r) with the digest it signed, per
compromised address. The store port opens one (`StorePort.spent_signatures`) on a connection
of its own to the store's database.

A spend on an engine input (an order, a cancel, a quote request) is held by the engine's
store and written in the same commit as that input's journal entry (`SqlStore.hold_spend`):
a crash keeps both or neither, so a client's resend of a request the crash lost is taken
(issue 8's resend window; docs/decisions.md "SDK resends keep the request's nonce"). Until
then memory refuses a copy (the ledger's cache, and the held set here).

Any other spend (a ResendRequest's challenge) is committed at once, one autocommitted insert
without an fsync of its own: SQLite with `synchronous=NORMAL` (the commit is in the WAL when
it returns), PostgreSQL with `synchronous_commit = off` on this connection (in the server's
WAL buffers; the server outlives our process). Either way it survives a `kill -9` of the
service, and the engine's next durable commit flushes the WAL up to and past it, so it
survives a power cut too. The r values
(nonce-reuse detection, not replay) are written in groups of up to `NONCE_GROUP` or every
`NONCE_FLUSH` seconds: a crash may forget the last few, never a spent id.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from indexmaker.store.sql import Connection, Dialect, SqlStore, transaction

NONCE_GROUP = 256
NONCE_FLUSH = 0.1  # seconds
SEPARATOR = "\x1f"  # unit separator: never in a msg_type, an id or a nonce (checked charsets)


def spent_text(spent_id: tuple[str, ...]) -> str:
    return SEPARATOR.join(spent_id)


class SqlSpentSignatures:
    """The durable side of the signature ledger (core.store_records `SpentStore`). One owner:
    the FIX server, on the event loop. `db`: a connection in autocommit mode."""

    def __init__(self, db: Connection, dialect: Dialect, holder: SqlStore | None = None) -> None:
        """`holder`: the engine's store, which holds spends on engine inputs until the
        input's commit (None: every spend written at once)."""
        self._db = db
        self._holder = holder
        self._sql = dialect.sql
        self._nonces: dict[tuple[str, str], bytes] = {}  # not yet written
        self._flushed = time.monotonic()

    def _unwritten(self, address: str, text: str) -> bool:
        return self._holder is not None and self._holder.spend_unwritten((address, text))

    def is_spent(self, address: str, spent_id: tuple[str, ...]) -> bool:
        if self._unwritten(address, spent_text(spent_id)):
            return True
        row = self._db.execute(
            self._sql("SELECT 1 FROM spent_signatures WHERE address = ? AND spent_id = ?"),
            (address, spent_text(spent_id)),
        ).fetchone()
        return row is not None

    def lookup(
        self, address: str, spent_id: tuple[str, ...], r: int
    ) -> tuple[bool, bytes | None, bool]:
        """(spent, the digest r signed before or None, compromised) in one round trip."""
        row = self._db.execute(
            self._sql(
                "SELECT "
                "EXISTS (SELECT 1 FROM spent_signatures WHERE address = ? AND spent_id = ?), "
                "(SELECT digest FROM signature_nonces WHERE address = ? AND r = ?), "
                "EXISTS (SELECT 1 FROM compromised_keys WHERE address = ?)"
            ),
            (address, spent_text(spent_id), address, format(r, "x"), address),
        ).fetchone()
        digest = self._nonces.get((address, format(r, "x")))
        if digest is None and row[1] is not None:
            digest = bytes(row[1])
        spent = bool(row[0]) or self._unwritten(address, spent_text(spent_id))
        return spent, digest, bool(row[2])

    def record(
        self,
        address: str,
        spent_id: tuple[str, ...],
        r: int,
        digest: bytes,
        request: object | None = None,
    ) -> None:
        """Spend it: with an engine input as `request`, committed with that input's journal
        entry; else committed (survives a kill of the process) when this returns. Its r
        soon after."""
        text = spent_text(spent_id)
        holder = self._holder
        if holder is None or not holder.hold_spend(request, (address, text)):
            self._db.execute(
                self._sql(
                    "INSERT INTO spent_signatures (address, spent_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                (address, text),
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
        rows = [(a, r, d) for (a, r), d in self._nonces.items()]

        def write() -> None:
            self._db.cursor().executemany(
                self._sql(
                    "INSERT INTO signature_nonces (address, r, digest) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                rows,
            )

        transaction(self._db, write)
        self._nonces.clear()

    def mark_compromised(self, address: str) -> None:
        self._db.execute(
            self._sql(
                "INSERT INTO compromised_keys (address, found_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING"
            ),
            (address, datetime.now(UTC).isoformat()),
        )

    def close(self) -> None:
        self.flush()
        self._db.close()
