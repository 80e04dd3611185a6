from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import instrument
from indexmaker.model.book import OrderBook
from indexmaker.model.side import BookSide, Side

D = Decimal
SYM = instrument("BTCUSDC")
Levels = list[tuple[Decimal, Decimal]]


def lv(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(q)) for p, q in pairs]


@pytest.fixture
def book() -> OrderBook:
    b = OrderBook(SYM)
    b.apply_snapshot(
        bids=lv(("99.5", "2"), ("100", "1.5"), ("99", "3"), ("98", "0")),
        asks=lv(("101", "0.5"), ("100.5", "1"), ("102", "4")),
    )
    return b


def test_empty_book() -> None:
    b = OrderBook(SYM)
    assert b.is_empty
    assert b.best_bid() is None
    assert b.best_ask() is None
    assert not b.crossed()
    assert b.levels(BookSide.BIDS, 5) == []
    assert b.taker_liquidity(Side.BUY, D("1000"), 5) == D("0")


def test_snapshot_sorts_and_ignores_zero_levels(book: OrderBook) -> None:
    assert book.best_bid() == (D("100"), D("1.5"))
    assert book.best_ask() == (D("100.5"), D("1"))
    assert book.levels(BookSide.BIDS, 10) == lv(("100", "1.5"), ("99.5", "2"), ("99", "3"))
    assert book.levels(BookSide.ASKS, 2) == lv(("100.5", "1"), ("101", "0.5"))
    assert book.levels(BookSide.BIDS, 0) == []
    # Depth just beyond the side's size (a slice-index trap) returns the whole side.
    assert book.levels(BookSide.BIDS, 4) == lv(("100", "1.5"), ("99.5", "2"), ("99", "3"))
    assert book.levels(BookSide.BIDS, 1) == lv(("100", "1.5"))
    assert book.depth() == (3, 3)
    assert not book.is_empty
    assert not book.crossed()


def test_snapshot_replaces_everything(book: OrderBook) -> None:
    book.apply_snapshot(bids=lv(("50", "1")), asks=[])
    assert book.levels(BookSide.BIDS, 10) == lv(("50", "1"))
    assert book.best_ask() is None


def test_update_sets_and_removes_levels(book: OrderBook) -> None:
    book.apply_update(
        bids=lv(("100", "0"), ("99.5", "7"), ("99.75", "1")),
        asks=lv(("100.25", "2"), ("102", "0"), ("103", "0")),  # 103 absent: no-op
    )
    assert book.levels(BookSide.BIDS, 10) == lv(("99.75", "1"), ("99.5", "7"), ("99", "3"))
    assert book.levels(BookSide.ASKS, 10) == lv(("100.25", "2"), ("100.5", "1"), ("101", "0.5"))


def test_equal_prices_with_different_exponents_are_one_level() -> None:
    b = OrderBook(SYM)
    b.apply_snapshot(bids=lv(("100.10", "1")), asks=[])
    b.apply_update(bids=lv(("100.1", "2")), asks=[])
    assert b.depth() == (1, 0)
    b.apply_update(bids=lv(("100.100", "0")), asks=[])
    assert b.is_empty


def test_liquidity_buy_counts_asks_within_limit(book: OrderBook) -> None:
    assert book.taker_liquidity(Side.BUY, D("100.5"), 5) == D("1")
    assert book.taker_liquidity(Side.BUY, D("101"), 5) == D("1.5")
    assert book.taker_liquidity(Side.BUY, D("1000"), 5) == D("5.5")
    assert book.taker_liquidity(Side.BUY, D("1000"), 2) == D("1.5")
    assert book.taker_liquidity(Side.BUY, D("100.4"), 5) == D("0")
    assert book.taker_liquidity(Side.BUY, D("1000"), 0) == D("0")


def test_liquidity_sell_counts_bids_within_limit(book: OrderBook) -> None:
    assert book.taker_liquidity(Side.SELL, D("100"), 5) == D("1.5")
    assert book.taker_liquidity(Side.SELL, D("99.5"), 5) == D("3.5")
    assert book.taker_liquidity(Side.SELL, D("1"), 5) == D("6.5")
    assert book.taker_liquidity(Side.SELL, D("1"), 1) == D("1.5")
    assert book.taker_liquidity(Side.SELL, D("100.01"), 5) == D("0")


