"""The market-data connector against a Binance-wire peer over real loopback sockets."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from indexmaker.core.ids import Symbol, instrument
from indexmaker.model.book import OrderBook
from indexmaker.model.side import BookSide
from indexmaker.venues.binance.book_sync import BookSync
from indexmaker.venues.binance.limits import local_ms
from indexmaker.venues.binance.market_data import BinanceMarketData, BookChanges, MarketDataConfig
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest

from .binance_peer import BinancePeer, eventually

D = Decimal
SYMBOLS = ["BTCUSDC", "ETHUSDC", "SOLUSDC"]


@pytest.fixture
async def peer() -> AsyncIterator[BinancePeer]:
    server = BinancePeer(SYMBOLS)
    await server.start()
    yield server
    await server.stop()


async def connector(peer: BinancePeer, **config: object) -> BinanceMarketData:
    endpoints = BinanceEndpoints(
        rest_url=peer.url, ws_api_url="", stream_url=peer.url.replace("http", "ws")
    )
    rest = BinanceRest(endpoints)
    settings = MarketDataConfig(
        reconnect_min_s=0.05,
        book_ticker=False,
        **config,  # type: ignore[arg-type]
    )
    market = BinanceMarketData(rest, endpoints, SYMBOLS, settings)
    await market.start()
    return market


async def close(market: BinanceMarketData) -> None:
    await market.stop()
    await market.rest.close()


async def sync_all(peer: BinancePeer, market: BinanceMarketData) -> None:
    """Books sync once the stream has sent something: push one change per symbol."""
    await eventually(lambda: all(peer.subscribed(f"{s.lower()}@depth@100ms") for s in SYMBOLS))
    for symbol in SYMBOLS:
        await peer.push(symbol, bids={"1.0": "1"})
    await eventually(lambda: all(s.is_valid(local_ms()) for s in market.books.values()))


def same_book(peer: BinancePeer, market: BinanceMarketData, symbol: str) -> bool:
    ours = market.books[Symbol(symbol)].book
    venue = peer.books[symbol]
    bids = dict(ours.levels(BookSide.BIDS, 10_000))
    asks = dict(ours.levels(BookSide.ASKS, 10_000))
    return bids == venue.bids and asks == venue.asks


async def test_syncs_many_symbols_on_one_connection_with_one_subscribe(peer: BinancePeer) -> None:
    market = await connector(peer)
    try:
        await sync_all(peer, market)
        await peer.push("ETHUSDC", bids={"100.95": "4"}, asks={"101.10": "0"})
        await eventually(lambda: same_book(peer, market, "ETHUSDC"))
        assert market.connects == 1
        assert len(peer.control_times) == 1  # all streams in one SUBSCRIBE
        assert market.snapshot_fetches == len(SYMBOLS)  # one each, taken at the subscribe ack
        assert all(same_book(peer, market, s) for s in SYMBOLS)
    finally:
        await close(market)


async def test_frames_in_other_json_layouts_apply_like_the_venues_own(peer: BinancePeer) -> None:
    """The fast path keys on Binance's compact `{"stream":"..@depth..","data":..}`; any other
    valid layout goes the generic way to the same book, in the same order."""
    market = await connector(peer)
    try:
        await sync_all(peer, market)
        sync = market.books[Symbol("BTCUSDC")]
        await peer.push("BTCUSDC", bids={"2.5": "3"}, layout="spaced")
        await peer.push("BTCUSDC", bids={"2.5": "0", "2.25": "7"}, layout="data_first")
        await peer.push("BTCUSDC", asks={"300.00000000": "1.00000000"})  # compact: fast path
        await eventually(lambda: same_book(peer, market, "BTCUSDC"))
        assert sync.last_update_id == peer.books["BTCUSDC"].last_id
        assert sync.stats.gaps == sync.stats.resyncs == 0
        bids = dict(sync.book.levels(BookSide.BIDS, 10_000))
        assert bids[D("2.25")] == D("7") and D("2.5") not in bids
        assert dict(sync.book.levels(BookSide.ASKS, 10_000))[D("300")] == D("1")
    finally:
        await close(market)


class CoreSide:
    """What the core keeps from the hand-off: a snapshot once valid, then the net changes."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}
        self.updates = 0
        self.invalidated = 0

    async def __call__(self, sync: BookSync, changes: BookChanges | None) -> None:
        name = str(sync.symbol)
        if not sync.is_valid(local_ms()):
            if self.books.pop(name, None) is not None:
                self.invalidated += 1
        elif name not in self.books:
            book = self.books[name] = OrderBook(instrument(name))
            book.apply_snapshot(
                sync.book.levels(BookSide.BIDS, 10_000), sync.book.levels(BookSide.ASKS, 10_000)
            )
        elif changes is not None:
            self.updates += 1
            self.books[name].apply_update(changes.bids, changes.asks)

    def same_as(self, peer: BinancePeer, symbol: str) -> bool:
        book = self.books.get(symbol)
        if book is None:
            return False
        venue = peer.books[symbol]
        return (
            dict(book.levels(BookSide.BIDS, 10_000)) == venue.bids
            and dict(book.levels(BookSide.ASKS, 10_000)) == venue.asks
        )


