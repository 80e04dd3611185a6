"""Binance Spot as a `VenuePort` (core/ports.py): instruments, books, orders, fills, limits.

Composes the REST client (exchangeInfo, depth snapshots, clock), the market-data connector
(diff-depth sync), the WebSocket API client (orders, user data via `session.logon` /
`userDataStream.subscribe`) and the order bookkeeping. What it pushes into the sink follows
docs/adapters.md: `RulesUpdate` per instrument at start and on change; per book a
`BookSnapshot` once synchronised, then `BookUpdate`s, and `BookInvalid` when it goes stale,
shows a gap or its stream drops; `ExchangeOrderAccepted` / `ExchangeFill` (once per trade id,
late fills included) / `ExchangeOrderClosed`; `VenueOrderLimits` (exchangeInfo's ORDERS
windows) at start and when they change; `RateLimitFeedback` on 429/418 and when the WS-API's
order counts exceed ours; `VenueBalance` per asset from `account.status` at start and after a
user-stream gap, and from `outboundAccountPosition` / `balanceUpdate` (balances.py).

`place` raises on a definite refusal (after pushing the close) and raises `StatusUnknownError`
when the venue may or may not have the order; the runtime then calls `order_status`, which asks
`order.status` by our client order id and `myTrades` for the fills we have not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from indexmaker.core.errors import NetworkError, NonRetryableError, RateLimitedError
from indexmaker.core.events import (
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    EngineInput,
    ExchangeOrderStatusUnknown,
    InstrumentStatus,
    OrderLimitWindow,
    PlaceExchangeOrder,
    RateLimitFeedback,
    RulesUpdate,
    VenueOrderLimits,
)
from indexmaker.core.ids import DEFAULT_VENUE, ExchangeOrderId, InstrumentId, Pair, Venue
from indexmaker.core.ports import EventSink, LimitHeadroom, OrderNotFound, OrderReport
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import BookSide
from indexmaker.venues.binance.balances import Balances
from indexmaker.venues.binance.book_sync import BookSync
from indexmaker.venues.binance.instruments import Instruments
from indexmaker.venues.binance.limits import (
    OrderNotFoundError,
    StatusUnknownError,
    local_ms,
    order_windows,
    utcnow,
)
from indexmaker.venues.binance.market_data import BinanceMarketData, BookChanges
from indexmaker.venues.binance.order_queries import open_orders, order_status
from indexmaker.venues.binance.orders import OrderBookkeeping
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.signing import Credentials
from indexmaker.venues.binance.subscriptions import MarketDataConfig
from indexmaker.venues.binance.wire import EXCHANGE_INFO
from indexmaker.venues.binance.ws_api import BinanceWsApi

log = logging.getLogger(__name__)
START_ATTEMPTS = 4  # tries of the start's REST steps while the venue's weight is used up


@dataclass(frozen=True, slots=True)
class BinanceVenueConfig:
    endpoints: BinanceEndpoints = field(default_factory=BinanceEndpoints)
    pairs: tuple[str, ...] = ()  # instruments to trade (empty: every TRADING symbol)
    market: MarketDataConfig = field(default_factory=MarketDataConfig)
    exchange_info_refresh_s: float = 60.0
    venue: Venue = DEFAULT_VENUE


class BinanceVenue:
    """One Binance account. Not thread-safe: used from one event loop."""

    def __init__(self, config: BinanceVenueConfig, credentials: Credentials) -> None:
        self.config = config
        self.credentials = credentials
        self.rest = BinanceRest(config.endpoints, credentials)
        wanted = frozenset(Pair(p) for p in config.pairs) or None
        self.instruments_state = Instruments(wanted=wanted, venue=config.venue)
        self.orders = OrderBookkeeping()
        self.balances = Balances(config.venue)
        self.market: BinanceMarketData | None = None
        self.ws_api: BinanceWsApi | None = None
        self._sink: EventSink | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._published: dict[Pair, bool] = {}  # a snapshot was pushed since the last invalid
        self.alerts: list[str] = []
        self._stopped: dict[InstrumentId, str] = {}  # stopped trading, not back yet
        self._user_events: asyncio.Queue[EngineInput] = asyncio.Queue()
        self._order_windows: tuple[OrderLimitWindow, ...] = ()  # told to the core last

    @property
    def venue(self) -> str:
        return self.config.venue

    # ------------------------------------------------------------------ lifecycle

    async def start(self, sink: EventSink) -> None:
        self._sink = sink
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                await self.rest.sync_clock()
                await self._load_commission()
                await self.refresh_instruments(first=True)
                break
            except RateLimitedError as exc:
                # The venue's weight used up (its headers said so: e.g. a restart loop of
                # this account): wait out the window rather than die at start.
                if attempt == START_ATTEMPTS:
                    raise
                log.warning(
                    "binance.start.rate_limited", extra={"retry_after_ms": exc.retry_after_ms}
                )
                await asyncio.sleep(max(exc.retry_after_ms, 1000) / 1000)
        self.ws_api = BinanceWsApi(
            self.config.endpoints,
            self.credentials,
            self.rest,
            on_event=self._on_user_event,
            on_reconnect=self._after_user_stream_gap,
            on_usage=self._on_order_usage,
        )
        self._tasks.append(asyncio.create_task(self._user_pusher()))
        await self.ws_api.start()
        await self._sync_balances()
        self._tasks.append(asyncio.create_task(self._refresher()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.market is not None:
            await self.market.stop()
        if self.ws_api is not None:
            await self.ws_api.stop()
        await self.rest.close()

    async def _push(self, event: EngineInput) -> None:
        if self._sink is not None:
            await self._sink(event)

    # ------------------------------------------------------------------ instruments

    async def instruments(self) -> Mapping[InstrumentId, InstrumentRules]:
        return dict(self.instruments_state.rules)

    async def _load_commission(self) -> None:
        """The account's taker commission rate (`GET /api/v3/account`, `commissionRates.taker`),
        which Binance takes in the received asset: the base asset of a buy. Every rules update
        carries it so the core grosses buys up (SPEC §6). On failure it stays 0 (buys arrive
        ~0.1% short and mint after the idle rule) and a warning is logged."""
        try:
            answer = await self.rest.signed("GET", "/api/v3/account", {}, weight=20)
            rate = Decimal(str(answer["commissionRates"]["taker"]))
            if not rate.is_finite() or not 0 <= rate < 1:
                raise ValueError(f"taker rate {rate}")
        except Exception as exc:
            log.warning("binance.commission.failed", extra={"error": repr(exc)})
            return
        self.instruments_state.buy_base_commission = rate

    async def refresh_instruments(self, first: bool = False) -> None:
        """Fetch exchangeInfo and act on what changed (every `exchange_info_refresh_s`).

        A symbol that stopped trading (HALT, BREAK, CANCEL_ONLY, or gone: delisted) leaves the
        rules, its streams are unsubscribed and `BookInvalid` is pushed, so the core prices and
        trades nothing on it (out of new batches); its open orders are reconciled through
        `order_status`; the operator is alerted (`alerts`, an error log). One that trades again
        gets its `RulesUpdate`, its streams resubscribed and, once synchronised, a snapshot."""
        raw = await self.rest.public_bytes("/api/v3/exchangeInfo", weight=20)
        changes = self.instruments_state.apply(EXCHANGE_INFO.decode(raw))
        # The venue's own rateLimits replace the defaults (shared by REST and WS-API; a later
        # change keeps what was counted), and its order windows become the core's order
        # budget (engine/order_budget.py), at start and whenever they change.
        windows = order_windows(self.instruments_state.rate_limits)
        if first or windows != self._order_windows:
            limits = self.instruments_state.limiter().limits
            self.rest.limiter = self.rest.limiter.reconfigured(limits, utcnow())
        if windows and windows != self._order_windows:
            self._order_windows = windows
            await self._push(VenueOrderLimits(self.config.venue, windows))
        for instrument in changes.added:
            await self._push(RulesUpdate(self.instruments_state.rules[instrument]))
            if self._stopped.pop(instrument, None) is not None:
                await self._push(InstrumentStatus(instrument, True, "TRADING"))
            if self.market is not None and await self.market.restore(instrument.pair):
                self._alert(f"{instrument}: trading again; book resubscribed")
        for instrument, why in changes.unparsable:
            self._alert(f"{instrument}: filters unreadable, not traded ({why})")
        for instrument, why in changes.removed:
            self._alert(f"{instrument}: stopped trading ({why}); taken out of new batches")
            self._stopped[instrument] = why
            # a snapshot is owed when it comes back; the one BookInvalid is this one, with why
            self._published[instrument.pair] = False
            if self.market is not None:
                await self.market.remove(instrument.pair)
            await self._push(BookInvalid(instrument, f"instrument {why}"))
            await self._push(InstrumentStatus(instrument, False, why))
            await self._reconcile_open_orders_of(instrument)

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(self.config.exchange_info_refresh_s)
            try:
                await self.refresh_instruments()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed refresh keeps the last known rules
                log.warning("binance.exchange_info.failed", extra={"error": repr(exc)})

    def _alert(self, text: str) -> None:
        self.alerts.append(text)
        log.error("binance.alert", extra={"alert": text})

    # ------------------------------------------------------------------ books

    async def subscribe_books(self, instruments: Sequence[InstrumentId]) -> None:
        pairs = [instrument.pair for instrument in instruments]
        self.market = BinanceMarketData(
            self.rest, self.config.endpoints, pairs, self.config.market, listener=self._on_book
        )
        await self.market.start()

    async def _on_book(self, sync: BookSync, changes: BookChanges | None) -> None:
        instrument = InstrumentId(self.config.venue, Pair(sync.symbol))
        published = self._published.get(Pair(sync.symbol), False)
        if sync.is_valid(local_ms()):
            if not published:
                book = sync.book
                if book.flush() is not None:
                    return  # a queued level was unreadable: invalid, never published
                self._published[Pair(sync.symbol)] = True
                await self._push(
                    BookSnapshot(
                        instrument,
                        tuple(book.levels(BookSide.BIDS, 10_000)),
                        tuple(book.levels(BookSide.ASKS, 10_000)),
                    )
                )
            elif changes is not None and (changes.bids or changes.asks):
                await self._push(BookUpdate(instrument, changes.bids, changes.asks))
        elif published:
            self._published[Pair(sync.symbol)] = False
            await self._push(BookInvalid(instrument, sync.invalid_reason(local_ms())))

    # ------------------------------------------------------------------ orders

    async def place(self, order: PlaceExchangeOrder) -> None:
        assert self.ws_api is not None, "start() first"
        self.orders.track(order)  # before it leaves: a timeout is then reconcilable
        if order.instrument not in self.instruments_state.rules:
            for event in self.orders.on_rejected(order.order_id, "instrument not tradable"):
                await self._push(event)
            raise NonRetryableError(
                f"{order.instrument}: not tradable (no rules, halted or delisted)"
            )
        try:
            answer = await self.ws_api.request(
                "order.place", self.orders.place_params(order), weight=1, orders=True
            )
        except RateLimitedError as exc:
            await self._push(
                RateLimitFeedback(
                    self.config.venue,
                    retry_after=timedelta(milliseconds=exc.retry_after_ms),
                    reason=str(exc),
                )
            )
            # Refused before the matcher (429/418): the venue never had it, so the same client
            # order id may be sent again once the wait is over; nothing is closed.
            self.orders.forget(order.order_id)
            raise
        except NonRetryableError as exc:
            for event in self.orders.on_rejected(order.order_id, str(exc)):
                await self._push(event)
            raise
        except (StatusUnknownError, NetworkError) as exc:
            # the venue may hold the order: never a reject, never resent (docs/adapters.md)
            await self._push(ExchangeOrderStatusUnknown(order.order_id, order.instrument, str(exc)))
            raise
        for event in self.orders.on_order_answer(answer):
            await self._push(event)

    async def cancel(self, order_id: ExchangeOrderId, instrument: InstrumentId) -> None:
        assert self.ws_api is not None
        tracked = self.orders.orders.get(order_id)
        if tracked is not None and tracked.closed:
            raise OrderNotFound(order_id)
        params = {"symbol": instrument.pair, "origClientOrderId": order_id}
        try:
            answer = await self.ws_api.request("order.cancel", params, weight=1)
        except OrderNotFoundError as exc:
            raise OrderNotFound(order_id) from exc
        for event in self.orders.on_order_answer(answer):
            await self._push(event)

    async def order_status(
        self, order_id: ExchangeOrderId, instrument: InstrumentId
    ) -> OrderReport:
        """Reconcile by our client order id (order_queries.order_status)."""
        assert self.ws_api is not None
        return await order_status(self.ws_api, self.orders, self._push, order_id, instrument)

    async def open_orders(self) -> Sequence[OrderReport]:
        """The account's open orders (order_queries.open_orders)."""
        assert self.ws_api is not None
        return await open_orders(self.ws_api, self.config.venue)

    async def _reconcile_open_orders_of(self, instrument: InstrumentId) -> None:
        for order_id, tracked in list(self.orders.orders.items()):
            if tracked.order.instrument == instrument and not tracked.closed:
                with contextlib.suppress(Exception):
                    await self.order_status(order_id, instrument)

    async def _after_user_stream_gap(self) -> None:
        """The user stream was down: events may be lost; ask about every order still open,
        and for every balance again."""
        await self._sync_balances()
        for order_id, tracked in list(self.orders.orders.items()):
            if not tracked.closed:
                try:
                    await self.order_status(order_id, tracked.order.instrument)
                except Exception as exc:
                    log.warning(
                        "binance.reconcile.failed", extra={"order": order_id, "error": repr(exc)}
                    )

    def _on_user_event(self, event: Mapping[str, Any]) -> None:
        if event.get("e") == "executionReport":
            items: list[EngineInput] = list(self.orders.on_execution_report(event))
        else:  # outboundAccountPosition, balanceUpdate (others give nothing)
            items = list(self.balances.on_user_event(event))
        for item in items:
            self._user_events.put_nowait(item)  # one pusher keeps the stream's order

    async def _sync_balances(self) -> None:
        """Every balance from `account.status` (at start and after a user-stream gap, when
        position events may have been lost), as `VenueBalance`s in the user stream's queue.
        A failure is logged: the next position event or gap tries again."""
        assert self.ws_api is not None
        try:
            answer = await self.ws_api.request("account.status", {}, weight=20)
        except Exception as exc:
            log.warning("binance.balances.failed", extra={"error": repr(exc)})
            return
        for item in self.balances.on_account(answer):
            self._user_events.put_nowait(item)

    def _on_order_usage(self, raised: list[tuple[str, int]]) -> None:
        """The venue counted more orders than we sent (another process on the account): the
        core's budget hears it too, in the user stream's order."""
        for pool, count in raised:
            if pool.startswith("ORDERS"):
                self._user_events.put_nowait(RateLimitFeedback(self.config.venue, pool, count))

    async def _user_pusher(self) -> None:
        while True:
            await self._push(await self._user_events.get())

    # ------------------------------------------------------------------ limits

    def limit_headroom(self) -> Sequence[LimitHeadroom]:
        now = utcnow()
        blocked = self.rest.limiter.blocked_until
        room = self.rest.limiter.headroom(now)
        return [
            LimitHeadroom(
                rule.name,
                rule.limit - room[rule.name],
                rule.limit,
                blocked if blocked and blocked > now else None,
            )
            for rule in self.rest.limiter.limits
        ]
