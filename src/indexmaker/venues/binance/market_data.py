"""Binance market data: diff-depth and book-ticker streams kept in sync with REST snapshots.

Symbols are spread over combined-stream connections (`/stream`, at most
`streams_per_connection` <= 1024 streams each), subscribed by `subscriptions.py`. A dropped,
silent (`receive_timeout_s`) or shutting-down connection invalidates every book on it, then
reconnects with exponential back-off and resubscribes. Snapshots are fetched by a few workers
through the shared REST limiter, so a mass re-snapshot waits for weight instead of earning a
429 (the reference's §8 budget: 81 symbols at limit 5000 would cost 20 250 weight).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import aiohttp
import msgspec

from indexmaker.core.errors import IndexMakerError, RateLimitedError
from indexmaker.core.ids import Pair
from indexmaker.venues.binance.book_sync import BookSync, SyncAction
from indexmaker.venues.binance.limits import depth_weight, local_ms
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.subscriptions import MarketDataConfig, Subscriptions
from indexmaker.venues.binance.wire import (
    BOOK_TICKER,
    DEPTH_DIFF,
    DEPTH_FRAME,
    DEPTH_SNAPSHOT,
    ENVELOPE,
    DepthDiff,
)

# MarketDataConfig is defined in subscriptions.py and used with this class
__all__ = ["BinanceMarketData", "BookChanges", "BookListener", "MarketDataConfig"]

log = logging.getLogger(__name__)

_STREAM = '{"stream":"'
_DEPTH = "@depth"
_CLOSING = (
    aiohttp.WSMsgType.CLOSE,
    aiohttp.WSMsgType.CLOSED,
    aiohttp.WSMsgType.CLOSING,
    aiohttp.WSMsgType.ERROR,
)


class _ServerShutdown(Exception):
    """The venue announced `serverShutdown` on this connection."""


@dataclass(frozen=True, slots=True)
class BookChanges:
    """One diff's level changes, in the venue's order (quantity 0 removes the level), as
    exact Decimals: built here, at the boundary to the core, never on the diff path."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


# Called with the book and a diff's changes just applied (None: a snapshot or a validity change).
BookListener = Callable[[BookSync, BookChanges | None], Awaitable[None]]


