"""The connector's integer-keyed book: exact prices in, exact Decimals out."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import instrument
from indexmaker.model.book import OrderBook
from indexmaker.model.side import BookSide
from indexmaker.venues.binance.tick_book import TickBook, price_units

D = Decimal


def test_price_units_are_exact_and_refuse_what_is_not() -> None:
    assert price_units("65012.34000000") == 6_501_234_000_000
    assert price_units("0.00000001") == 1
    assert price_units("12") == 1_200_000_000
    assert price_units("1.1000000000") == 110_000_000  # extra zeros are still exact
    for bad in ("1.000000001", "abc", "0", "-1.5", "0.00000000"):
        with pytest.raises(InvalidInputError):
            price_units(bad)


def test_updates_insert_replace_remove_and_read_back_as_decimals() -> None:
    book = TickBook("BTCUSDC")
    book.apply_snapshot([("100.00000000", "1.0"), ("99.50000000", "2")], [("100.5", "1.5")])
    book.apply_update([("100.00000000", "0.00000000"), ("99.9", "3")], [("100.25000000", "4")])
    assert book.levels(BookSide.BIDS, 5) == [(D("99.9"), D("3")), (D("99.5"), D("2"))]
    assert book.best_ask() == (D("100.25"), D("4"))
    assert book.best_prices() == (D("99.9"), D("100.25"))
    assert not book.crossed()
    book.apply_update([("100.3", "1")], [])
    assert book.crossed()
    book.apply_update([], [("1", "-2")])  # queued: found out when applied
    assert book.flush() == "quantity: must be >= 0, got -2"
    assert book.is_empty and book.broken  # never half-applied levels to a reader
    book.apply_snapshot([("1.00000000", "1")], [])
    assert book.broken is None and book.best_bid() == (D("1"), D("1"))


def test_queued_diffs_merge_to_the_state_applying_them_in_order_gives() -> None:
    book = TickBook("X")
    book.apply_snapshot([("100.00000000", "1.00000000")], [("101.00000000", "1.00000000")])
    book.apply_update([("99.00000000", "2.00000000")], [("101.00000000", "0.00000000")])
    book.apply_update([("99.00000000", "0.00000000")], [("101.00000000", "3.00000000")])
    book.apply_update([("98.00000000", "4.00000000")], [])
    assert book.pending == 3
    assert book.levels(BookSide.BIDS, 5) == [(D("100"), D("1")), (D("98"), D("4"))]
    assert book.levels(BookSide.ASKS, 5) == [(D("101"), D("3"))]
    assert book.pending == 0
    # another spelling of a price is read exactly...
    book.apply_update([("97.5", "1")], [])
    assert book.levels(BookSide.BIDS, 5)[-1] == (D("97.5"), D("1"))
    # ...but one price spelled two ways in a queue: which change came last is not known
    book.apply_update([("97.5", "2")], [])
    book.apply_update([("97.50000000", "0.00000000")], [])
    assert book.flush() == "price: 97.50000000 spelled two ways in a queue"
    assert book.is_empty


levels = st.lists(
    st.tuples(
        # mostly a few dozen prices, so levels are often replaced and removed again
        st.tuples(st.one_of(st.integers(1, 40), st.integers(1, 10**6)), st.booleans()).map(
            # the venue's 8-decimal spelling, or the same price written shorter
            lambda u: (
                f"{Decimal(u[0]).scaleb(-8):f}"
                if u[1]
                else f"{Decimal(u[0]).scaleb(-8).normalize():f}"
            )
        ),
        st.sampled_from(["0", "0.00000000", "1.5", "0.00100000", "42"]),
    ),
    max_size=30,
)


canonical_levels = st.lists(
    st.tuples(
        st.one_of(st.integers(1, 40), st.integers(1, 10**6)).map(
            lambda u: f"{Decimal(u).scaleb(-8):f}"
        ),
        st.sampled_from(["0.00000000", "1.50000000", "0.00100000", "42.00000000"]),
    ),
    max_size=30,
)


@given(
    st.lists(st.tuples(canonical_levels, canonical_levels), max_size=20)
    | st.lists(st.tuples(levels, levels), max_size=20),
    st.integers(1, 25),
)
def test_same_levels_as_the_decimal_book(
    updates: list[tuple[list[tuple[str, str]], ...]], read_every: int
) -> None:
    """Reads after every `read_every` diffs: the queued diffs, merged, end where the Decimal
    book does; a queue with one price spelled two ways leaves the book broken instead."""
    ours = TickBook("X")
    reference = OrderBook(instrument("X"))
    spellings: dict[tuple[str, Decimal], set[str]] = {}  # per side and price, this queue's
    for number, (bids, asks) in enumerate(updates, 1):
        ours.apply_update(bids, asks)
        reference.apply_update([(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks])
        for side, levels_of_side in (("b", bids), ("a", asks)):
            for price, _ in levels_of_side:
                spellings.setdefault((side, D(price)), set()).add(price)
        if number % read_every:
            continue
        if any(len(names) > 1 for names in spellings.values()):
            assert ours.flush() is not None and ours.is_empty  # broken, never wrong
            return
        spellings.clear()
        # the best prices are tracked, not sorted: they must follow every insert and removal
        bid, ask = reference.best_prices()
        assert ours.best_prices() == (bid, ask)
        assert ours.best_bid() == reference.best_bid() and ours.best_ask() == reference.best_ask()
        assert ours.crossed() == (bid is not None and ask is not None and bid >= ask)
    if any(len(names) > 1 for names in spellings.values()):
        assert ours.flush() is not None
        return
    for side in (BookSide.BIDS, BookSide.ASKS):
        assert ours.levels(side, 1000) == reference.levels(side, 1000)
