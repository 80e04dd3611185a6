"""Order tracker: every exchange order, tracked before it is sent, until it is final.

Orders wait in an outbound queue until the order-rate limiter admits them, so a basket
of 81 assets never bursts past the venue's limits. Fills are deduplicated by trade id. The
final orders of a completed batch are retired, not forgotten at once: a fill the venue reports
after the order closed (SPEC §6) is still recognised, deduplicated and bounded by the order.

An exchange order's status changes in one place, `TrackedOrder.move_to`, along
`EXCHANGE_TRANSITIONS` (issue 6 item 5); anything else raises `IllegalExchangeTransition` naming
the state. Venue input that no longer applies (an accept after the close) is ignored before it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.events import (
    ExchangeFill,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId, InstrumentId, TradeId
from indexmaker.engine.throttle import RateLimit, RateLimiter
from indexmaker.model.side import Side

ZERO = Decimal(0)
RETIRED_ORDERS = 4096  # final orders kept after their batch, for late fills (FIFO eviction)


_X = ExchangeOrderStatus
_FINAL = frozenset(s for s in ExchangeOrderStatus if s.is_final)
EXCHANGE_TRANSITIONS: dict[ExchangeOrderStatus, frozenset[ExchangeOrderStatus]] = {
    _X.PENDING: frozenset({_X.LIVE, _X.UNKNOWN, *_FINAL}),
    # LIVE → LIVE: the accept can arrive after a fill already made the order live.
    _X.LIVE: frozenset({_X.LIVE, _X.UNKNOWN, *_FINAL}),
    # UNKNOWN → UNKNOWN: another timeout while a reconciliation is out.
    _X.UNKNOWN: frozenset({_X.LIVE, _X.UNKNOWN, *_FINAL}),
    **{final: frozenset() for final in _FINAL},
}


class IllegalExchangeTransition(InvariantViolation):
    """An exchange-order status change outside `EXCHANGE_TRANSITIONS` (an engine bug)."""

    def __init__(
        self, order_id: ExchangeOrderId, state: ExchangeOrderStatus, to: ExchangeOrderStatus
    ) -> None:
        allowed = sorted(s.value for s in EXCHANGE_TRANSITIONS[state])
        super().__init__(
            f"exchange order {order_id}: no transition {state.value} → {to.value} "
            f"(from {state.value}: {', '.join(allowed) or 'none, it is final'})"
        )
        self.state = state
        self.to = to


@dataclass(slots=True)
class TrackedOrder:
    command: PlaceExchangeOrder
    _status: ExchangeOrderStatus = ExchangeOrderStatus.PENDING
    sent: bool = False
    filled: Decimal = ZERO
    commission: Decimal = ZERO  # in the fills' commission assets, as the venue charged them
    trade_ids: set[TradeId] = field(default_factory=set)
    reason: str | None = None
    reconciling: bool = False  # a status query is out (lost fills or an unknown status)
    created_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def order_id(self) -> ExchangeOrderId:
        return self.command.order_id

    @property
    def status(self) -> ExchangeOrderStatus:
        return self._status

    def move_to(self, status: ExchangeOrderStatus) -> None:
        """The one place the status changes. Raises IllegalExchangeTransition off the table."""
        if status not in EXCHANGE_TRANSITIONS[self._status]:
            raise IllegalExchangeTransition(self.order_id, self._status, status)
        self._status = status

    @property
    def batch_id(self) -> BatchId:
        return self.command.batch_id


class OrderTracker:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._orders: dict[ExchangeOrderId, TrackedOrder] = {}
        self._by_batch: dict[BatchId, list[ExchangeOrderId]] = {}
        self._outbound: deque[TrackedOrder] = deque()
        self._retired: OrderedDict[ExchangeOrderId, TrackedOrder] = OrderedDict()
        self._next_id = 1

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    def use_limits(self, limits: Sequence[RateLimit], now: datetime) -> None:
        """The order budget becomes `limits` (the venue's own: engine/order_budget.py); what
        was sent already stays counted in windows of the same name. Raises InvalidInputError
        for a window that cannot be (the budget is then unchanged)."""
        self._limiter = self._limiter.reconfigured(limits, now)

    def has_room(self, now: datetime) -> bool:
        """The budget admits an order now: no back-off in force, every window has room. A
        new batch forms only then, so its collateral is not engaged and its prices not set
        while none of its orders could leave (a 429's Retry-After, a spent daily window)."""
        return self._limiter.wait_time(now) is None

    def waiting(self, now: datetime) -> int:
        """Queued orders the budget does not admit now (they go out in a later window)."""
        queued = len(self._outbound)
        if not queued:
            return 0
        room = self._limiter.headroom(now)
        return max(0, queued - min(room.values())) if room else 0

    def new_order_id(self) -> ExchangeOrderId:
        order_id = ExchangeOrderId(f"im-{self._next_id}")
        self._next_id += 1
        return order_id

    def send(
        self,
        batch_id: BatchId,
        instrument: InstrumentId,
        side: Side,
        price: Decimal,
        quantity: Decimal,
        now: datetime,
    ) -> PlaceExchangeOrder:
        """A new exchange order of `batch_id`, queued for the rate limiter (`release`)."""
        command = PlaceExchangeOrder(
            self.new_order_id(), batch_id, instrument, side, price, quantity
        )
        self.enqueue(command, now)
        return command

    def enqueue(self, command: PlaceExchangeOrder, now: datetime) -> TrackedOrder:
        tracked = TrackedOrder(command=command, created_at=now)
        self._orders[command.order_id] = tracked
        self._by_batch.setdefault(command.batch_id, []).append(command.order_id)
        self._outbound.append(tracked)
        return tracked

    def release(self, now: datetime) -> list[PlaceExchangeOrder]:
        """Orders the rate limiter admits now, FIFO; the rest wait for a later tick."""
        released: list[PlaceExchangeOrder] = []
        while self._outbound:
            if self._limiter.try_acquire(now) is not None:
                break
            tracked = self._outbound.popleft()
            tracked.sent = True
            tracked.sent_at = now
            released.append(tracked.command)
        return released

    def on_accepted(self, order_id: ExchangeOrderId) -> TrackedOrder | None:
        tracked = self._orders.get(order_id)
        if tracked is None or tracked.status.is_final:
            return None
        tracked.move_to(ExchangeOrderStatus.LIVE)
        return tracked

    def on_fill(self, fill: ExchangeFill) -> TrackedOrder | None:
        """None for an unknown order, a repeated trade id or an overfill (venue bug)."""
        tracked = self.get(fill.order_id)
        if tracked is None or fill.trade_id in tracked.trade_ids:
            return None
        if fill.instrument != tracked.command.instrument:
            return None
        if fill.quantity <= 0 or fill.price <= 0 or fill.commission < 0:
            return None
        if tracked.filled + fill.quantity > tracked.command.quantity:
            return None
        tracked.trade_ids.add(fill.trade_id)
        tracked.filled += fill.quantity
        tracked.commission += fill.commission
        if tracked.status is ExchangeOrderStatus.PENDING:
            tracked.move_to(ExchangeOrderStatus.LIVE)
        return tracked

    def on_closed(self, closed: ExchangeOrderClosed) -> TrackedOrder | None:
        tracked = self._orders.get(closed.order_id)
        if tracked is None or tracked.status.is_final or not closed.status.is_final:
            return None
        tracked.move_to(closed.status)
        tracked.reason = closed.reason
        return tracked

    def on_unknown(
        self, order_id: ExchangeOrderId, reason: str | None = None
    ) -> TrackedOrder | None:
        """The adapter lost track of the order: it must be reconciled before anything else.
        `reason` (why the adapter does not know: "place refused: binance: local rate limit")
        is kept on the order, so a venue that then says it never saw the order closes it
        with the real cause, not only "unknown order"."""
        tracked = self._orders.get(order_id)
        if tracked is None or tracked.status.is_final:
            return None
        tracked.move_to(ExchangeOrderStatus.UNKNOWN)
        if reason:
            tracked.reason = reason
        return tracked

    def get(self, order_id: ExchangeOrderId) -> TrackedOrder | None:
        """A tracked order, or a retired one (final, its batch completed)."""
        tracked = self._orders.get(order_id)
        return tracked if tracked is not None else self._retired.get(order_id)

    def queued(self) -> int:
        return len(self._outbound)

    def all_orders(self) -> list[TrackedOrder]:
        """The retired orders still kept (oldest first), then every order tracked now."""
        return [*self._retired.values(), *self._orders.values()]

    def open_orders(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if not o.status.is_final]

    def forget_batch(self, batch_id: BatchId) -> None:
        """A completed batch: its final orders are retired (kept, bounded, for late fills)."""
        kept = []
        for order_id in self._by_batch.pop(batch_id, []):
            tracked = self._orders.get(order_id)
            if tracked is None:
                continue
            if tracked.status.is_final:
                del self._orders[order_id]
                self._retired[order_id] = tracked
                if len(self._retired) > RETIRED_ORDERS:
                    self._retired.popitem(last=False)
            else:
                kept.append(order_id)
        if kept:
            self._by_batch[batch_id] = kept