class BinanceMarketData:
    """Keeps one `BookSync` per symbol. `await listener(sync, None)` runs when a book's
    validity may have changed, at once; `await listener(sync, changes)` after each diff
    applied, in stream order (awaiting it is the back-pressure; a late or repeated diff,
    `u` <= the book's id, is dropped before: neither the book nor the listener sees it).
    Per diff, not batched per 100 ms: at Binance's pace there is one diff per book per
    100 ms, nothing to batch, and a batched hand-off measured ~2.5 % of a core dearer for
    200 symbols (docs/benchmarks.md)."""

    def __init__(
        self,
        rest: BinanceRest,
        endpoints: BinanceEndpoints,
        symbols: Iterable[str],
        config: MarketDataConfig | None = None,
        listener: BookListener | None = None,
    ) -> None:
        self.rest = rest
        self.endpoints = endpoints
        self.config = config or MarketDataConfig()
        self.listener = listener
        self.books: dict[Pair, BookSync] = {}
        self._groups: list[list[Pair]] = []
        self._snapshots: asyncio.Queue[Pair] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
        self._last_frame_ms: dict[int, int] = {}  # per connection: when a frame last arrived
        self.control = Subscriptions(self.config)
        self._group_of: dict[Pair, int] = {}
        self.removed: set[Pair] = set()  # not trading at the venue: unsubscribed, never valid
        self.connects = 0
        self.snapshot_fetches = 0
        self.messages = 0
        for symbol in symbols:
            self._add(Pair(symbol.upper()))

    def _add(self, symbol: Pair) -> None:
        if symbol in self.books:
            return
        self.books[symbol] = BookSync(
            symbol,
            stale_after_ms=self.config.stale_after_ms,
            silent_after_ms=self.config.silent_after_ms,
            settle_every=self.config.settle_every,
        )
        per_symbol = 2 if self.config.book_ticker else 1
        capacity = max(1, self.config.streams_per_connection // per_symbol)
        if not self._groups or len(self._groups[-1]) >= capacity:
            self._groups.append([])
        self._groups[-1].append(symbol)
        self._group_of[symbol] = len(self._groups) - 1

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        for index in range(len(self._groups)):
            self._tasks.append(asyncio.create_task(self._connection(index)))
        for _ in range(self.config.snapshot_workers):
            self._tasks.append(asyncio.create_task(self._snapshot_worker()))
        self._tasks.append(asyncio.create_task(self._watchdog()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def wait_synced(self, timeout_s: float) -> bool:
        """Wait (bounded) until every book is valid; True if they all are."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            now = local_ms()
            if all(sync.is_valid(now) for sync in self.books.values()):
                return True
            await asyncio.sleep(0.02)
        return False

    async def remove(self, symbol: str) -> None:
        """The venue stopped trading `symbol` (halted, delisted): its book is invalid from now
        on and its streams are unsubscribed (also after a reconnect) until `restore`."""
        pair = Pair(symbol)
        sync = self.books.get(pair)
        if sync is None or pair in self.removed:
            return
        self.removed.add(pair)
        sync.on_disconnect("symbol removed")
        sync.stale_after_ms = -1  # never valid, whatever arrives, until restored
        await self._notify(sync)  # invalid now, not at the watchdog's next round
        await self._control_live(pair, "UNSUBSCRIBE")

    async def restore(self, symbol: str) -> bool:
        """The venue trades `symbol` again (relisted): resubscribe its streams; the book comes
        back through the usual snapshot + diff sync. False if it was not removed."""
        pair = Pair(symbol)
        sync = self.books.get(pair)
        if sync is None or pair not in self.removed:
            return False
        self.removed.discard(pair)
        sync.on_disconnect("resubscribing")  # nothing from before the halt is kept
        sync.stale_after_ms = self.config.stale_after_ms
        await self._control_live(pair, "SUBSCRIBE")
        return True

    async def _control_live(self, pair: Pair, method: str) -> None:
        """(UN)SUBSCRIBE one symbol's streams on its live connection (a connection that is
        down subscribes what is not removed when it comes back)."""
        index = self._group_of[pair]
        ws = self._sockets.get(index)
        if ws is None or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):  # closing: the reconnect does it
            await self.control.send(index, ws, method, [pair])

    # ------------------------------------------------------------------ streams

    async def _connection(self, index: int) -> None:
        delay = self.config.reconnect_min_s
        while True:
            symbols = self._groups[index]
            try:
                await self._run_connection(index, symbols)
                delay = self.config.reconnect_min_s  # a clean session resets the back-off
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any socket failure: invalidate, back off, reconnect
                log.warning("binance.stream.failed", extra={"error": repr(exc)})
            self._sockets.pop(index, None)
            for symbol in symbols:
                sync = self.books[symbol]
                sync.on_disconnect("stream disconnected")
                await self._notify(sync)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max_s)

    async def _run_connection(self, index: int, symbols: list[Pair]) -> None:
        session = self.rest.session()
        url = f"{self.endpoints.stream_url}/stream"
        async with session.ws_connect(url, autoping=True, max_msg_size=0) as ws:
            self._sockets[index] = ws
            self.connects += 1
            wanted = [symbol for symbol in symbols if symbol not in self.removed]
            subscriber = asyncio.create_task(self.control.subscribe(index, ws, wanted))
            try:
                await self._read(index, ws)
            except _ServerShutdown:
                pass  # reconnect now rather than be cut off
            finally:
                subscriber.cancel()

    async def _read(self, index: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        # The hot path: one frame per depth event. No per-message timeout (an asyncio timer
        # per frame cost ~10% of the path; the watchdog closes a connection silent for
        # `receive_timeout_s`), no logging, no Pair() call; text frames go to msgspec as str.
        books = cast(dict[str, BookSync], self.books)
        removed = self.removed
        frames = self._last_frame_ms
        frames[index] = local_ms()
        receive = ws.receive
        text = aiohttp.WSMsgType.TEXT
        fetch = SyncAction.FETCH_SNAPSHOT
        ignored = SyncAction.IGNORED
        snapshots = self._snapshots
        while True:
            message = await receive()
            data = message.data
            kind = message.type
            if kind is not text and kind is not aiohttp.WSMsgType.BINARY:
                if kind in _CLOSING:
                    return
                continue
            self.messages += 1
            now = local_ms()
            frames[index] = now
            event: DepthDiff | None = None
            # Binance writes the stream name first: a depth frame decodes in one pass
            if isinstance(data, str) and data.startswith(_STREAM) and data.find(_DEPTH, 11, 80) > 0:
                try:
                    event = DEPTH_FRAME.decode(data).data
                except msgspec.ValidationError:  # not that shape after all: the slow path
                    event = None
            if event is None:
                event = self._other_frame(index, data, now)
                if event is None:
                    continue
            sync = books.get(event.s)
            if sync is None or sync.symbol in removed:  # in flight before the UNSUBSCRIBE
                continue
            listener = self.listener
            action = sync.on_diff(event, now)
            if action is ignored:  # late or repeated: the core must not see it either
                continue
            changes = None
            if listener is not None and action is not fetch:
                try:
                    changes = _changes(event)
                except (ArithmeticError, ValueError):  # unreadable: the book finds out now
                    action = sync.settle()
            if action is fetch:
                snapshots.put_nowait(sync.symbol)
                if listener is not None:
                    await listener(sync, None)  # a gap or a broken book: invalid at once
            elif listener is not None:
                await listener(sync, changes)

    def _other_frame(self, index: int, data: str | bytes, now: int) -> DepthDiff | None:
        """A frame off the fast path: a depth event in another layout (returned), a
        book-ticker or a control answer (None); `serverShutdown` raises `_ServerShutdown`."""
        raw = data.encode() if isinstance(data, str) else data
        envelope = ENVELOPE.decode(raw)
        stream = envelope.stream
        if not stream:
            if b"serverShutdown" in raw:
                raise _ServerShutdown
            if envelope.error:
                log.error("binance.stream.control_error", extra={"answer": raw[:200]})
            elif envelope.id is not None:  # SUBSCRIBE acknowledged: snapshots can be taken
                for symbol in self.control.acknowledged(index, envelope.id):
                    if self.books[symbol].request_snapshot() is SyncAction.FETCH_SNAPSHOT:
                        self._snapshots.put_nowait(symbol)
            return None
        symbol_lower, _, kind = stream.partition("@")
        if kind.startswith("depth"):
            return DEPTH_DIFF.decode(envelope.data)
        if kind == "bookTicker":
            ticker = BOOK_TICKER.decode(envelope.data)
            sync = self.books.get(Pair(ticker.s))
            if sync is not None:
                sync.on_book_ticker(ticker, now)
        else:
            log.debug("binance.stream.unknown", extra={"stream": stream, "s": symbol_lower})
        return None

    # ------------------------------------------------------------------ snapshots

    async def _snapshot_worker(self) -> None:
        limit = self.config.snapshot_limit
        weight = depth_weight(limit)
        while True:
            symbol = await self._snapshots.get()
            sync = self.books[symbol]
            if not sync.snapshot_requested or symbol in self.removed:
                continue  # satisfied or withdrawn meanwhile (a disconnect re-asks later)
            try:
                raw = await self.rest.public_bytes(
                    "/api/v3/depth", {"symbol": symbol, "limit": limit}, weight=weight
                )
            except RateLimitedError as exc:
                await asyncio.sleep(max(exc.retry_after_ms, 100) / 1000)
                self._snapshots.put_nowait(symbol)
                continue
            except (IndexMakerError, aiohttp.ClientError, ValueError) as exc:
                log.warning("binance.snapshot.failed", extra={"symbol": symbol, "error": repr(exc)})
                await asyncio.sleep(0.5)
                self._snapshots.put_nowait(symbol)
                continue
            self.snapshot_fetches += 1
            if not sync.snapshot_requested:
                continue  # the stream dropped while we fetched: wait for its events again
            if (
                sync.on_snapshot(DEPTH_SNAPSHOT.decode(raw), local_ms())
                is SyncAction.FETCH_SNAPSHOT
            ):
                self._snapshots.put_nowait(symbol)
            await self._notify(sync)

    # ------------------------------------------------------------------ validity

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self.config.watchdog_interval_s)
            now = local_ms()
            silent_ms = self.config.receive_timeout_s * 1000
            for index, symbols in enumerate(self._groups):
                alive = self._last_frame_ms.get(index) if index in self._sockets else None
                if alive is not None and now - alive > silent_ms:
                    await self._sockets[index].close()  # dead peer: reconnect
                    alive = None
                for symbol in symbols:
                    sync = self.books[symbol]
                    if alive is not None:
                        sync.touch(alive)
                    await self._notify(sync)

    async def _notify(self, sync: BookSync) -> None:
        if self.listener is not None:
            await self.listener(sync, None)


def _changes(event: DepthDiff) -> BookChanges:
    """A diff's levels as exact Decimals, in the venue's order (the core's boundary: the
    only place Decimals are built for a diff)."""
    return BookChanges(
        tuple([(Decimal(p), Decimal(q)) for p, q in event.b]),
        tuple([(Decimal(p), Decimal(q)) for p, q in event.a]),
    )
