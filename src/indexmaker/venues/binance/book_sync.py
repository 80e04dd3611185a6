"""Snapshot + diff-depth synchronisation of one symbol's book (pure: no I/O, time passed in).

The procedure is Binance's documented one (web-socket-streams.md "How to manage a local order
book correctly", SPEC §6):

1. buffer stream events, noting the first one's `U`;
2. fetch a depth snapshot; if its `lastUpdateId` < first buffered `U` - 1 the snapshot lags the
   stream: fetch again, keeping the buffer;
3. drop buffered events with `u` <= lastUpdateId; the book = snapshot, its id = lastUpdateId;
4. apply buffered then live events: `u` <= id is late or a repeat (IGNORED: neither the book nor
   the core sees it); the first event applied after the snapshot must have `U` <= id + 1 <= `u`,
   every later one `U` == id + 1; anything else is a gap: the book is discarded and the
   procedure restarts from 1 (the event that showed the gap is kept).

A book is usable by the solver only while `LIVE`, not crossed, and fresh: its connection showed
life (any frame; the connector calls `touch`) within `stale_after_ms`, and the symbol's own
stream sent an event within `silent_after_ms` (a stream can stop for one symbol while the
connection lives: python-binance #1057). A quiet symbol is synchronised without waiting for an
event: `request_snapshot` after the subscription is acknowledged.

Diffs reach the book lazily (tick_book.py): every `settle_every` diffs, after a snapshot and at
`settle` the queued diffs are applied and the book checked (a level it cannot read, or a
crossed book, restarts the procedure). A book left broken by a read in between is invalid
until then.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from indexmaker.core.ids import Pair
from indexmaker.venues.binance.tick_book import TickBook
from indexmaker.venues.binance.wire import BookTicker, DepthDiff, DepthSnapshot


class SyncState(Enum):
    BUFFERING = "buffering"  # events buffered, waiting for a usable snapshot
    LIVE = "live"  # book = snapshot + every event since, contiguous


class SyncAction(Enum):
    NONE = "none"
    IGNORED = (
        "ignored"  # a late or repeated diff (`u` <= the book's id): not applied, not forwarded
    )
    FETCH_SNAPSHOT = "fetch_snapshot"  # the caller should (re)fetch a depth snapshot


@dataclass(slots=True)
class SyncStats:
    applied: int = 0  # diff events applied to the book
    ignored: int = 0  # events older than the book
    gaps: int = 0  # sequence gaps (stream or buffer) that forced a re-snapshot
    lagging_snapshots: int = 0  # snapshots older than the buffered stream
    crossed: int = 0  # books found crossed after an event (re-snapshot)
    buffer_overflows: int = 0
    resyncs: int = 0  # LIVE -> BUFFERING transitions, any cause


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Best bid/ask from `@bookTicker`; `update_id` is the book update id it reflects."""

    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    update_id: int
    received_ms: int


