"""An in-process simulated exchange: books, IOC matching, fees, and scripted behaviour.

It answers `PlaceExchangeOrder` commands with the venue events a real connector would
produce (accepted, fills, closed), consuming the liquidity it matched. Per-symbol
behaviour scripts partial fills, rejects and splits for scenario tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, localcontext

from indexmaker.core.events import (
    BookSnapshot,
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    OrderLimitWindow,
    PlaceExchangeOrder,
    VenueOrderLimits,
)
from indexmaker.core.ids import DEFAULT_VENUE, Asset, InstrumentId, TradeId, VenueOrderId
from indexmaker.core.money import MONEY_CONTEXT
from indexmaker.engine.throttle import RateLimit, RateLimiter, kept_limit
from indexmaker.model.book import OrderBook
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import BookSide, Side

ZERO = Decimal(0)
FEE_QUANTUM = Decimal("1e-8")  # Binance reports commissions with 8 decimals

Level = tuple[Decimal, Decimal]


@dataclass(slots=True)
class Behaviour:
    """How the venue treats one symbol's orders."""

    fill_ratio: Decimal = Decimal(1)  # share of the matchable quantity that fills
    reject: str | None = None  # reject every order with this reason
    splits: int = 1  # executions per matched level (several trade ids)
    # A buy's commission in the base asset (Binance's default without BNB: the commission is
    # taken from the asset received, so the bought quantity arrives short by it); a sell's is
    # then in the quote asset, which is what a sell receives.
    commission_in_base: bool = False


