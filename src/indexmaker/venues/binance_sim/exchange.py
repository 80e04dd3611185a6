"""The simulated venue's state: symbols, books, the market model's quotes, and what the market
streams publish (`depthUpdate` every 100 ms with U/u, `bookTicker` on every top-of-book change).

Single-threaded by design: everything runs on the server's event loop, so an operation (a
requote, an order with its matches, a cancel) is one book update with one update id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from indexmaker.venues.binance_sim.book import Book, Entry
from indexmaker.venues.binance_sim.errors import ApiError, bad_symbol
from indexmaker.venues.binance_sim.market import Quotes, ReplayMarket, SyntheticMarket
from indexmaker.venues.binance_sim.symbols import SymbolSpec

MarketListener = Callable[[str, str, dict[str, object]], None]  # (symbol, kind, payload)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True)
class MarketFaults:
    """Market-data faults (faults.py switches them at run time)."""

    skip_updates: dict[str, int] = field(default_factory=dict)  # symbol -> diffs to drop
    snapshot_lag: dict[str, int] = field(default_factory=dict)  # symbol ('*' all) -> updates
    # symbol -> diffs each followed by the one sent before it again (late: its u is old)
    repeat_updates: dict[str, int] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)  # symbols whose market model stops


class Exchange:
    def __init__(self, model: SyntheticMarket | ReplayMarket) -> None:
        self.model = model
        self.specs: dict[str, SymbolSpec] = model.specs
        self.books: dict[str, Book] = {}
        # The market model's own resting quotes per symbol: (bids, asks) price -> entry.
        self.maker: dict[str, tuple[dict[int, Entry], dict[int, Entry]]] = {}
        self._tops: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
        self.listeners: list[MarketListener] = []
        # Whether anyone listens to (symbol, kind): payloads nobody reads are not built.
        self.interest: Callable[[str, str], bool] = lambda symbol, kind: bool(self.listeners)
        self.faults = MarketFaults()
        self._sent_depth: dict[str, dict[str, object]] = {}  # last diff sent, for repeat_updates
        # Set by the trading layer: matches a market quote that crosses resting user orders
        # (the price moved through them) and returns what is left of the quote.
        self.cross: Callable[[str, bool, int, int], int] | None = None
        for index, symbol in enumerate(sorted(self.specs)):
            # Distinct, large first ids per symbol, as on the venue (ids are per symbol).
            self.books[symbol] = Book(first_update_id=1_000_000 * (index + 1) + 1)
            self.maker[symbol] = ({}, {})
        for quotes in model.initial():
            self.apply_quotes(quotes, publish=False)
        for symbol, book in self.books.items():
            book.take_diff()
            self._tops[symbol] = book.top()

    # ------------------------------------------------------------------ lookup
    def spec(self, symbol: str | None) -> SymbolSpec:
        spec = self.specs.get((symbol or "").upper())
        if spec is None:
            raise bad_symbol()
        return spec

    def reference_price(self, symbol: str) -> Decimal | None:
        """Mid of the book (PERCENT_PRICE_BY_SIDE's reference); None on an empty book."""
        (bid, _), (ask, _) = self.books[symbol].top()
        spec = self.specs[symbol]
        if bid and ask:
            return spec.price_of(bid + ask) / 2
        if bid or ask:
            return spec.price_of(bid or ask)
        return None

    # ------------------------------------------------------------- market model
    def tick(self, now: int | None = None) -> None:
        """Every 100 ms: the market moves, then every changed book publishes its diff."""
        stamp = now if now is not None else now_ms()
        frozen = self.faults.frozen
        for quotes in self.model.step(stamp):
            spec = self.specs.get(quotes.symbol)
            if spec is None or spec.status != "TRADING" or quotes.symbol in frozen:
                continue
            self.apply_quotes(quotes)
        self.publish_diffs(stamp)

    def apply_quotes(self, quotes: Quotes, publish: bool = True) -> None:
        symbol = quotes.symbol
        book = self.books[symbol]
        for is_bid, wanted, entries in (
            (True, quotes.bids, self.maker[symbol][0]),
            (False, quotes.asks, self.maker[symbol][1]),
        ):
            if quotes.replace:
                for price in [p for p in entries if p not in wanted]:
                    stale = entries.pop(price)
                    if stale.qty > 0:
                        book.remove(stale)
            for price, qty in wanted.items():
                entry: Entry | None = entries.get(price)
                if entry is not None and entry.qty <= 0:
                    entry = None  # eaten by a taker: requote from scratch
                if qty <= 0:
                    if entry is not None:
                        book.remove(entry)
                    entries.pop(price, None)
                    continue
                if entry is None:
                    rest = self._cross(symbol, is_bid, price, qty)
                    if rest > 0:
                        entries[price] = book.add(is_bid, price, rest, None)
                    else:
                        entries.pop(price, None)
                elif qty < entry.qty:
                    book.reduce(entry, entry.qty - qty)
                elif qty > entry.qty:
                    book.grow(entry, qty - entry.qty)
        self.committed(symbol, publish)

    def _cross(self, symbol: str, is_bid: bool, price: int, qty: int) -> int:
        best = self.books[symbol].best(not is_bid)
        if best is None or (best.price > price if is_bid else best.price < price):
            return qty
        if self.cross is not None:
            return self.cross(symbol, is_bid, price, qty)
        return 0  # nobody to trade with: the quote that would cross is not placed

    def committed(self, symbol: str, publish: bool = True) -> None:
        """Close one book operation; a changed top of book is published at once."""
        book = self.books[symbol]
        if not book.commit() or not publish:
            return
        top = book.top()
        if top != self._tops.get(symbol):
            self._tops[symbol] = top
            if self.interest(symbol, "bookTicker"):
                self._emit(symbol, "bookTicker", self.book_ticker_event(symbol))

    def publish_diffs(self, stamp: int) -> None:
        skip = self.faults.skip_updates
        repeat = self.faults.repeat_updates
        for symbol, book in self.books.items():
            diff = book.take_diff()
            if diff is None:
                continue
            if skip.get(symbol):
                skip[symbol] -= 1  # the fault: this diff is lost, the next one shows a gap
                continue
            if not self.interest(symbol, "depth"):
                continue
            spec = self.specs[symbol]
            price, qty = spec.fmt_price, spec.fmt_qty
            payload: dict[str, object] = {
                "e": "depthUpdate",
                "E": stamp,
                "s": symbol,
                "U": diff.first_id,
                "u": diff.last_id,
                "b": [[price(p), qty(q)] for p, q in diff.bids],
                "a": [[price(p), qty(q)] for p, q in diff.asks],
            }
            self._emit(symbol, "depth", payload)
            previous = self._sent_depth.get(symbol)
            self._sent_depth[symbol] = payload
            if repeat.get(symbol):
                repeat[symbol] -= 1  # the fault: an old diff arrives again, after a newer one
                self._emit(symbol, "depth", previous or payload)

    def _emit(self, symbol: str, kind: str, payload: dict[str, object]) -> None:
        for listener in self.listeners:
            listener(symbol, kind, payload)

    # ------------------------------------------------------------------ answers
    def depth(self, symbol: str | None, limit: int = 100) -> dict[str, object]:
        """GET /api/v3/depth (rest-api.md): limit 1-5000, default 100."""
        spec = self.spec(symbol)
        if not 1 <= limit <= 5000:
            raise ApiError(-1100, "Illegal characters found in parameter 'limit'.")
        lag = self.faults.snapshot_lag.get(spec.symbol, self.faults.snapshot_lag.get("*", 0))
        last_id, bids, asks = self.books[spec.symbol].depth(limit, lag)
        price, qty = spec.fmt_price, spec.fmt_qty
        return {
            "lastUpdateId": last_id,
            "bids": [[price(p), qty(q)] for p, q in bids],
            "asks": [[price(p), qty(q)] for p, q in asks],
        }

    def book_ticker(self, symbol: str) -> dict[str, object]:
        spec = self.specs[symbol]
        (bid, bid_qty), (ask, ask_qty) = self.books[symbol].top()
        return {
            "symbol": symbol,
            "bidPrice": spec.fmt_price(bid),
            "bidQty": spec.fmt_qty(bid_qty),
            "askPrice": spec.fmt_price(ask),
            "askQty": spec.fmt_qty(ask_qty),
        }

    def book_ticker_event(self, symbol: str) -> dict[str, object]:
        """The `<symbol>@bookTicker` payload: u is the book's update id."""
        ticker = self.book_ticker(symbol)
        return {
            "u": self.books[symbol].update_id,
            "s": symbol,
            "b": ticker["bidPrice"],
            "B": ticker["bidQty"],
            "a": ticker["askPrice"],
            "A": ticker["askQty"],
        }

    def exchange_info(
        self, symbols: list[str] | None, rate_limits: list[dict[str, object]]
    ) -> dict[str, object]:
        if symbols:
            specs = [self.spec(s) for s in symbols]
        else:
            specs = [self.specs[s] for s in sorted(self.specs)]
        return {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "symbols": [spec.exchange_info() for spec in specs],
        }