def test_crossed() -> None:
    b = OrderBook(SYM)
    b.apply_snapshot(bids=lv(("100", "1")), asks=lv(("100", "1")))
    assert b.crossed()
    b.apply_update(bids=[], asks=lv(("100", "0"), ("100.01", "1")))
    assert not b.crossed()


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        (lv(("0", "1")), []),
        (lv(("-1", "1")), []),
        ([], lv(("100", "-0.1"))),
        ([], [(D("NaN"), D("1"))]),
        ([], [(D("100"), D("Infinity"))]),
    ],
)
def test_invalid_update_leaves_book_unchanged(
    book: OrderBook, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]
) -> None:
    before = (book.levels(BookSide.BIDS, 100), book.levels(BookSide.ASKS, 100))
    # The valid first level must not be applied either.
    with pytest.raises(InvalidInputError):
        book.apply_update(bids=[(D("99.9"), D("1")), *bids], asks=asks)
    with pytest.raises(InvalidInputError):
        book.apply_snapshot(bids=[(D("99.9"), D("1")), *bids], asks=asks)
    assert (book.levels(BookSide.BIDS, 100), book.levels(BookSide.ASKS, 100)) == before


def test_negative_depth_or_levels_rejected(book: OrderBook) -> None:
    with pytest.raises(InvalidInputError):
        book.levels(BookSide.BIDS, -1)
    with pytest.raises(InvalidInputError):
        book.taker_liquidity(Side.BUY, D("100"), -1)


def test_update_accepts_generators(book: OrderBook) -> None:
    book.apply_update(bids=(x for x in lv(("100", "0"))), asks=iter(lv(("100.5", "9"))))
    assert book.best_bid() == (D("99.5"), D("2"))
    assert book.best_ask() == (D("100.5"), D("9"))


# ---------------------------------------------------------------- properties

prices = st.integers(min_value=1, max_value=400).map(lambda n: D(n).scaleb(-2))
quantities = st.integers(min_value=0, max_value=50).map(lambda n: D(n).scaleb(-1))
level_lists = st.lists(st.tuples(prices, quantities), max_size=12)


@given(st.lists(st.tuples(level_lists, level_lists), min_size=1, max_size=25))
def test_book_matches_a_plain_dict_model(updates: list[tuple[Levels, Levels]]) -> None:
    b = OrderBook(SYM)
    model: dict[BookSide, dict[Decimal, Decimal]] = {BookSide.BIDS: {}, BookSide.ASKS: {}}
    for bids, asks in updates:
        b.apply_update(bids, asks)
        for side, levels in ((BookSide.BIDS, bids), (BookSide.ASKS, asks)):
            for price, qty in levels:
                if qty:
                    model[side][price] = qty
                else:
                    model[side].pop(price, None)
    for side in (BookSide.BIDS, BookSide.ASKS):
        got = b.levels(side, 10_000)
        assert all(q > 0 and p > 0 for p, q in got)
        expected = sorted(model[side].items(), reverse=side is BookSide.BIDS)
        assert got == expected


@given(
    level_lists,
    level_lists,
    prices,
    prices,
    st.integers(min_value=0, max_value=15),
    st.integers(min_value=0, max_value=15),
)
def test_liquidity_is_monotone(
    bids: list[tuple[Decimal, Decimal]],
    asks: list[tuple[Decimal, Decimal]],
    p1: Decimal,
    p2: Decimal,
    n1: int,
    n2: int,
) -> None:
    b = OrderBook(SYM)
    b.apply_snapshot(bids, asks)
    lo, hi = min(p1, p2), max(p1, p2)
    few, many = min(n1, n2), max(n1, n2)
    # A buyer gets more with a higher limit; a seller with a lower one; both with more levels.
    assert b.taker_liquidity(Side.BUY, lo, many) <= b.taker_liquidity(Side.BUY, hi, many)
    assert b.taker_liquidity(Side.SELL, hi, many) <= b.taker_liquidity(Side.SELL, lo, many)
    for side, price in ((Side.BUY, hi), (Side.SELL, lo)):
        assert b.taker_liquidity(side, price, few) <= b.taker_liquidity(side, price, many)
    # And it equals the brute-force sum over the first levels.
    asks_top = b.levels(BookSide.ASKS, many)
    assert b.taker_liquidity(Side.BUY, hi, many) == sum(
        (q for p, q in asks_top if p <= hi), start=D(0)
    )
    bids_top = b.levels(BookSide.BIDS, many)
    assert b.taker_liquidity(Side.SELL, lo, many) == sum(
        (q for p, q in bids_top if p >= lo), start=D(0)
    )


def test_a_taker_takes_the_other_book_side_and_rests_on_its_own() -> None:
    assert (Side.BUY.taken_book, Side.BUY.resting_book) == (BookSide.ASKS, BookSide.BIDS)
    assert (Side.SELL.taken_book, Side.SELL.resting_book) == (BookSide.BIDS, BookSide.ASKS)
