"""Market data for the core: order books per instrument and prices kept in sync with them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import BookInvalid, BookSnapshot, BookUpdate, TradePrint
from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import (
    MONEY_CONTEXT,
    ONE,
    ZERO,
    round_down_to_tick,
    round_up_to_tick,
)
from indexmaker.model.book import OrderBook
from indexmaker.model.side import Side

# Private copy: results must not depend on (or set flags in) the caller's thread context.
_CTX = MONEY_CONTEXT.copy()
_TWO = Decimal(2)

MarketEvent = BookSnapshot | BookUpdate | BookInvalid | TradePrint


@dataclass(frozen=True, slots=True)
class Prices:
    """What is known about one instrument's price right now; None means "not known", never 0."""

    bid: Decimal | None
    ask: Decimal | None
    mid: Decimal | None
    last: Decimal | None
    vwap: Decimal | None  # volume-weighted average of the trades recorded so far


class _InstrumentPrices:
    __slots__ = ("ask", "bid", "cached", "last", "notional", "volume")

    def __init__(self) -> None:
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.last: Decimal | None = None
        self.notional = ZERO  # Σ price × quantity
        self.volume = ZERO  # Σ quantity
        self.cached: Prices | None = None

    def snapshot(self) -> Prices:
        # Built lazily: top of book changes far more often than anyone reads it.
        if self.cached is None:
            bid, ask = self.bid, self.ask
            mid = None
            if bid is not None and ask is not None:
                mid = _CTX.divide(_CTX.add(bid, ask), _TWO)
            vwap = _CTX.divide(self.notional, self.volume) if self.volume else None
            self.cached = Prices(bid=bid, ask=ask, mid=mid, last=self.last, vwap=vwap)
        return self.cached


def _check_price(field: str, value: Decimal | None) -> None:
    if value is not None and (not value.is_finite() or value <= ZERO):
        raise InvalidInputError(field, f"must be a positive price, got {value}")


class PriceTracker:
    """Per instrument: best bid, best ask, mid, last trade and the running VWAP of trades."""

    def __init__(self) -> None:
        self._entries: dict[InstrumentId, _InstrumentPrices] = {}

    def _entry(self, instrument: InstrumentId) -> _InstrumentPrices:
        entry = self._entries.get(instrument)
        if entry is None:
            entry = self._entries[instrument] = _InstrumentPrices()
        return entry

    def update_top(
        self, instrument: InstrumentId, bid: Decimal | None, ask: Decimal | None
    ) -> None:
        """Set top of book; None means that side is empty now."""
        _check_price("bid", bid)
        _check_price("ask", ask)
        entry = self._entry(instrument)
        if entry.bid != bid or entry.ask != ask:
            entry.bid = bid
            entry.ask = ask
            entry.cached = None

    def record_trade(self, instrument: InstrumentId, price: Decimal, quantity: Decimal) -> None:
        _check_price("price", price)
        if not quantity.is_finite() or quantity <= ZERO:
            raise InvalidInputError("quantity", f"must be positive, got {quantity}")
        entry = self._entry(instrument)
        entry.last = price
        entry.notional = _CTX.add(entry.notional, _CTX.multiply(price, quantity))
        entry.volume = _CTX.add(entry.volume, quantity)
        entry.cached = None

    def reset_vwap(self, instrument: InstrumentId) -> None:
        """Start a new VWAP window (e.g. per batch or per day); last price is kept."""
        entry = self._entries.get(instrument)
        if entry is not None:
            entry.notional = ZERO
            entry.volume = ZERO
            entry.cached = None

    def get(self, instrument: InstrumentId) -> Prices | None:
        entry = self._entries.get(instrument)
        return None if entry is None else entry.snapshot()


