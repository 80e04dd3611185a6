"""Our Binance orders: tracked before they are sent, their reports turned into engine events
once each (pure: no I/O).

Both the order answer (`order.place` FULL: every fill of an IOC) and the user-data stream
(`executionReport`) report the same trades; fills are deduplicated by (symbol, trade id), an
order is accepted and closed once, and a fill reported after its order closed is still
delivered (SPEC §6). Commissions are passed on as charged (amount and asset); the core converts
them (docs/adapters.md "Commissions").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from indexmaker.core.errors import InvalidOrderError
from indexmaker.core.events import (
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import Asset, BatchId, ExchangeOrderId, InstrumentId, TradeId, VenueOrderId
from indexmaker.core.money import MONEY_CONTEXT, ZERO, dec
from indexmaker.model.side import Side

_CTX = MONEY_CONTEXT.copy()

# Binance order status -> ours (enums.md). PENDING_CANCEL is unused on Spot.
STATUS = {
    "NEW": ExchangeOrderStatus.LIVE,
    "PENDING_NEW": ExchangeOrderStatus.LIVE,
    "PARTIALLY_FILLED": ExchangeOrderStatus.LIVE,
    "PENDING_CANCEL": ExchangeOrderStatus.LIVE,
    "FILLED": ExchangeOrderStatus.FILLED,
    "CANCELED": ExchangeOrderStatus.CANCELLED,
    "REJECTED": ExchangeOrderStatus.REJECTED,
    "EXPIRED": ExchangeOrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExchangeOrderStatus.EXPIRED,
}


def text(value: Decimal) -> str:
    """A Decimal as Binance wants it: plain notation, never scientific (python-binance #23)."""
    return format(value, "f")


@dataclass(slots=True)
class TrackedOrder:
    order: PlaceExchangeOrder
    status: ExchangeOrderStatus = ExchangeOrderStatus.PENDING
    venue_order_id: VenueOrderId | None = None
    filled: Decimal = ZERO
    accepted: bool = False
    closed: bool = False
    trade_ids: set[int] = field(default_factory=set)
    fills: list[ExchangeFill] = field(default_factory=list)  # every fill reported, in order


class OrderBookkeeping:
    """Every order we sent, by our client order id, and the trades already reported."""

    def __init__(self) -> None:
        self.orders: dict[ExchangeOrderId, TrackedOrder] = {}
        self._seen_trades: set[tuple[InstrumentId, int]] = set()
        self.duplicates = 0

    # ------------------------------------------------------------------ before sending

    def track(self, order: PlaceExchangeOrder) -> TrackedOrder:
        """Record the order before it leaves; a second track of the same id is refused."""
        if order.order_id in self.orders:
            # Binance refuses a duplicate of an open id (-2010); we refuse any reuse, before
            # anything is sent (docs/adapters.md: the order id is the idempotency key)
            raise InvalidOrderError(f"order {order.order_id}: client order id already used")
        tracked = TrackedOrder(order)
        self.orders[order.order_id] = tracked
        return tracked

    def forget(self, order_id: ExchangeOrderId) -> None:
        """Stop tracking an order the venue refused before taking it (429/418): its id may be
        sent again."""
        self.orders.pop(order_id, None)

    def adopt(
        self, order_id: ExchangeOrderId, instrument: InstrumentId, answer: Mapping[str, Any]
    ) -> TrackedOrder:
        """Track an order this process did not send (found at start-up reconciliation) from
        the venue's own `order.status` / `openOrders.status` row."""
        order = PlaceExchangeOrder(
            order_id,
            BatchId(0),
            instrument,
            Side[str(answer.get("side", "BUY"))],
            dec(str(answer.get("price", "0"))),
            dec(str(answer.get("origQty", "0"))),
        )
        return self.orders.get(order_id) or self.track(order)

    def place_params(self, order: PlaceExchangeOrder) -> dict[str, object]:
        """`order.place` / `POST /api/v3/order` parameters of a LIMIT IOC with our id."""
        return {
            "symbol": order.instrument.pair,
            "side": order.side.name,
            "type": "LIMIT",
            "timeInForce": "IOC",
            "price": text(order.price),
            "quantity": text(order.quantity),
            "newClientOrderId": order.order_id,
            "newOrderRespType": "FULL",
        }

    # ------------------------------------------------------------------ reports

    def on_order_answer(self, answer: Mapping[str, Any]) -> list[EngineInput]:
        """An `order.place` (FULL) / `order.status` / `order.cancel` result."""
        tracked = self.orders.get(ExchangeOrderId(str(answer.get("clientOrderId", ""))))
        if tracked is None:
            orig = answer.get("origClientOrderId")
            tracked = self.orders.get(ExchangeOrderId(str(orig))) if orig else None
        if tracked is None:
            return []
        events: list[EngineInput] = []
        if "orderId" in answer:
            tracked.venue_order_id = VenueOrderId(str(answer["orderId"]))
        when = _time(answer.get("transactTime") or answer.get("updateTime"))
        if str(answer.get("status")) == "REJECTED":
            self._close(tracked, "REJECTED", answer.get("rejectReason"), when, events)
            return events
        self._accept(tracked, when, events)
        for fill in answer.get("fills") or ():
            self._fill(
                tracked,
                int(fill["tradeId"]),
                dec(str(fill["price"])),
                dec(str(fill["qty"])),
                dec(str(fill["commission"])),
                str(fill["commissionAsset"]),
                when,
                events,
            )
        self._close(
            tracked, str(answer.get("status", "")), answer.get("expiryReason"), when, events
        )
        return events

    def report(
        self, order_id: ExchangeOrderId, answer: Mapping[str, Any] | None
    ) -> ExchangeOrderReport:
        """The final word of a reconciliation: `answer` is `order.status`'s result, or None
        when the venue does not know the order (-2013: it never arrived)."""
        tracked = self.orders[order_id]
        order = tracked.order
        if answer is None:
            return ExchangeOrderReport(
                order_id, order.instrument, None, tracked.filled, reason="unknown to the venue"
            )
        status = STATUS.get(str(answer.get("status")), ExchangeOrderStatus.LIVE)
        venue_id = answer.get("orderId")
        return ExchangeOrderReport(
            order_id,
            order.instrument,
            status,
            dec(str(answer.get("executedQty", "0"))),
            VenueOrderId(str(venue_id)) if venue_id is not None else None,
            _time(answer.get("updateTime")),
        )

    def on_trades(
        self, order_id: ExchangeOrderId, trades: list[Mapping[str, Any]]
    ) -> list[EngineInput]:
        """`myTrades` rows of one order (reconciliation)."""
        tracked = self.orders.get(order_id)
        if tracked is None:
            return []
        events: list[EngineInput] = []
        for row in sorted(trades, key=lambda r: int(r["id"])):
            self._fill(
                tracked,
                int(row["id"]),
                dec(str(row["price"])),
                dec(str(row["qty"])),
                dec(str(row["commission"])),
                str(row["commissionAsset"]),
                _time(row.get("time")),
                events,
            )
        return events

    def on_execution_report(self, report: Mapping[str, Any]) -> list[EngineInput]:
        """A user-data `executionReport` (user-data-stream.md): x = execution type,
        X = order status, t = trade id, l/L = last quantity/price, n/N = commission."""
        client_id = str(report.get("C") or report.get("c") or "")
        tracked = self.orders.get(ExchangeOrderId(client_id))
        if tracked is None:
            tracked = self.orders.get(ExchangeOrderId(str(report.get("c", ""))))
        if tracked is None:
            return []  # not ours (another process on the account, or forgotten)
        events: list[EngineInput] = []
        if report.get("i") is not None:
            tracked.venue_order_id = VenueOrderId(str(report["i"]))
        when = _time(report.get("T") or report.get("E"))
        execution = report.get("x")
        if execution == "REJECTED":
            self._close(tracked, "REJECTED", report.get("r"), when, events)
            return events
        self._accept(tracked, when, events)
        if execution == "TRADE":
            self._fill(
                tracked,
                int(report["t"]),
                dec(str(report["L"])),
                dec(str(report["l"])),
                dec(str(report.get("n") or "0")),
                str(report.get("N") or ""),
                when,
                events,
            )
        self._close(tracked, str(report.get("X", "")), None, when, events)
        return events

    def on_rejected(self, order_id: ExchangeOrderId, reason: str) -> list[EngineInput]:
        """A definite refusal before the engine took the order (-1013, -2010, ...)."""
        tracked = self.orders.get(order_id)
        if tracked is None:
            return []
        events: list[EngineInput] = []
        self._close(tracked, "REJECTED", reason, None, events)
        return events

    # ------------------------------------------------------------------ internals

    def _accept(
        self, tracked: TrackedOrder, when: datetime | None, events: list[EngineInput]
    ) -> None:
        if not tracked.accepted and not tracked.closed:
            tracked.accepted = True
            tracked.status = ExchangeOrderStatus.LIVE
            order = tracked.order
            events.append(
                ExchangeOrderAccepted(
                    order.order_id, order.instrument, tracked.venue_order_id, when
                )
            )

    def _close(
        self,
        tracked: TrackedOrder,
        status: str,
        reason: object,
        when: datetime | None,
        events: list[EngineInput],
    ) -> None:
        ours = STATUS.get(status)
        if ours is None or not ours.is_final or tracked.closed:
            return
        tracked.closed = True
        tracked.status = ours
        order = tracked.order
        events.append(
            ExchangeOrderClosed(
                order.order_id,
                order.instrument,
                ours,
                str(reason) if reason else None,
                tracked.venue_order_id,
                tracked.filled,
                when,
            )
        )

    def _fill(
        self,
        tracked: TrackedOrder,
        trade_id: int,
        price: Decimal,
        quantity: Decimal,
        commission: Decimal,
        commission_asset: str,
        when: datetime | None,
        events: list[EngineInput],
    ) -> None:
        order = tracked.order
        key = (order.instrument, trade_id)
        if key in self._seen_trades:
            self.duplicates += 1
            return
        self._seen_trades.add(key)
        tracked.trade_ids.add(trade_id)
        tracked.filled = _CTX.add(tracked.filled, quantity)
        fill = ExchangeFill(
            order.order_id,
            order.instrument,
            tracked.venue_order_id or VenueOrderId(""),
            TradeId(str(trade_id)),
            price,
            quantity,
            tracked.filled,
            commission,
            Asset(commission_asset),
            when or datetime.now(UTC),
        )
        tracked.fills.append(fill)
        events.append(fill)


def _time(value: object) -> datetime | None:
    """Binance ms timestamps to aware datetimes."""
    if value is None or value == 0:
        return None
    return datetime.fromtimestamp(int(str(value)) / 1000, UTC)
