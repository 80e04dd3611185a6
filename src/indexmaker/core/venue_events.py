"""Venue events and commands: market data, exchange orders, fills, rules and rate limits.

Every record names its instrument as `InstrumentId(venue, pair)` (SPEC §6), and every event a
venue reports carries the venue's own ids and its event time, so a fill is recognised again
however often it is delivered. Ordering and idempotency keys: docs/adapters.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from indexmaker.core.ids import (
    Asset,
    BatchId,
    ExchangeOrderId,
    InstrumentId,
    TradeId,
    Venue,
    VenueOrderId,
)
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import Side

Level = tuple[Decimal, Decimal]  # (price, quantity)

# ---------------------------------------------------------------- market data in


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """The whole book of an instrument (a synchronised REST snapshot, or a simulator's)."""

    instrument: InstrumentId
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Level changes after a snapshot; quantity 0 removes the level."""

    instrument: InstrumentId
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()


@dataclass(frozen=True, slots=True)
class BookInvalid:
    """The book can no longer be trusted (stale, sequence gap, stream dropped): the solver does
    not price or trade on it until the next `BookSnapshot` (SPEC §6)."""

    instrument: InstrumentId
    reason: str


@dataclass(frozen=True, slots=True)
class TradePrint:
    instrument: InstrumentId
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class RulesUpdate:
    """An instrument's trading rules (exchangeInfo filters), at start and whenever they change.
    Replaces what was known; an instrument without rules is not traded."""

    rules: InstrumentRules

    @property
    def instrument(self) -> InstrumentId:
        return self.rules.instrument


@dataclass(frozen=True, slots=True)
class InstrumentStatus:
    """The venue stopped or resumed trading an instrument (SPEC §6): `status` is its
    exchangeInfo word (HALT, BREAK, CANCEL_ONLY; "delisted" when it left the list; TRADING
    again). Stopped, the adapter has already pushed `BookInvalid` (out of new batches) and
    reconciles the instrument's open orders; the core alerts the operator once per change."""

    instrument: InstrumentId
    trading: bool
    status: str


@dataclass(frozen=True, slots=True)
class RateLimitFeedback:
    """What the venue said about our usage: a used-weight / order-count header (`used` of the
    named limiter window) and/or a back-off (`retry_after`, from a 429 or 418)."""

    venue: Venue
    window: str | None = None  # the limiter window's name, e.g. "ORDERS_10S"
    used: int | None = None
    retry_after: timedelta | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLimitWindow:
    """One order-count window of a venue: at most `limit` new orders inside any `interval`.
    `stated` is the venue's own figure; `limit` is what the adapter lets us use of it (its
    headroom rule, e.g. Binance's 90%: venues/binance/limits.py), so the core never asks for
    more than the adapter sends without refusing."""

    name: str  # the venue's window, e.g. "ORDERS_10S", "ORDERS_1D" (Binance header spelling)
    limit: int
    interval: timedelta
    stated: int


@dataclass(frozen=True, slots=True)
class VenueOrderLimits:
    """The venue's order-count limits as it states them (SPEC §6: Binance exchangeInfo
    `rateLimits` of type ORDERS), pushed by the adapter at start and when they change. They
    replace the core's order budget (`[solver] order_rate_limits`) unless `[solver]
    venue_order_limits` is false; orders counted so far stay counted in windows of the same
    name (engine/order_budget.py)."""

    venue: Venue
    windows: tuple[OrderLimitWindow, ...]


@dataclass(frozen=True, slots=True)
class VenueBalance:
    """Our account's balance of one asset at a venue as the venue stated it (Binance
    `account.status`, `outboundAccountPosition`, or a `balanceUpdate` applied): `free` plus
    `locked` (held by open orders), in units of `asset`, as of `event_time`. Replaces the
    last one of that asset; the core checks it against the lots it holds (engine/balances.py)."""

    venue: Venue
    asset: Asset
    free: Decimal
    locked: Decimal
    event_time: datetime | None = None


# ---------------------------------------------------------------- exchange orders


class ExchangeOrderStatus(Enum):
    PENDING = "pending"  # tracked, command emitted, no answer yet
    LIVE = "live"
    UNKNOWN = "unknown"  # the venue did not answer (timeout, 5xx): reconcile before anything
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        ExchangeOrderStatus.FILLED,
        ExchangeOrderStatus.CANCELLED,
        ExchangeOrderStatus.EXPIRED,
        ExchangeOrderStatus.REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class PlaceExchangeOrder:
    """Command: send a LIMIT IOC order. `order_id` is our client order id at the venue (the
    idempotency key: a venue refuses a repeated one)."""

    order_id: ExchangeOrderId
    batch_id: BatchId
    instrument: InstrumentId
    side: Side
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class QueryExchangeOrder:
    """Command: ask the venue for the order's status by client order id (reconciliation);
    the answer is an `ExchangeOrderReport`, preceded by any fills not delivered yet."""

    order_id: ExchangeOrderId
    instrument: InstrumentId


@dataclass(frozen=True, slots=True)
class ExchangeOrderAccepted:
    order_id: ExchangeOrderId
    instrument: InstrumentId
    venue_order_id: VenueOrderId | None = None
    event_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    """One execution (Binance executionReport with x=TRADE). Idempotency key: (instrument,
    trade_id). `commission` is in `commission_asset` as the venue charged it; the core converts
    it (SPEC §6: base asset reduces the lot, another asset is valued in USDC)."""

    order_id: ExchangeOrderId
    instrument: InstrumentId
    venue_order_id: VenueOrderId
    trade_id: TradeId
    price: Decimal
    quantity: Decimal
    cumulative_quantity: Decimal  # of the order, including this fill
    commission: Decimal
    commission_asset: Asset
    event_time: datetime


@dataclass(frozen=True, slots=True)
class ExchangeOrderClosed:
    """The order will not fill further: filled, cancelled, expired (IOC rest) or rejected."""

    order_id: ExchangeOrderId
    instrument: InstrumentId
    status: ExchangeOrderStatus
    reason: str | None = None
    venue_order_id: VenueOrderId | None = None
    cumulative_quantity: Decimal | None = None
    event_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExchangeOrderStatusUnknown:
    """The adapter could not learn whether the venue took the order (timeout, 5xx, a dropped
    socket): the core reconciles by client order id before anything is resent (SPEC §6)."""

    order_id: ExchangeOrderId
    instrument: InstrumentId
    reason: str


@dataclass(frozen=True, slots=True)
class ExchangeOrderReport:
    """The venue's answer to a status query or a reconciliation on start. `status` None means
    the venue does not know the order (it never arrived): it is closed as rejected."""

    order_id: ExchangeOrderId
    instrument: InstrumentId
    status: ExchangeOrderStatus | None
    cumulative_quantity: Decimal
    venue_order_id: VenueOrderId | None = None
    event_time: datetime | None = None
    reason: str | None = None


VenueInput = (
    BookSnapshot
    | BookUpdate
    | BookInvalid
    | TradePrint
    | RulesUpdate
    | InstrumentStatus
    | RateLimitFeedback
    | VenueOrderLimits
    | VenueBalance
    | ExchangeOrderAccepted
    | ExchangeFill
    | ExchangeOrderClosed
    | ExchangeOrderStatusUnknown
    | ExchangeOrderReport
)
VenueCommand = PlaceExchangeOrder | QueryExchangeOrder
