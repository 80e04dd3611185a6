"""An in-process simulated exchange: books, IOC matching, fees, and scripted behaviour.

It answers `PlaceExchangeOrder` commands with the venue events a real connector would
produce (accepted, fills, closed), consuming the liquidity it matched. Per-symbol
behaviour scripts partial fills, rejects and splits for scenario tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from indexmaker.core.events import (
    BookSnapshot,
    BookUpdate,
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import Symbol, TradeId
from indexmaker.model.book import OrderBook
from indexmaker.model.filters import SymbolRules
from indexmaker.model.side import Side

ZERO = Decimal(0)
FEE_QUANTUM = Decimal("1e-8")  # Binance reports commissions with 8 decimals

Level = tuple[Decimal, Decimal]


@dataclass(slots=True)
class Behaviour:
    """How the venue treats one symbol's orders."""

    fill_ratio: Decimal = Decimal(1)  # share of the matchable quantity that fills
    reject: str | None = None  # reject every order with this reason
    splits: int = 1  # executions per matched level (several trade ids)


class SimulatedExchange:
    def __init__(
        self,
        books: dict[Symbol, tuple[list[Level], list[Level]]],
        fee_rate: Decimal = Decimal("0.001"),
        behaviour: dict[Symbol, Behaviour] | None = None,
        rules: dict[Symbol, SymbolRules] | None = None,
    ) -> None:
        self.fee_rate = fee_rate
        self.rules = rules or {}
        self.behaviour = behaviour or {}
        self.books: dict[Symbol, OrderBook] = {}
        for symbol, (bids, asks) in books.items():
            book = OrderBook(symbol)
            book.apply_snapshot(bids, asks)
            self.books[symbol] = book
        self.orders_received: list[PlaceExchangeOrder] = []
        self._next_trade = 1

    def snapshots(self) -> list[BookSnapshot]:
        return [
            BookSnapshot(
                symbol,
                tuple(book.levels(Side.BUY, 1000)),
                tuple(book.levels(Side.SELL, 1000)),
            )
            for symbol, book in self.books.items()
        ]

    def execute(self, order: PlaceExchangeOrder) -> list[EngineInput]:
        """Match a LIMIT IOC order; what does not fill at once expires."""
        self.orders_received.append(order)
        behaviour = self.behaviour.get(order.symbol, Behaviour())
        book = self.books.get(order.symbol)
        reason = behaviour.reject or self._filter_failure(order)
        if book is None:
            reason = f"unknown symbol {order.symbol}"
        if reason is not None:
            return [ExchangeOrderClosed(order.order_id, ExchangeOrderStatus.REJECTED, reason)]
        events: list[EngineInput] = [ExchangeOrderAccepted(order.order_id)]
        wanted = order.quantity * behaviour.fill_ratio
        filled = ZERO
        consumed: list[Level] = []
        opposite = Side.SELL if order.side is Side.BUY else Side.BUY
        for price, quantity in book.levels(opposite, 1000):
            crosses = price <= order.price if order.side is Side.BUY else price >= order.price
            if not crosses or filled >= wanted:
                break
            take = min(quantity, wanted - filled)
            filled += take
            consumed.append((price, quantity - take))
            events.extend(self._executions(order, price, take, behaviour.splits))
        if consumed:
            if opposite is Side.SELL:
                book.apply_update((), consumed)
            else:
                book.apply_update(consumed, ())
        status = (
            ExchangeOrderStatus.FILLED if filled >= order.quantity else ExchangeOrderStatus.EXPIRED
        )
        events.append(ExchangeOrderClosed(order.order_id, status))
        return events

    def _filter_failure(self, order: PlaceExchangeOrder) -> str | None:
        """The venue refuses what breaks its filters, as Binance does (-1013)."""
        rules = self.rules.get(order.symbol)
        if rules is None:
            return None
        if rules.tick_size and order.price % rules.tick_size != 0:
            return "Filter failure: PRICE_FILTER"
        if rules.step_size and order.quantity % rules.step_size != 0:
            return "Filter failure: LOT_SIZE"
        if order.quantity < rules.min_qty:
            return "Filter failure: LOT_SIZE"
        if rules.min_notional and order.price * order.quantity < rules.min_notional:
            return "Filter failure: NOTIONAL"
        return None

    def _executions(
        self, order: PlaceExchangeOrder, price: Decimal, quantity: Decimal, splits: int
    ) -> list[EngineInput]:
        parts = max(1, splits)
        each = quantity / parts
        fills: list[EngineInput] = []
        for part in range(parts):
            size = quantity - each * (parts - 1) if part == parts - 1 else each
            fee = (size * price * self.fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_FLOOR)
            fills.append(
                ExchangeFill(order.order_id, TradeId(f"t{self._next_trade}"), price, size, fee)
            )
            self._next_trade += 1
        return fills

    def refill(self, rng: random.Random, drift: Decimal = Decimal("0.002")) -> list[BookUpdate]:
        """Book dynamics: makers move prices a little and top levels back up."""
        updates: list[BookUpdate] = []
        for symbol, book in self.books.items():
            best_bid, best_ask = book.best_bid(), book.best_ask()
            if best_bid is None or best_ask is None:
                continue
            mid = (best_bid[0] + best_ask[0]) / 2
            step = Decimal(rng.randint(-10, 10)) / 10 * drift
            new_mid = mid * (1 + step)
            tick = _tick_for(new_mid)
            bids = [book_level(new_mid, -(i + 1), tick, rng) for i in range(5)]
            asks = [book_level(new_mid, i + 1, tick, rng) for i in range(5)]
            book.apply_snapshot(bids, asks)
            updates.append(BookUpdate(symbol, tuple(bids), tuple(asks)))
        return updates


def _tick_for(price: Decimal) -> Decimal:
    """A tick about 1e-5 of the price, as on Binance's USDC pairs."""
    exponent = price.adjusted() - 5
    return Decimal(1).scaleb(exponent)


def book_level(mid: Decimal, offset: int, tick: Decimal, rng: random.Random) -> Level:
    """A level `offset` ticks-ish from mid (negative = bids) with a random depth."""
    spread = Decimal("0.0005") * abs(offset)
    raw = mid * (1 - spread) if offset < 0 else mid * (1 + spread)
    price = raw.quantize(tick, rounding=ROUND_FLOOR if offset < 0 else ROUND_CEILING)
    notional = Decimal(rng.randint(2_000, 40_000))
    quantity = (notional / price).quantize(Decimal("1e-6"), rounding=ROUND_FLOOR)
    return price, quantity
