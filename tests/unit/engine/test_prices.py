from __future__ import annotations

from decimal import Decimal

import pytest

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import BookSnapshot, BookUpdate, TradePrint
from indexmaker.core.ids import instrument
from indexmaker.engine.prices import MarketData, Prices, PriceTracker
from indexmaker.model.side import Side

D = Decimal
BTC = instrument("BTCUSDC")
ETH = instrument("ETHUSDC")


def test_unknown_symbol_has_no_prices() -> None:
    assert PriceTracker().get(BTC) is None


def test_top_of_book_and_mid() -> None:
    t = PriceTracker()
    t.update_top(BTC, D("100"), D("100.5"))
    assert t.get(BTC) == Prices(bid=D("100"), ask=D("100.5"), mid=D("100.25"), last=None, vwap=None)
    t.update_top(BTC, None, D("101"))
    assert t.get(BTC) == Prices(bid=None, ask=D("101"), mid=None, last=None, vwap=None)


def test_last_and_vwap() -> None:
    t = PriceTracker()
    t.record_trade(BTC, D("100"), D("1"))
    t.record_trade(BTC, D("103"), D("2"))
    prices = t.get(BTC)
    assert prices is not None
    assert prices.last == D("103")
    assert prices.vwap == D("102")  # (100 + 206) / 3
    t.record_trade(BTC, D("1"), D("0.5"))
    prices = t.get(BTC)
    assert prices is not None
    # (306 + 0.5) / 3.5 = 87.571428... at 34 significant digits, half-even
    assert prices.vwap == D("87.57142857142857142857142857142857")
    t.reset_vwap(BTC)
    prices = t.get(BTC)
    assert prices is not None
    assert prices.vwap is None
    assert prices.last == D("1")


def test_tracker_rejects_bad_values() -> None:
    t = PriceTracker()
    with pytest.raises(InvalidInputError):
        t.update_top(BTC, D("0"), D("1"))
    with pytest.raises(InvalidInputError):
        t.record_trade(BTC, D("-1"), D("1"))
    with pytest.raises(InvalidInputError):
        t.record_trade(BTC, D("1"), D("0"))
    assert t.get(BTC) is None


def test_market_data_keeps_tracker_in_sync() -> None:
    md = MarketData()
    assert md.apply(BookSnapshot(BTC, bids=((D("100"), D("1")),), asks=((D("102"), D("2")),)))
    assert md.prices(BTC) == Prices(D("100"), D("102"), D("101"), None, None)
    assert md.apply(BookUpdate(BTC, bids=((D("100"), D("0")), (D("99"), D("5")))))
    assert md.prices(BTC) == Prices(D("99"), D("102"), D("100.5"), None, None)
    assert md.apply(BookUpdate(BTC, asks=((D("102"), D("0")),)))
    assert md.prices(BTC) == Prices(D("99"), None, None, None, None)
    assert md.apply(TradePrint(BTC, D("100"), D("3")))
    prices = md.prices(BTC)
    assert prices is not None
    assert (prices.last, prices.vwap) == (D("100"), D("100"))
    book = md.book(BTC)
    assert book is not None
    assert book.best_bid() == (D("99"), D("5"))


def test_update_without_snapshot_is_dropped() -> None:
    md = MarketData()
    assert not md.apply(BookUpdate(ETH, bids=((D("1"), D("1")),)))
    assert md.book(ETH) is None
    assert md.prices(ETH) is None


def test_bad_snapshot_keeps_previous_book() -> None:
    md = MarketData()
    md.apply(BookSnapshot(BTC, bids=((D("100"), D("1")),), asks=((D("101"), D("1")),)))
    with pytest.raises(InvalidInputError):
        md.apply(BookSnapshot(BTC, bids=((D("100"), D("-1")),), asks=()))
    assert md.prices(BTC) == Prices(D("100"), D("101"), D("100.5"), None, None)


def test_limit_price() -> None:
    md = MarketData()
    assert md.limit_price(BTC, Side.BUY, D("0.01")) is None
    md.apply(BookSnapshot(BTC, bids=((D("100"), D("1")),), asks=((D("102"), D("2")),)))
    assert md.limit_price(BTC, Side.BUY, D("0.01")) == D("103.02")
    assert md.limit_price(BTC, Side.SELL, D("0.01")) == D("99")
    assert md.limit_price(BTC, Side.BUY, D("0")) == D("102")
    md.apply(BookUpdate(BTC, asks=((D("102"), D("0")),)))
    assert md.limit_price(BTC, Side.BUY, D("0.01")) is None  # never guess
    assert md.limit_price(BTC, Side.SELL, D("0.01")) == D("99")
    md.drop(BTC)
    assert md.limit_price(BTC, Side.SELL, D("0.01")) is None
    assert md.prices(BTC) == Prices(None, None, None, None, None)


@pytest.mark.parametrize("threshold", ["-0.01", "1", "NaN"])
def test_limit_price_rejects_bad_threshold(threshold: str) -> None:
    with pytest.raises(InvalidInputError):
        MarketData().limit_price(BTC, Side.BUY, D(threshold))