async def test_the_core_keeps_the_same_book_from_the_hand_off_and_a_gap_invalidates_it(
    peer: BinancePeer,
) -> None:
    core = CoreSide()
    endpoints = BinanceEndpoints(
        rest_url=peer.url, ws_api_url="", stream_url=peer.url.replace("http", "ws")
    )
    market = BinanceMarketData(
        BinanceRest(endpoints),
        endpoints,
        SYMBOLS,
        MarketDataConfig(reconnect_min_s=0.05, book_ticker=False),
        listener=core,
    )
    await market.start()
    try:
        await sync_all(peer, market)
        await eventually(lambda: all(core.same_as(peer, s) for s in SYMBOLS))
        before = core.updates
        for step in range(20):  # 20 diffs in a burst, some touching the same prices again
            price = f"{90 + step % 7}.5"
            await peer.push("ETHUSDC", bids={price: str(step % 3)}, asks={f"{200 + step}": "1"})
        await eventually(lambda: core.same_as(peer, "ETHUSDC"))
        eth = market.books[Symbol("ETHUSDC")]
        assert eth.last_update_id == peer.books["ETHUSDC"].last_id and eth.stats.resyncs == 0
        assert core.updates - before == 20  # one hand-off per diff, none lost
        fetched = peer.depth_requests
        await peer.push("SOLUSDC", bids={"99.85": "2"}, skip=3)  # a gap
        await eventually(lambda: core.invalidated == 1)
        await eventually(lambda: peer.depth_requests > fetched)
        await eventually(lambda: core.same_as(peer, "SOLUSDC"))  # a fresh snapshot
    finally:
        await close(market)


async def test_gap_forces_a_new_snapshot_and_the_book_recovers(peer: BinancePeer) -> None:
    market = await connector(peer)
    try:
        await sync_all(peer, market)
        fetched = peer.depth_requests
        await peer.push("BTCUSDC", bids={"99.85": "2"}, skip=3)  # ids lost on the way
        await eventually(lambda: peer.depth_requests > fetched)
        await eventually(lambda: market.books[Symbol("BTCUSDC")].is_valid(local_ms()))
        assert market.books[Symbol("BTCUSDC")].stats.gaps == 1
        assert same_book(peer, market, "BTCUSDC")
    finally:
        await close(market)


async def test_lagging_snapshot_is_fetched_again(peer: BinancePeer) -> None:
    peer.lag_snapshots = 2  # the first two snapshots predate the stream's first event
    for symbol in SYMBOLS:
        await peer.push(symbol, asks={"150": "1"}, updates=5)  # before the connector starts
    market = await connector(peer)
    try:
        await sync_all(peer, market)
        # each lagging snapshot is caught (against the buffer, or by the first event's gap
        # when it was taken before any event arrived) and fetched again
        await eventually(lambda: market.snapshot_fetches == len(SYMBOLS) + 2)
        await eventually(lambda: all(s.is_valid(local_ms()) for s in market.books.values()))
        caught = sum(s.stats.lagging_snapshots + s.stats.gaps for s in market.books.values())
        assert caught == 2
        assert all(same_book(peer, market, s) for s in SYMBOLS)
    finally:
        await close(market)


async def test_dropped_stream_invalidates_then_reconnects_and_resyncs(peer: BinancePeer) -> None:
    market = await connector(peer)
    try:
        await sync_all(peer, market)
        await peer.drop_all()
        await eventually(lambda: not market.books[Symbol("SOLUSDC")].is_valid(local_ms()))
        await eventually(lambda: market.connects == 2)
        await sync_all(peer, market)
        assert all(same_book(peer, market, s) for s in SYMBOLS)
    finally:
        await close(market)


async def test_silent_stream_marks_books_stale(peer: BinancePeer) -> None:
    market = await connector(peer, stale_after_ms=150)
    try:
        await sync_all(peer, market)
        await eventually(lambda: not market.books[Symbol("BTCUSDC")].is_valid(local_ms()))
        assert market.books[Symbol("BTCUSDC")].invalid_reason(local_ms()).startswith("stale")
        await peer.push("BTCUSDC", bids={"99.5": "3"})
        await eventually(lambda: market.books[Symbol("BTCUSDC")].is_valid(local_ms()))
    finally:
        await close(market)


async def test_subscriptions_are_split_and_paced_under_five_per_second(peer: BinancePeer) -> None:
    market = await connector(peer, streams_per_subscribe=1, control_interval_s=0.25)
    try:
        await eventually(lambda: len(peer.control_times) == len(SYMBOLS))
        times = peer.control_times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.2
    finally:
        await close(market)


async def test_a_silent_connection_is_closed_and_reopened(peer: BinancePeer) -> None:
    market = await connector(peer, receive_timeout_s=0.3, watchdog_interval_s=0.05)
    try:
        await sync_all(peer, market)
        await eventually(lambda: market.connects >= 2)  # nothing sent for 0.3 s: reconnect
    finally:
        await close(market)