class MarketData:
    """Owns the order books and the price tracker; applies market-data events to both.

    Read watch (docs/decisions.md, "Book snapshots journalled when a decision reads them"):
    `unjournaled` holds the instruments whose book changed since it was last journalled; while
    `on_read` is set, the first read of such a book (`book`, `prices`, `limit_price`) calls
    `on_read(instrument)` before the value is returned, so the journal holds every book a
    decision read, as it read it, and nothing else. `best_price` reads only the top of a book:
    it journals the book only when that price moved since the book was last journalled."""

    def __init__(self) -> None:
        self._books: dict[InstrumentId, OrderBook] = {}
        self.tracker = PriceTracker()
        self.unjournaled: set[InstrumentId] = set()
        self.on_read: Callable[[InstrumentId], None] | None = None
        # (best bid, best ask) of each book as last journalled (`journaled`), for best_price.
        self._journaled_top: dict[InstrumentId, tuple[Decimal | None, Decimal | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The read watch belongs to the running engine and its journal, not to a snapshot.
        state = dict(self.__dict__)
        state["unjournaled"] = set()
        state["on_read"] = None
        state["_journaled_top"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_journaled_top", {})  # a snapshot of a build without it
        self.__dict__.update(state)

    def journaled(self, instrument: InstrumentId) -> None:
        """The engine journalled the book of `instrument` as it is now (`best_price`)."""
        book = self._books.get(instrument)
        self._journaled_top[instrument] = book.best_prices() if book else (None, None)

    def _read(self, instrument: InstrumentId) -> None:
        if instrument in self.unjournaled and self.on_read is not None:
            self.unjournaled.discard(instrument)
            self.on_read(instrument)

    def apply(self, event: MarketEvent) -> bool:
        """Apply one event. Returns False when it was dropped: an update for a instrument that has
        had no snapshot yet (a diff alone is not a book; the venue adapter must snapshot first)."""
        if isinstance(event, TradePrint):
            self.tracker.record_trade(event.instrument, event.price, event.quantity)
            return True
        if isinstance(event, BookInvalid):
            # Not trusted until the venue adapter re-synchronises it with a new snapshot.
            self.drop(event.instrument)
            return True
        if isinstance(event, BookSnapshot):
            book = self._books.get(event.instrument)
            if book is None:
                book = OrderBook(event.instrument)
            # Validates before mutating, so a bad snapshot leaves the old book in place.
            book.apply_snapshot(event.bids, event.asks)
            self._books[event.instrument] = book
        else:
            book = self._books.get(event.instrument)
            if book is None:
                return False
            book.apply_update(event.bids, event.asks)
        bid, ask = book.best_prices()
        self.tracker.update_top(event.instrument, bid, ask)
        return True

    def book(self, instrument: InstrumentId) -> OrderBook | None:
        self._read(instrument)
        return self._books.get(instrument)

    def prices(self, instrument: InstrumentId) -> Prices | None:
        self._read(instrument)
        return self.tracker.get(instrument)

    def best_price(self, instrument: InstrumentId, side: Side) -> Decimal | None:
        """The best price a taker of `side` trades against (best ask for a buy, best bid for a
        sell), None when that side is empty or unknown. A read like `book`'s, but of the top
        only: a book changed since it was last journalled is journalled (`_read`) only if this
        price moved since; changes deeper in the book or on the other side are not, so replay,
        which sees the book as last journalled, returns the same price."""
        book = self._books.get(instrument)
        top = book.best_prices() if book is not None else (None, None)
        at = 1 if side is Side.BUY else 0
        if instrument in self.unjournaled:
            seen = self._journaled_top.get(instrument)
            if seen is None or seen[at] != top[at]:
                self._read(instrument)
        return top[at]

    def current_book(self, instrument: InstrumentId) -> OrderBook | None:
        """The book as it is, without counting as a decision's read (journalling it)."""
        return self._books.get(instrument)

    def drop(self, instrument: InstrumentId) -> None:
        """Forget a instrument's book (stale or out of sync); its prices go back to unknown."""
        self._journaled_top.pop(instrument, None)  # the next book is new to best_price
        if self._books.pop(instrument, None) is not None:
            self.tracker.update_top(instrument, None, None)

    def limit_price(
        self, instrument: InstrumentId, side: Side, threshold: Decimal, tick: Decimal = ZERO
    ) -> Decimal | None:
        """SPEC §4 step 2 for a taker of `side`: best ask × (1 + threshold) rounded up to
        `tick` for buys, best bid × (1 − threshold) rounded down to `tick` for sells (SPEC §6
        PRICE_FILTER; `tick` 0 leaves it unrounded). None when the book side it takes is empty
        or unknown, so the caller never guesses a price. Raises InvalidInputError for a
        threshold outside [0, 1)."""
        if not threshold.is_finite() or threshold < ZERO or threshold >= ONE:
            raise InvalidInputError("threshold", f"must be in [0, 1), got {threshold}")
        self._read(instrument)
        book = self._books.get(instrument)
        if book is None:
            return None
        bid, ask = book.best_prices()
        if side is Side.BUY:
            if ask is None:
                return None
            limit = _CTX.multiply(ask, _CTX.add(ONE, threshold))
            return round_up_to_tick(limit, tick) if tick else limit
        if bid is None:
            return None
        limit = _CTX.multiply(bid, _CTX.subtract(ONE, threshold))
        return round_down_to_tick(limit, tick) if tick else limit
