"""The FIX server's resend outbox and `server_seq`, made durable by the store's own outbox
(issue 10: a client that reconnects after a restart gets every message it missed, once).

Every business message the engine sends a client is already an outbox row (`SendToClient`)
committed before it leaves the process, and those rows are carried out in the order they were
committed. So the n-th such row ever written gets `server_seq = base + (n + 1) * STEP` in
every life of the process: while running, by counting deliveries from the number of rows
found at start; after a restart, from each row's rank. `base` is chosen once (the microsecond
epoch of the first start, in the store's `meta`) and never changes, so GET /info's
`server_seq_start` stays the same and a client resumes from its cursor as if nothing happened.
On start the FIX outbox is rebuilt from the rows within its retention, and the messages the
crash left undelivered are among them: a resume sends each missed message once.

Bounded (`MessageBound`, `StorePort.bound_client_messages`): once the service names its FIX
outbox's retention and total, the store's writer thread deletes, at most once a minute and
inside a group commit, the oldest client messages that are delivered (marked done) and that a
restart would not restore (older than the retention, or before the newest `keep`), always a
prefix by rank; `fix_messages_compacted` in `meta` counts them in the same transaction, so
ranks (and server_seqs) stay what they were. Each row carries the time of its input (`at`,
migration 8): the journal behind it may be compacted away.

A message the FIX server numbers that is not an engine effect (a "service busy" refusal while
the input queue is full) takes a number between the last effect's and the next one's; it is
not durable. More than STEP - 1 of them between two engine messages would repeat a number.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from indexmaker.core import codec
from indexmaker.core.events import SendToClient
from indexmaker.core.ports import StorePort
from indexmaker.core.store_records import StoredMessage

STEP = 1_000  # numbers per engine message; room for the unstored ones between two
BASE_META = "fix_server_seq_base"
COMPACTED_META = "fix_messages_compacted"  # client message rows deleted so far (a prefix)
PASS_EVERY = 60.0  # seconds between two passes of the bound (a full batch: the next commit)
PASS_BATCH = 5_000  # rows deleted per pass at most (one key list; no long lock)


def server_seq_base(store: StorePort, epoch: int) -> int:
    """The store's base (set to `epoch` and committed on first use)."""
    kept = store.get_meta(BASE_META)
    if kept is not None:
        return int(kept)
    store.set_meta(BASE_META, str(epoch))
    store.commit()
    return epoch


class DurableNumbers:
    """Numbers of engine messages by rank; `next_effect` numbers the next one delivered,
    `between` one that is not an engine effect."""

    def __init__(self, base: int, messages: int) -> None:
        self.base = base
        self.rank = messages  # the next engine message's rank

    def of(self, rank: int) -> int:
        return self.base + (rank + 1) * STEP

    @property
    def last(self) -> int:
        """The number of the last engine message so far (`base` before any)."""
        return self.base + self.rank * STEP

    def next_effect(self) -> int:
        number = self.of(self.rank)
        self.rank += 1
        return number

    def between(self, last_given: int) -> int:
        """A number after `last_given` and before the next engine message's (capped)."""
        return min(max(last_given, self.last) + 1, self.of(self.rank) - 1)


# Keys are "<journal seq>.<index>": within one seq, the shorter key has the lower index.
RANK_ORDER = "ORDER BY journal_seq, LENGTH(key), key"
CLIENT_MESSAGES = f"SELECT at, command FROM outbox WHERE kind = 'SendToClient' {RANK_ORDER}"


def last_messages(
    rows: Iterable[tuple[str | None, bytes]], since: datetime, limit: int, compacted: int = 0
) -> tuple[int, list[StoredMessage]]:
    """(how many client messages were ever committed, the last `limit` of those of inputs
    handled at or after `since`, with their ranks), oldest first. `rows`: CLIENT_MESSAGES's
    (the store runs it, either backend); `compacted`: how many rows before them were deleted
    (COMPACTED_META), where the ranks start. A row without a time (written before rows kept
    it, its journal entry compacted) is never recent. Only the kept ones are decoded (and
    later signed again): start-up is bounded by the FIX outbox's own total."""
    recent: deque[tuple[int, str, bytes]] = deque(maxlen=limit)
    total = compacted
    horizon = since.isoformat()
    for rank, (at, blob) in enumerate(rows, compacted):
        total = rank + 1
        if at is not None and at >= horizon:
            recent.append((rank, at, blob))
    kept = []
    for rank, at, blob in recent:
        command = codec.decode(bytes(blob))
        if isinstance(command, SendToClient):
            kept.append(StoredMessage(rank, datetime.fromisoformat(at), command))
    return total, kept


class Dialect(Protocol):
    def sql(self, statement: str) -> str: ...


@dataclass(slots=True)
class MessageBound:
    """The store's client messages kept to what a restart restores (`retention`, `keep`:
    the FIX server's `[server.session] outbox_retention` and `outbox_total`). `write` runs
    in the writer thread inside a group commit; `committed` once that one is durable."""

    retention: timedelta
    keep: int
    compacted: int = 0  # rows deleted so far, durable
    every: float = PASS_EVERY
    batch: int = PASS_BATCH
    _due: float = 0.0  # monotonic time of the next pass

    def write(self, cursor: Any, dialect: Dialect, now: str | None) -> int | None:
        """When a pass is due: delete the longest prefix (by rank, at most `batch`) of done
        client messages older than `now` - retention or before the newest `keep`, and
        count them in meta. `now`: the newest journalled input's time (ISO text; None: no
        pass). Returns the new compacted count, None when nothing was deleted."""
        clock = time.monotonic()
        if now is None or clock < self._due:
            return None
        self._due = clock + self.every
        sql = dialect.sql
        cursor.execute(sql("SELECT COUNT(*) FROM outbox WHERE kind = 'SendToClient'"))
        present = int(cursor.fetchone()[0])
        horizon = (datetime.fromisoformat(now) - self.retention).isoformat()
        cursor.execute(
            sql(
                "SELECT key, at, done FROM outbox WHERE kind = 'SendToClient' "
                f"{RANK_ORDER} LIMIT {int(self.batch)}"
            )
        )
        gone: list[str] = []
        for index, (key, at, done) in enumerate(cursor.fetchall()):
            unrestored = at is None or at < horizon or index < present - self.keep
            if not (done and unrestored):
                break  # a prefix only: the ranks of the rows after it stay as they are
            gone.append(key)
        if not gone:
            return None
        if len(gone) == self.batch:
            self._due = clock  # more behind it: the next commit goes on
        cursor.execute(sql(f"DELETE FROM outbox WHERE key IN ({', '.join('?' * len(gone))})"), gone)
        compacted = self.compacted + len(gone)
        cursor.execute(
            sql(
                "INSERT INTO meta (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            ),
            (COMPACTED_META, str(compacted)),
        )
        return compacted

    def committed(self, compacted: int | None) -> None:
        if compacted is not None:
            self.compacted = compacted
