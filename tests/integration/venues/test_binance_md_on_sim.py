"""The market-data connector against the exchange simulator process (`indexmaker exchange-sim`),
over real loopback sockets: sync, injected gaps, lagging snapshots, dropped streams, a delisting.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from indexmaker.core.ids import Pair
from indexmaker.model.side import BookSide
from indexmaker.venues.binance.book_sync import BookSync
from indexmaker.venues.binance.instruments import Instruments
from indexmaker.venues.binance.limits import local_ms
from indexmaker.venues.binance.market_data import BinanceMarketData, BookChanges, MarketDataConfig
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.wire import EXCHANGE_INFO

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually

SYMBOLS = ["BTCUSDC", "ETHUSDC", "SOLUSDC"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = SimProcess("--symbols", ",".join(SYMBOLS), "--seed", "5")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def market(sim: SimProcess) -> AsyncIterator[BinanceMarketData]:
    sim.admin("DELETE")
    endpoints = BinanceEndpoints(rest_url=sim.url, ws_api_url="", stream_url=sim.ws)
    rest = BinanceRest(endpoints)
    connector = BinanceMarketData(
        rest, endpoints, SYMBOLS, MarketDataConfig(reconnect_min_s=0.05, snapshot_limit=100)
    )
    await connector.start()
    try:
        assert await connector.wait_synced(10)
        yield connector
    finally:
        await connector.stop()
        await rest.close()
        sim.admin("DELETE")


def valid(market: BinanceMarketData, symbol: str) -> bool:
    return market.books[Pair(symbol)].is_valid(local_ms())


async def test_books_sync_and_follow_the_simulator(market: BinanceMarketData) -> None:
    sync = market.books[Pair("BTCUSDC")]
    start_id = sync.last_update_id
    await eventually(lambda: sync.last_update_id > start_id + 5)
    assert sync.stats.gaps == 0
    bid, ask = sync.book.best_prices()
    assert bid is not None and ask is not None and bid < ask
    # the connector's top of book agrees with the venue's book-ticker stream
    assert sync.top is not None
    assert len(sync.book.levels(BookSide.BIDS, 100)) > 5


async def test_injected_gap_forces_resnapshot(sim: SimProcess, market: BinanceMarketData) -> None:
    sync = market.books[Pair("ETHUSDC")]
    fetched = market.snapshot_fetches
    sim.admin("POST", {"skip_updates": {"ETHUSDC": 1}})
    await eventually(lambda: sync.stats.gaps >= 1, 10)
    await eventually(lambda: market.snapshot_fetches > fetched and valid(market, "ETHUSDC"), 10)


async def test_late_repeated_diffs_reach_neither_the_book_nor_the_core(
    sim: SimProcess, market: BinanceMarketData
) -> None:
    """The simulator sends diffs again after newer ones (`repeat_updates`): each is dropped
    (u <= the book's id), the book stays in sync without a re-snapshot, and every diff handed
    to the listener moved the book's id forward."""
    sync = market.books[Pair("BTCUSDC")]
    forwarded: list[int] = []

    async def listener(book: BookSync, changes: BookChanges | None) -> None:
        if changes is not None and book is sync:
            forwarded.append(book.last_update_id)

    market.listener = listener
    ignored, resyncs = sync.stats.ignored, sync.stats.resyncs
    sim.admin("POST", {"repeat_updates": {"BTCUSDC": 5}})
    await eventually(lambda: sync.stats.ignored >= ignored + 5, 10)
    await eventually(lambda: len(forwarded) >= 8, 10)
    assert sim.admin("GET")["repeat_updates"] == {}  # all five sent
    assert all(a < b for a, b in itertools.pairwise(forwarded)), forwarded
    assert sync.stats.resyncs == resyncs and sync.stats.gaps == 0 and valid(market, "BTCUSDC")


async def test_lagging_snapshot_is_refetched(sim: SimProcess, market: BinanceMarketData) -> None:
    sync = market.books[Pair("SOLUSDC")]
    sim.admin("POST", {"snapshot_lag": {"SOLUSDC": 50}, "skip_updates": {"SOLUSDC": 1}})
    await eventually(lambda: sync.stats.lagging_snapshots >= 1, 10)
    sim.admin("DELETE")
    await eventually(lambda: valid(market, "SOLUSDC"), 10)


async def test_dropped_streams_reconnect_and_resync(
    sim: SimProcess, market: BinanceMarketData
) -> None:
    sim.admin("POST", {"drop_streams": "*"})
    await eventually(lambda: market.connects >= 2, 10)
    assert await market.wait_synced(10)


async def test_delisted_symbol_leaves_the_instruments(
    sim: SimProcess, market: BinanceMarketData
) -> None:
    instruments = Instruments(wanted=frozenset(Pair(s) for s in SYMBOLS))
    instruments.apply(
        EXCHANGE_INFO.decode(await market.rest.public_bytes("/api/v3/exchangeInfo", weight=20))
    )
    assert len(list(instruments.tradable())) == 3
    sim.admin("POST", {"delist": ["SOLUSDC"]})
    changes = instruments.apply(
        EXCHANGE_INFO.decode(await market.rest.public_bytes("/api/v3/exchangeInfo", weight=20))
    )
    assert [(i.pair, why) for i, why in changes.removed] == [("SOLUSDC", "BREAK")]