class BookSync:
    """Keeps `book` equal to the venue's book for one symbol, or says it is not.

    `on_diff`, `on_snapshot` and `on_disconnect` return whether a snapshot fetch is needed; the
    caller fetches it (paced by the venue's weight limits) and passes it to `on_snapshot`.
    A fetch is asked for once per need: `snapshot_requested` stays set until a snapshot arrives.
    """

    __slots__ = (
        "_buffer",
        "alive_ms",
        "book",
        "contiguous",
        "last_event_ms",
        "last_update_id",
        "max_buffer",
        "reason",
        "settle_every",
        "silent_after_ms",
        "snapshot_requested",
        "stale_after_ms",
        "state",
        "stats",
        "symbol",
        "top",
    )

    def __init__(
        self,
        symbol: Pair,
        stale_after_ms: int = 10_000,
        max_buffer: int = 10_000,
        silent_after_ms: int = 120_000,
        settle_every: int = 100,
    ):
        self.symbol = symbol
        self.book = TickBook(symbol)
        self.state = SyncState.BUFFERING
        self.last_update_id = 0
        # False until the first diff after a snapshot is applied: that one may straddle the
        # snapshot's id (U <= id + 1 <= u); every later one must start at id + 1 exactly.
        self.contiguous = False
        self.last_event_ms: int | None = None
        self.alive_ms: int | None = None
        self.stale_after_ms = stale_after_ms
        self.silent_after_ms = silent_after_ms
        self.max_buffer = max_buffer
        self.settle_every = settle_every  # diffs queued before the book is applied and checked
        self.snapshot_requested = False
        self.reason = "no snapshot yet"
        self.stats = SyncStats()
        self.top: TopOfBook | None = None
        self._buffer: deque[DepthDiff] = deque()

    # ------------------------------------------------------------------ events

    def on_diff(self, event: DepthDiff, now_ms: int) -> SyncAction:
        """One `depthUpdate` event, in stream order. IGNORED: late or repeated (`u` <= the
        book's id, web-socket-streams.md step 4): the caller must not forward it either."""
        self.last_event_ms = now_ms
        self.alive_ms = now_ms
        if self.state is SyncState.LIVE:
            last_id = self.last_update_id
            if event.u <= last_id:
                self.stats.ignored += 1
                return SyncAction.IGNORED
            expected = last_id + 1
            if expected != event.U and (self.contiguous or expected < event.U):
                self.stats.gaps += 1
                return self._restart(f"gap: expected {expected}, got {event.U}", event)
            book = self.book
            book.apply_update(event.b, event.a)
            self.last_update_id = event.u
            self.contiguous = True
            self.stats.applied += 1
            if book.pending >= self.settle_every or book.broken is not None:
                return self.settle()
            return SyncAction.NONE
        buffer = self._buffer
        if buffer and buffer[-1].u + 1 != event.U:
            if event.u <= buffer[-1].u:  # a repeat of what is buffered
                self.stats.ignored += 1
                action = self._ask()
                return SyncAction.IGNORED if action is SyncAction.NONE else action
            self.stats.gaps += 1  # the buffered run is broken: only what follows can be used
            buffer.clear()
        if len(buffer) >= self.max_buffer:
            self.stats.buffer_overflows += 1
            buffer.popleft()
        buffer.append(event)
        return self._ask()

    def on_snapshot(self, snapshot: DepthSnapshot, now_ms: int) -> SyncAction:
        """A depth snapshot fetched after `FETCH_SNAPSHOT`; a late one in LIVE is ignored."""
        if self.state is SyncState.LIVE:
            return SyncAction.NONE
        self.snapshot_requested = False
        last_id = snapshot.lastUpdateId
        buffer = self._buffer
        if buffer and last_id + 1 < buffer[0].U:
            self.stats.lagging_snapshots += 1
            self.reason = f"snapshot {last_id} lags the stream (first U {buffer[0].U})"
            return self._ask()
        self.book.apply_snapshot(snapshot.bids, snapshot.asks)
        self.last_update_id = last_id
        self.contiguous = False
        self.state = SyncState.LIVE
        self.reason = ""
        self.last_event_ms = now_ms
        self.alive_ms = now_ms
        pending = list(buffer)
        buffer.clear()
        for index, event in enumerate(pending):
            if self.on_diff(event, now_ms) is SyncAction.FETCH_SNAPSHOT:
                # Re-buffer what followed the break: it is still the stream, in order.
                for later in pending[index + 1 :]:
                    self.on_diff(later, now_ms)
                return SyncAction.FETCH_SNAPSHOT
        return self.settle()

    def settle(self) -> SyncAction:
        """Apply the queued diffs and check the book: a level it cannot read or a crossed
        book restarts the procedure (FETCH_SNAPSHOT). NONE when nothing is wrong or not LIVE."""
        if self.state is not SyncState.LIVE:
            return SyncAction.NONE
        broken = self.book.flush()
        if broken is not None:  # a level we cannot read: the book is unknown
            return self._restart(f"bad level: {broken}", None)
        if self.book.crossed():
            self.stats.crossed += 1
            return self._restart("book crossed", None)
        return SyncAction.NONE

    def request_snapshot(self) -> SyncAction:
        """The stream is subscribed: a snapshot taken from now on can be tied to it, even if
        no event has arrived (a quiet symbol would otherwise never synchronise)."""
        if self.state is SyncState.LIVE:
            return SyncAction.NONE
        return self._ask()

    def touch(self, now_ms: int) -> None:
        """The connection carrying this stream is alive (a frame arrived at `now_ms`)."""
        if self.alive_ms is None or now_ms > self.alive_ms:
            self.alive_ms = now_ms

    def on_book_ticker(self, ticker: BookTicker, now_ms: int) -> None:
        self.top = TopOfBook(ticker.b, ticker.B, ticker.a, ticker.A, ticker.u, now_ms)

    def on_disconnect(self, reason: str) -> SyncAction:
        """The stream dropped: events were lost, the book cannot be trusted."""
        if self.state is SyncState.LIVE:
            self._restart(reason, None)
        self._buffer.clear()
        self.reason = reason
        # The snapshot is asked for once the stream is back: a snapshot taken now could not be
        # tied to events that have not arrived yet.
        self.snapshot_requested = False
        return SyncAction.NONE

    # ------------------------------------------------------------------ queries

    def is_valid(self, now_ms: int) -> bool:
        """True when the solver may trade on `book`: synchronised and not stale."""
        return (
            self.state is SyncState.LIVE
            and self.book.broken is None
            and self.alive_ms is not None
            and self.last_event_ms is not None
            and now_ms - self.alive_ms <= self.stale_after_ms
            and now_ms - self.last_event_ms <= self.silent_after_ms
        )

    def invalid_reason(self, now_ms: int) -> str:
        if self.state is not SyncState.LIVE:
            return self.reason
        if self.book.broken is not None:
            return f"bad level: {self.book.broken}"
        if self.alive_ms is None or now_ms - self.alive_ms > self.stale_after_ms:
            return f"stale: connection silent for more than {self.stale_after_ms} ms"
        if self.last_event_ms is None or now_ms - self.last_event_ms > self.silent_after_ms:
            return f"stale: no event for this symbol for more than {self.silent_after_ms} ms"
        return ""

    def best_prices(self) -> tuple[Decimal | None, Decimal | None]:
        """Best bid/ask: the book-ticker's when it is at least as recent as the book."""
        top = self.top
        if (
            top is not None
            and self.state is SyncState.LIVE
            and top.update_id >= self.last_update_id
        ):
            return top.bid, top.ask
        return self.book.best_prices()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # ------------------------------------------------------------------ internals

    def _restart(self, reason: str, keep: DepthDiff | None) -> SyncAction:
        self.state = SyncState.BUFFERING
        self.reason = reason
        self.book.clear()
        self.last_update_id = 0
        self.contiguous = False
        self.stats.resyncs += 1
        self._buffer.clear()
        if keep is not None:
            self._buffer.append(keep)
        return self._ask()

    def _ask(self) -> SyncAction:
        if self.snapshot_requested:
            return SyncAction.NONE
        self.snapshot_requested = True
        return SyncAction.FETCH_SNAPSHOT
