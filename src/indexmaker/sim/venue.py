"""The in-process simulated exchange behind the venue port (`core/ports.py: VenuePort`).

It answers asynchronously, as a real connector does: `place` returns once the order is taken,
and the acceptance, fills and close are pushed into the sink after the configured latency.
Faults a test can switch on (`VenueFaults`) reproduce what real venues do to connectors: a
call that raises, one that never returns although the venue executed the order, reports
lost with a dropped stream, fills delivered twice or after the close, placements refused
with HTTP 429 and a retry-after (`RateLimitFeedback` pushed first, as the Binance connector
does). `invalidate_book` / `resync_book` play a depth stream that drops and comes back: a
`BookInvalid`, no diffs meanwhile, then a fresh `BookSnapshot`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from indexmaker.core.clock import Clock
from indexmaker.core.errors import RateLimitedError, RejectedError
from indexmaker.core.events import (
    BookInvalid,
    BookUpdate,
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
    RateLimitFeedback,
)
from indexmaker.core.ids import ExchangeOrderId, InstrumentId, Venue, VenueOrderId
from indexmaker.core.money import MONEY_CONTEXT
from indexmaker.core.ports import EventSink, LimitHeadroom, OrderNotFound, OrderReport
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import Side
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.market import MarketSimulator

ZERO = Decimal(0)
BOOK_DEPTH = 1000  # levels compared for the depth diff after a trade
ORDER_WINDOW = 10.0  # seconds; the order-count window the headroom reports (Binance: 10 s)


@dataclass(slots=True)
class VenueFaults:
    """Misbehaviour to switch on in tests; everything off by default."""

    place_error: Exception | None = None  # place raises; the venue never got the order
    place_hangs: bool = False  # the venue executes the order but place never returns
    lose_reports: bool = False  # the stream drops: no pushed report for placed orders
    status_error: Exception | None = None  # order_status raises
    duplicate_fills: bool = False  # every fill is pushed twice
    fill_after_close: bool = False  # the close is pushed before the last fill
    rate_limited: int = 0  # this many next placements are refused with 429 (then it lifts)
    retry_after: timedelta = timedelta(seconds=1)  # the back-off a 429 asks for


@dataclass(slots=True)
class _Record:
    order: PlaceExchangeOrder
    status: ExchangeOrderStatus = ExchangeOrderStatus.PENDING
    fills: list[ExchangeFill] = field(default_factory=list)
    reason: str | None = None
    cancel_requested: bool = False

    venue_order_id: VenueOrderId | None = None

    def report(self) -> OrderReport:
        with localcontext(MONEY_CONTEXT):  # exact, whatever the caller's context
            filled = sum((f.quantity for f in self.fills), ZERO)
        return OrderReport(
            self.order.order_id,
            self.order.instrument,
            self.status,
            filled,
            tuple(self.fills),
            self.reason,
            self.venue_order_id,
        )


class SimVenue:
    """`VenuePort` over `SimulatedExchange`.

    `match_delay` > 0 keeps an accepted order live that long before it is matched, so it can
    be cancelled. `market` makes the subscribed books move every `book_refresh`. At most
    `keep_orders` order records are kept for `order_status` (oldest final ones forgotten), so
    a long-running service does not grow with its history.
    """

    def __init__(
        self,
        exchange: SimulatedExchange,
        latency: timedelta = timedelta(milliseconds=20),
        match_delay: timedelta = timedelta(0),
        market: MarketSimulator | None = None,
        book_refresh: timedelta = timedelta(seconds=5),
        faults: VenueFaults | None = None,
        keep_orders: int = 10_000,
        order_limit: int = 100,
        clock: Clock | None = None,
    ) -> None:
        self.exchange = exchange
        self.latency = latency
        self.match_delay = match_delay
        self.market = market
        self.book_refresh = book_refresh
        self.faults = faults or VenueFaults()
        self.keep_orders = keep_orders
        self.order_limit = order_limit
        self.clock = clock or SystemClock()
        self._sink: EventSink | None = None
        self._orders: OrderedDict[ExchangeOrderId, _Record] = OrderedDict()
        self._subscribed: set[InstrumentId] = set()
        self._invalid: set[InstrumentId] = set()  # subscribed, but the stream is down
        self._placed_at: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    @property
    def venue(self) -> str:
        """The venue the simulated instruments are named on (the basket's, e.g. binance)."""
        return next(iter(self.exchange.books)).venue if self.exchange.books else "sim"

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if self._refresher is not None:
            tasks.append(self._refresher)
            self._refresher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def invalidate_book(self, instrument: InstrumentId, reason: str) -> None:
        """The depth stream of `instrument` drops: `BookInvalid` now, no diffs until
        `resync_book`."""
        if instrument in self._subscribed:
            self._invalid.add(instrument)
            await self._push(BookInvalid(instrument, reason))

    async def resync_book(self, instrument: InstrumentId) -> None:
        """The stream is back: a fresh `BookSnapshot` of the book as it is now."""
        if instrument in self._invalid:
            self._invalid.discard(instrument)
            for snapshot in self.exchange.snapshots():
                if snapshot.instrument == instrument:
                    await self._push(snapshot)

    async def instruments(self) -> Mapping[InstrumentId, InstrumentRules]:
        return dict(self.exchange.rules)

    async def subscribe_books(self, instruments: Sequence[InstrumentId]) -> None:
        books = self.exchange.books
        wanted = [i for i in instruments if i in books and i not in self._subscribed]
        self._subscribed.update(wanted)
        wanted_set = set(wanted)
        for snapshot in self.exchange.snapshots():
            if snapshot.instrument in wanted_set:
                await self._push(snapshot)
        if self.market is not None and self._refresher is None and self._subscribed:
            self._refresher = asyncio.create_task(self._refresh_books(), name="sim-books")

    async def place(self, order: PlaceExchangeOrder) -> None:
        if self.faults.place_error is not None:
            raise self.faults.place_error
        if self.faults.rate_limited > 0:
            # Binance: HTTP 429 with Retry-After; the order never reached the matcher.
            self.faults.rate_limited -= 1
            wait = self.faults.retry_after
            reason = f"429 too many requests: retry after {wait.total_seconds():g}s"
            feedback = RateLimitFeedback(Venue(self.venue), retry_after=wait, reason=reason)
            await self._push(feedback)
            raise RateLimitedError.after(reason, wait)
        if order.order_id in self._orders:
            raise RejectedError(f"duplicate client order id {order.order_id}")  # Binance -2010
        self._remember(order.order_id, _Record(order))
        self._placed_at.append(asyncio.get_running_loop().time())
        self._spawn(self._answer(order))
        if self.faults.place_hangs:
            await asyncio.Event().wait()  # the venue has it; our call never hears back

    async def cancel(self, order_id: ExchangeOrderId, instrument: InstrumentId) -> None:
        record = self._orders.get(order_id)
        if record is None or record.status.is_final or record.order.instrument != instrument:
            raise OrderNotFound(f"{order_id}: no open order")  # Binance -2011
        record.cancel_requested = True

    async def order_status(
        self, order_id: ExchangeOrderId, instrument: InstrumentId
    ) -> OrderReport:
        if self.faults.status_error is not None:
            raise self.faults.status_error
        await asyncio.sleep(0)  # a query is a round trip: never answered synchronously
        record = self._orders.get(order_id)
        if record is None or record.order.instrument != instrument:
            raise OrderNotFound(f"{order_id}: order does not exist")  # Binance -2013
        return record.report()

    async def open_orders(self) -> Sequence[OrderReport]:
        return [r.report() for r in self._orders.values() if not r.status.is_final]

    def limit_headroom(self) -> Sequence[LimitHeadroom]:
        now = asyncio.get_running_loop().time()
        while self._placed_at and self._placed_at[0] <= now - ORDER_WINDOW:
            self._placed_at.popleft()
        return [LimitHeadroom("orders_10s", len(self._placed_at), self.order_limit)]

    # ------------------------------------------------------------------ internals

    async def _answer(self, order: PlaceExchangeOrder) -> None:
        await asyncio.sleep(self.latency.total_seconds())
        record = self._orders.get(order.order_id)
        if record is None:
            return
        if self.match_delay > timedelta(0):
            record.status = ExchangeOrderStatus.LIVE
            accepted = ExchangeOrderAccepted(order.order_id, order.instrument, None, self._now())
            await self._report(accepted)
            await asyncio.sleep(self.match_delay.total_seconds())
            if record.cancel_requested:
                record.status = ExchangeOrderStatus.CANCELLED
                cancelled = ExchangeOrderClosed(
                    order.order_id, order.instrument, record.status, event_time=self._now()
                )
                await self._report(cancelled)
                return
        before = self._top(order)
        events = self.exchange.execute(order, self._now())
        if self.match_delay > timedelta(0):
            events = [e for e in events if not isinstance(e, ExchangeOrderAccepted)]
        for event in events:
            if isinstance(event, ExchangeFill):
                record.fills.append(event)
            elif isinstance(event, ExchangeOrderClosed):
                record.status, record.reason = event.status, event.reason
            elif isinstance(event, ExchangeOrderAccepted):
                record.status = ExchangeOrderStatus.LIVE
                record.venue_order_id = event.venue_order_id
        for event in self._as_delivered(events):
            await self._report(event)
        if order.instrument in self._subscribed and order.instrument not in self._invalid:
            update = self._book_change(order, before)
            if update is not None:
                await self._push(update)

    def _top(self, order: PlaceExchangeOrder) -> dict[Decimal, Decimal]:
        """The side of the book this order takes from (asks for a buy)."""
        book = self.exchange.books.get(order.instrument)
        if book is None:
            return {}
        return dict(book.levels(order.side.taken_book, BOOK_DEPTH))

    def _book_change(
        self, order: PlaceExchangeOrder, before: dict[Decimal, Decimal]
    ) -> BookUpdate | None:
        """The depth-stream diff the trades caused (quantity 0 removes a level)."""
        after = self._top(order)
        changed = tuple(
            (price, after.get(price, ZERO))
            for price, quantity in before.items()
            if after.get(price, ZERO) != quantity
        )
        if not changed:
            return None
        if order.side is Side.BUY:
            return BookUpdate(order.instrument, asks=changed)
        return BookUpdate(order.instrument, bids=changed)

    def _as_delivered(self, events: list[EngineInput]) -> list[EngineInput]:
        """The stream as the faults reorder or repeat it."""
        out: list[EngineInput] = []
        for event in events:
            out.append(event)
            if self.faults.duplicate_fills and isinstance(event, ExchangeFill):
                out.append(event)
        fills = [i for i, e in enumerate(out) if isinstance(e, ExchangeFill)]
        if self.faults.fill_after_close and fills and isinstance(out[-1], ExchangeOrderClosed):
            last_fill = out.pop(fills[-1])
            out.append(last_fill)
        return out

    async def _report(self, event: EngineInput) -> None:
        if not self.faults.lose_reports:
            await self._push(event)

    async def _push(self, event: EngineInput) -> None:
        if self._sink is not None:
            await self._sink(event)

    async def _refresh_books(self) -> None:
        assert self.market is not None
        while True:
            await asyncio.sleep(self.book_refresh.total_seconds())
            for snapshot in self.exchange.replace_books(self.market.step()):
                if snapshot.instrument in self._subscribed and snapshot.instrument not in (
                    self._invalid
                ):
                    await self._push(snapshot)

    def _now(self) -> datetime:
        return self.clock.now()

    def _remember(self, order_id: ExchangeOrderId, record: _Record) -> None:
        self._orders[order_id] = record
        while len(self._orders) > self.keep_orders:
            oldest_id, oldest = next(iter(self._orders.items()))
            if not oldest.status.is_final:
                break  # never forget an open order
            del self._orders[oldest_id]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class SystemClock:
    """Venue event times from the wall clock when none is injected."""

    def now(self) -> datetime:
        return datetime.now(UTC)
