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

A message the FIX server numbers that is not an engine effect (a "service busy" refusal while
the input queue is full) takes a number between the last effect's and the next one's; it is
not durable. More than STEP - 1 of them between two engine messages would repeat a number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime

from indexmaker.core import codec
from indexmaker.core.events import SendToClient
from indexmaker.core.ports import StorePort
from indexmaker.core.store_records import StoredMessage

STEP = 1_000  # numbers per engine message; room for the unstored ones between two
BASE_META = "fix_server_seq_base"


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
CLIENT_MESSAGES = (
    "SELECT j.at, o.command FROM outbox o JOIN journal j ON j.seq = o.journal_seq "
    "WHERE o.kind = 'SendToClient' ORDER BY o.journal_seq, LENGTH(o.key), o.key"
)


def last_messages(
    rows: Iterable[tuple[str, bytes]], since: datetime, limit: int
) -> tuple[int, list[StoredMessage]]:
    """(how many client messages `rows` hold, the last `limit` of those of inputs handled at
    or after `since`, with their ranks), oldest first. `rows`: CLIENT_MESSAGES's (the store
    runs it, either backend). Only those are decoded (and later signed again): start-up is
    bounded by the FIX outbox's own total, not by the history."""
    recent: deque[tuple[int, str, bytes]] = deque(maxlen=limit)
    total = 0
    horizon = since.isoformat()
    for rank, (at, blob) in enumerate(rows):
        total = rank + 1
        if at >= horizon:
            recent.append((rank, at, blob))
    kept = []
    for rank, at, blob in recent:
        command = codec.decode(bytes(blob))
        if isinstance(command, SendToClient):
            kept.append(StoredMessage(rank, datetime.fromisoformat(at), command))
    return total, kept