class SimulatedExchange:
    def __init__(
        self,
        books: dict[InstrumentId, tuple[list[Level], list[Level]]],
        fee_rate: Decimal = Decimal("0.001"),
        behaviour: dict[InstrumentId, Behaviour] | None = None,
        rules: dict[InstrumentId, InstrumentRules] | None = None,
        order_limits: Sequence[RateLimit] = (),
    ) -> None:
        """`order_limits`: the venue's order-count windows (e.g. Binance's 50 per 10 s), as it
        states them (`stated_order_limits`) and enforces them: an order past one is refused
        (Binance -1015, "Too many new orders"); none: orders are not counted."""
        self.fee_rate = fee_rate
        self.order_limits = tuple(order_limits)
        self._order_count = RateLimiter(order_limits) if order_limits else None
        self.orders_refused: list[PlaceExchangeOrder] = []
        self.rules = rules or {}
        self.behaviour = behaviour or {}
        self.books: dict[InstrumentId, OrderBook] = {}
        for symbol, (bids, asks) in books.items():
            book = OrderBook(symbol)
            book.apply_snapshot(bids, asks)
            self.books[symbol] = book
        self.orders_received: list[PlaceExchangeOrder] = []
        self._next_trade = 1
        self._next_venue_order = 1

    def stated_order_limits(self) -> VenueOrderLimits | None:
        """What a connector to this venue tells the core (as the Binance adapter does from
        exchangeInfo): each window with the adapters' headroom rule (`kept_limit`)."""
        if not self.order_limits:
            return None
        windows = tuple(
            OrderLimitWindow(r.name, kept_limit(r.limit), r.interval, r.limit)
            for r in self.order_limits
        )
        return VenueOrderLimits(DEFAULT_VENUE, windows)

    def snapshots(self) -> list[BookSnapshot]:
        return [
            BookSnapshot(
                symbol,
                tuple(book.levels(BookSide.BIDS, 1000)),
                tuple(book.levels(BookSide.ASKS, 1000)),
            )
            for symbol, book in self.books.items()
        ]

    def execute(self, order: PlaceExchangeOrder, now: datetime) -> list[EngineInput]:
        """Match a LIMIT IOC order at `now` (the events' venue time); what does not fill at
        once expires."""
        # The venue's arithmetic must be as exact as the engine's, or a fill of a 34-digit
        # quantity rounds to more than was ordered.
        with localcontext(MONEY_CONTEXT):
            return self._execute(order, now)

    def _execute(self, order: PlaceExchangeOrder, now: datetime) -> list[EngineInput]:
        self.orders_received.append(order)
        instrument = order.instrument
        if self._order_count is not None and self._order_count.try_acquire(now) is not None:
            self.orders_refused.append(order)
            windows = ", ".join(f"{r.name} {r.limit}" for r in self.order_limits)
            closed = ExchangeOrderClosed(
                order.order_id,
                instrument,
                ExchangeOrderStatus.REJECTED,
                f"Too many new orders (-1015): {windows}",
                event_time=now,
            )
            return [closed]
        behaviour = self.behaviour.get(instrument, Behaviour())
        book = self.books.get(instrument)
        reason = behaviour.reject or self._filter_failure(order)
        if book is None:
            reason = f"unknown symbol {instrument}"
        if reason is not None or book is None:
            return [
                ExchangeOrderClosed(
                    order.order_id, instrument, ExchangeOrderStatus.REJECTED, reason, event_time=now
                )
            ]
        venue_id = VenueOrderId(str(self._next_venue_order))
        self._next_venue_order += 1
        events: list[EngineInput] = [
            ExchangeOrderAccepted(order.order_id, instrument, venue_id, now)
        ]
        wanted = order.quantity * behaviour.fill_ratio
        filled = ZERO
        consumed: list[Level] = []
        taken = order.side.taken_book
        for price, quantity in book.levels(taken, 1000):
            crosses = price <= order.price if order.side is Side.BUY else price >= order.price
            if not crosses or filled >= wanted:
                break
            take = min(quantity, wanted - filled)
            consumed.append((price, quantity - take))
            events.extend(self._executions(order, venue_id, price, take, filled, behaviour, now))
            filled += take
        if consumed:
            if taken is BookSide.ASKS:
                book.apply_update((), consumed)
            else:
                book.apply_update(consumed, ())
        status = (
            ExchangeOrderStatus.FILLED if filled >= order.quantity else ExchangeOrderStatus.EXPIRED
        )
        events.append(
            ExchangeOrderClosed(order.order_id, instrument, status, None, venue_id, filled, now)
        )
        return events

    def _filter_failure(self, order: PlaceExchangeOrder) -> str | None:
        """The venue refuses what breaks its filters, as Binance does (-1013)."""
        rules = self.rules.get(order.instrument)
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
        self,
        order: PlaceExchangeOrder,
        venue_id: VenueOrderId,
        price: Decimal,
        quantity: Decimal,
        filled_before: Decimal,
        behaviour: Behaviour,
        now: datetime,
    ) -> list[EngineInput]:
        parts = max(1, behaviour.splits)
        each = quantity / parts
        rules = self.rules.get(order.instrument)
        base = rules.base_asset if rules is not None else order.instrument.pair[:-4]
        quote = rules.quote_asset if rules is not None else order.instrument.pair[-4:]
        fills: list[EngineInput] = []
        cumulative = filled_before
        for part in range(parts):
            size = quantity - each * (parts - 1) if part == parts - 1 else each
            cumulative += size
            if behaviour.commission_in_base and order.side is Side.BUY:
                asset = base
                fee = (size * self.fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_FLOOR)
            else:
                asset = quote
                fee = (size * price * self.fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_FLOOR)
            fills.append(
                ExchangeFill(
                    order.order_id,
                    order.instrument,
                    venue_id,
                    TradeId(f"t{self._next_trade}"),
                    price,
                    size,
                    cumulative,
                    fee,
                    Asset(asset),
                    now,
                )
            )
            self._next_trade += 1
        return fills

    def replace_books(
        self, books: dict[InstrumentId, tuple[list[Level], list[Level]]]
    ) -> list[BookSnapshot]:
        """Makers requoted: the venue's books become these; returns the snapshots to publish."""
        for symbol, (bids, asks) in books.items():
            book = self.books.get(symbol)
            if book is None:
                book = self.books[symbol] = OrderBook(symbol)
            book.apply_snapshot(bids, asks)
        return [
            BookSnapshot(symbol, tuple(bids), tuple(asks)) for symbol, (bids, asks) in books.items()
        ]
